"""The chat check: a non-streaming and a streaming chat completion (content, the stream's end, usage)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..http_client import BenchHTTPError
from .base import (
    Check,
    Context,
    Outcome,
    StreamRecord,
    as_dict,
    as_int,
    entry,
    error_text,
    first_choice,
    retry_note,
    retrying,
    stream_chat,
)

NAME = "chat"


async def check_chat(ctx: Context) -> dict[str, Any]:
    """One non-streaming and one streaming completion, each retried on a transient server error."""
    s = ctx.s
    messages = [{"role": "user", "content": "Name three colours of the rainbow."}]
    details: dict[str, Any] = {}
    problems: list[str] = []
    transient: list[str] = []
    start = time.perf_counter()

    async def plain() -> dict[str, Any]:
        nonlocal start
        start = time.perf_counter()
        return await ctx.chat(messages, 32)

    try:
        body = await retrying(ctx, plain, transient)
        choice = first_choice(body, "chat completion")
        msg = as_dict(choice.get("message"))
        usage = as_dict(body.get("usage"))
        content = msg.get("content")
        details["non_streaming"] = {
            "latency_ms": round((time.perf_counter() - start) * 1000, 2),
            "model": body.get("model"),
            "finish_reason": choice.get("finish_reason"),
            "content_chars": len(content) if isinstance(content, str) else 0,
            "usage": usage,
        }
        if not isinstance(content, str) and not msg.get("reasoning_content"):
            problems.append("non-streaming: the reply has no message content")
        if not as_int(usage.get("completion_tokens")):
            problems.append("non-streaming: usage.completion_tokens missing or zero")
    except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
        problems.append(f"non-streaming: {error_text(exc, s.timeout_s)}{retry_note(transient, failed=True)}")
    plain_retries = len(transient)
    rec = StreamRecord()

    async def streamed() -> None:
        nonlocal rec
        rec = StreamRecord(scheduled=time.perf_counter())
        rec.sent = rec.scheduled
        await asyncio.wait_for(stream_chat(ctx, ctx.chat_payload(messages, 32, stream=True), rec), s.timeout_s)

    try:
        await retrying(ctx, streamed, transient)
    except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
        rec.error = error_text(exc, s.timeout_s)
        problems.append(f"streaming: {rec.error}{retry_note(transient[plain_retries:], failed=True)}")
    rec.end = time.perf_counter()
    details["streaming"] = {
        "content_chunks": len(rec.chunk_times),
        "done_marker": rec.done,
        "finish_reason": rec.finish_reason,
        "usage": rec.usage,
        "ttft_ms": round((rec.chunk_times[0] - rec.scheduled) * 1000, 2) if rec.chunk_times else None,
        "latency_ms": round((rec.end - rec.scheduled) * 1000, 2),
    }
    if transient:
        details["transient_errors"] = transient
    if rec.error is None:
        if not rec.chunk_times:
            problems.append("streaming: no content chunk arrived")
        if not rec.usage:
            problems.append("streaming: no usage in the stream (stream_options.include_usage was sent)")
    if problems:
        return entry(NAME, "fail", "; ".join(problems), details)
    return entry(
        NAME,
        "pass",
        f"non-streaming and streaming replies complete ({len(rec.chunk_times)} content chunks, usage reported)"
        f"{retry_note(transient)}",
        details,
    )


async def run(ctx: Context) -> Outcome:
    return Outcome([await check_chat(ctx)])


CHECK = Check(
    name=NAME,
    run=run,
    description=(
        "C(chat) sends a non-streaming and a streaming chat completion (the stream must end, content chunks must "
        "arrive, usage must be present)."
    ),
)
