"""The json_schema check: a ``response_format`` of type ``json_schema``, the reply parsed and validated."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .. import schema as bench_schema
from ..http_client import BenchHTTPError
from .base import (
    CHAT_PATH,
    Check,
    Context,
    Outcome,
    as_dict,
    entry,
    error_text,
    first_choice,
    retry_note,
    retrying,
    short,
)

NAME = "json_schema"


async def check_json_schema(ctx: Context) -> dict[str, Any]:
    """A structured-output request, its reply parsed and validated against the schema."""
    s = ctx.s
    schema = s.json_schema or bench_schema.DEFAULT_SCHEMA
    payload_messages = [
        {"role": "user", "content": "Describe a city as JSON with its name, population and up to three tags."}
    ]
    payload = ctx.chat_payload(payload_messages, s.json_schema_max_tokens, stream=False)
    payload.pop("ignore_eos", None)
    payload["response_format"] = {"type": "json_schema", "json_schema": {"name": "sparkfleet_check", "schema": schema}}
    details: dict[str, Any] = {"validator": bench_schema.VALIDATOR, "schema": schema}
    transient: list[str] = []

    async def attempt() -> dict[str, Any]:
        resp = await asyncio.wait_for(ctx.client.request("POST", CHAT_PATH, payload), s.timeout_s)
        if resp.status != 200:
            text = resp.body[:300].decode("utf-8", "replace")
            raise BenchHTTPError(
                "status", f"HTTP {resp.status} from POST {ctx.client.url(CHAT_PATH)}: {text}", resp.status
            )
        return first_choice(resp.json(), "chat completion")

    try:
        choice = await retrying(ctx, attempt, transient)
    except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
        if transient:
            details["transient_errors"] = transient
        return entry(NAME, "fail", error_text(exc, s.timeout_s) + retry_note(transient, failed=True), details)
    details["attempts"] = len(transient) + 1
    if transient:
        details["transient_errors"] = transient
    content = as_dict(choice.get("message")).get("content") or ""
    if not isinstance(content, str):
        return entry(NAME, "fail", f"the reply's message content is not text: {short(content)}", details)
    details["reply"] = content[:500]
    details["finish_reason"] = choice.get("finish_reason")
    try:
        value = json.loads(content)
    except ValueError as exc:
        cut = (
            " (cut at max_tokens: bound the schema's strings and arrays)"
            if choice.get("finish_reason") == "length"
            else ""
        )
        return entry(NAME, "fail", f"the reply is not JSON{cut}: {exc}", details)
    errors = bench_schema.validate(value, schema)
    details["errors"] = errors[:20]
    if errors:
        return entry(
            NAME,
            "fail",
            f"the reply does not match the schema: {'; '.join(errors[:3])}{retry_note(transient)}",
            details,
        )
    return entry(
        NAME,
        "pass",
        f"the reply parses and matches the schema ({bench_schema.VALIDATOR}){retry_note(transient)}",
        details,
    )


async def run(ctx: Context) -> Outcome:
    return Outcome([await check_json_schema(ctx)])


CHECK = Check(
    name=NAME,
    run=run,
    description=(
        "C(json_schema) asks for a C(response_format) of type C(json_schema) and validates the reply (with "
        "C(jsonschema) when importable, else a built-in validator; the report's C(validator) says which)."
    ),
)
