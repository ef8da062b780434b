"""What every benchmark check shares: Settings, Context (client, prompts, calibration), entry(), the reply
helpers, the streamed-request reader, and the registry's types (Check, Outcome, Threshold) with the helpers a
check's thresholds use. One module per check sits beside this one; ``__init__.py`` lists them (CHECKS).

Each check returns report entries ``{"name", "status", "message", "details"}`` and never raises for a server's
misbehaviour: a refused connection, an HTTP error, a cut or malformed stream, JSON of the wrong shape or a timeout
becomes a failed entry whose details keep what was measured before the failure. The functional single-request
checks (chat, json_schema) retry a transient server error (HTTP 429/500/502/503/504, a cut stream) up to
``transient_retries`` times and report every retry.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..http_client import BenchHTTPError, HTTPClient, StreamInfo

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
TTFT_SAMPLE_CAP = 2000
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_T = TypeVar("_T")
# Common English words: about one token each in the large tokenizers of served models (the GPU suite's
# tokenizer, lab/gpu/visible_tokenizer.py, gives each of them a token of its own).
PROMPT_WORDS = (  # noqa: SIM905 - a word list reads better as text
    "the time people year way day man thing woman life child world school state family student group "
    "country problem hand part place case week company system program question work government number "
    "night point home water room mother area money story fact month lot right study book eye job word "
    "business issue side kind head house service friend father power hour game line end member law car "
    "city community name president team minute idea kid body information back parent face others level "
    "office door health person art war history party result change morning reason research girl guy "
    "moment air teacher force education"
).split()


@dataclass
class Settings:
    """What the checks need; bench.BenchConfig fills it from the module or CLI parameters."""

    model: str
    engine: str = "openai"
    # The service's health endpoints in order (the plan's); empty: the engine's (readiness_paths).
    health_paths: list[str] = field(default_factory=list)
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32, 64])
    num_prompts: int | None = None
    input_len: int = 256
    output_len: int = 128
    ignore_eos: bool = False
    request_rate: float | None = None
    multi_turn_conversations: int = 20
    multi_turn_turns: int = 5
    multi_turn_input_len: int = 64
    multi_turn_output_len: int = 32
    shared_prefix_len: int = 256
    json_schema: dict[str, Any] | None = None
    json_schema_max_tokens: int = 256
    timeout_s: float = 120.0
    ready_timeout_s: float = 300.0
    ready_interval_s: float = 2.0
    seed: int = 0
    transient_retries: int = 3
    retry_backoff_s: float = 0.5


def entry(name: str, status: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "status": status, "message": message, "details": details or {}}


def as_dict(value: Any) -> dict[str, Any]:
    """value when it is a JSON object, else an empty dict (for optional fields of a reply)."""
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | None:
    """value when it is a JSON integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:120] + "..."


def first_choice(body: Any, what: str) -> dict[str, Any]:
    """body["choices"][0] of a chat completion (or chunk) as a dict; BenchHTTPError(protocol) when the
    JSON has another shape, so a wrong-shaped reply fails the check instead of raising inside it."""
    if not isinstance(body, dict):
        raise BenchHTTPError("protocol", f"{what} is not a JSON object: {short(body)}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BenchHTTPError("protocol", f"{what} without choices: {short(body)}")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise BenchHTTPError("protocol", f"{what}: choices[0] is not a JSON object: {short(choice)}")
    for key in ("message", "delta"):
        if choice.get(key) is not None and not isinstance(choice[key], dict):
            raise BenchHTTPError("protocol", f"{what}: choices[0].{key} is not a JSON object: {short(choice[key])}")
    return choice


def usage_of(body: dict[str, Any], what: str) -> dict[str, Any] | None:
    """body["usage"] as a dict, None when absent; BenchHTTPError(protocol) when it is not an object."""
    usage = body.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise BenchHTTPError("protocol", f"{what}: usage is not a JSON object: {short(usage)}")
    return usage


def is_transient(exc: BaseException) -> bool:
    """A server error worth one more try: HTTP 429/500/502/503/504 or a stream cut mid-way."""
    if not isinstance(exc, BenchHTTPError):
        return False
    return exc.kind == "stream_cut" or (exc.kind == "status" and exc.status in TRANSIENT_STATUS)


async def retrying(ctx: Context, attempt: Callable[[], Awaitable[_T]], transient: list[str]) -> _T:
    """Run attempt(); on a transient server error retry up to transient_retries times (back-off 0.5 s,
    1 s, 2 s...), appending each error to transient. The last error, or any other, is raised."""
    retries = max(ctx.s.transient_retries, 0)
    for number in range(retries + 1):
        try:
            return await attempt()
        except BenchHTTPError as exc:
            if number >= retries or not is_transient(exc):
                raise
            transient.append(f"attempt {number + 1}: {exc}"[:400])
            await asyncio.sleep(ctx.s.retry_backoff_s * 2**number)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def retry_note(transient: list[str], failed: bool = False) -> str:
    if not transient:
        return ""
    if failed:
        return f" ({len(transient)} earlier attempt(s) failed too, first: {transient[0]})"
    return f" (after {len(transient)} transient server error(s), retried; first: {transient[0]})"


def error_text(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"timeout: no complete answer within timeout_s={timeout_s:g}s"
    if isinstance(exc, BenchHTTPError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"connection error: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Context:
    """Shared state of one benchmark run: the client, the settings, the thresholds, the prompt calibration."""

    def __init__(self, client: HTTPClient, settings: Settings, thresholds: dict[str, Any] | None = None) -> None:
        self.client = client
        self.s = settings
        # The run's thresholds (a check may change what it judges by them: load's max_error_rate).
        self.thresholds: dict[str, Any] = dict(thresholds or {})
        self.rng = random.Random(settings.seed)
        self.tokens_per_word: float | None = None
        self.overhead_tokens = 0.0
        self.tag_tokens = 0.0
        self.calibration: dict[str, Any] = {}

    def words(self, count: int) -> str:
        return " ".join(self.rng.choice(PROMPT_WORDS) for _word in range(max(1, count)))

    def words_for_tokens(self, tokens: int, overhead: bool = True) -> int:
        per_word = self.tokens_per_word or 1.0
        budget = tokens - (self.overhead_tokens if overhead else 0.0)
        return max(1, round(budget / per_word))

    def prompt(self, tokens: int, tag: str = "") -> str:
        """Random words totalling about ``tokens`` prompt tokens (template and tag included)."""
        head = f"{tag} " if tag else ""
        budget = tokens - (self.tag_tokens if tag else 0.0)
        return head + self.words(self.words_for_tokens(round(budget)))

    def chat_payload(self, messages: list[dict[str, str]], max_tokens: int, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.s.model, "messages": messages, "max_tokens": max_tokens}
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        if self.s.ignore_eos:
            payload["ignore_eos"] = True
        return payload

    async def chat(self, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        """One non-streaming chat completion; raises BenchHTTPError on a non-200 or non-JSON answer."""
        resp = await asyncio.wait_for(
            self.client.request("POST", CHAT_PATH, self.chat_payload(messages, max_tokens, stream=False)),
            self.s.timeout_s,
        )
        if resp.status != 200:
            raise BenchHTTPError(
                "status",
                f"HTTP {resp.status} from POST {self.client.url(CHAT_PATH)}: "
                f"{resp.body[:300].decode('utf-8', 'replace')}",
                resp.status,
            )
        body = resp.json()
        first_choice(body, "chat completion")
        usage_of(body, "chat completion")
        return dict(body)

    async def calibrate(self) -> None:
        """Measure prompt tokens per word with the server's own count (two 1-token requests)."""
        if self.tokens_per_word is not None:
            return
        # Four samples of 192 more words keep the per-word estimate within a few percent (random words vary);
        # a third request measures what a load prompt's unique tag (for example "[64-1000]") costs.
        short, extra, samples = 16, 192, 4
        try:
            base = self.words(short)
            first = await self.chat([{"role": "user", "content": base}], 1)
            longer = await asyncio.gather(
                *(
                    self.chat([{"role": "user", "content": f"{base} {self.words(extra)}"}], 1)
                    for _sample in range(samples)
                )
            )
            tagged = await self.chat([{"role": "user", "content": f"[64-1000] {base}"}], 1)
            p1 = int(first["usage"]["prompt_tokens"])
            p2 = p1 + sum(int(r["usage"]["prompt_tokens"]) - p1 for r in longer) / samples
            p3 = int(tagged["usage"]["prompt_tokens"])
        except (BenchHTTPError, OSError, asyncio.TimeoutError, KeyError, TypeError, ValueError) as exc:
            self.tokens_per_word = 1.0
            self.calibration = {"tokens_per_word": 1.0, "overhead_tokens": 0.0, "measured": False, "error": str(exc)}
            return
        per_word = max((p2 - p1) / extra, 0.1)
        self.tokens_per_word = per_word
        self.overhead_tokens = max(p1 - short * per_word, 0.0)
        self.tag_tokens = max(p3 - p1, 0.0)
        self.calibration = {
            "tokens_per_word": round(per_word, 3),
            "overhead_tokens": round(self.overhead_tokens, 1),
            "tag_tokens": self.tag_tokens,
            "measured": True,
        }


@dataclass
class StreamRecord:
    """One streamed request as measured (kept when it fails part-way)."""

    scheduled: float = 0.0
    sent: float = 0.0
    end: float = 0.0
    chunk_times: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    done: bool = False
    error: str | None = None


async def stream_chat(ctx: Context, payload: dict[str, Any], rec: StreamRecord, keep_text: bool = False) -> None:
    """Stream one chat completion into rec; raises BenchHTTPError when the stream is not whole."""
    info = StreamInfo()
    perf = time.perf_counter
    loads = json.loads
    times = rec.chunk_times
    async for events in ctx.client.stream_events(CHAT_PATH, payload, info):
        now = perf()
        for data in events:
            if data == b"[DONE]":
                rec.done = True
                continue
            if not data:
                continue  # an empty data field: a keep-alive, nothing to parse
            try:
                obj = loads(data)
            except ValueError as exc:
                raise BenchHTTPError(
                    "protocol", f"malformed SSE event: data is not JSON ({exc}): {data[:120]!r}"
                ) from exc
            if not isinstance(obj, dict):
                raise BenchHTTPError("protocol", f"malformed SSE event: not a JSON object: {data[:120]!r}")
            choices = obj.get("choices")
            if choices:
                # The per-chunk hot path: type checks inline, first_choice() only to name a wrong shape.
                choice = choices[0] if isinstance(choices, list) else None
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if not isinstance(choice, dict) or (delta is not None and not isinstance(delta, dict)):
                    first_choice(obj, "stream chunk")  # raises BenchHTTPError naming what is wrong
                    raise BenchHTTPError("protocol", f"stream chunk of an unexpected shape: {data[:120]!r}")
                if delta:
                    text = delta.get("content") or delta.get("reasoning_content")
                    if text and isinstance(text, str):
                        times.append(now)
                        if keep_text:
                            rec.text.append(text)
                if choice.get("finish_reason"):
                    rec.finish_reason = str(choice["finish_reason"])
            elif "error" in obj:
                raise BenchHTTPError("status", f"error event in the stream: {json.dumps(obj['error'])[:300]}")
            usage = obj.get("usage")
            if usage is not None:
                if not isinstance(usage, dict):
                    usage_of(obj, "stream chunk")  # raises, naming the value
                if usage:
                    rec.usage = usage
    if not rec.done and rec.finish_reason is None:
        ignored = (
            f"; {info.ignored_lines} lines that are not SSE data were ignored, last: {info.last_ignored[:120]!r}"
            if info.ignored_lines
            else ""
        )
        raise BenchHTTPError(
            "protocol",
            f"stream ended without [DONE] or a finish_reason after {len(times)} content chunks{ignored}",
        )


# --- the registry's types ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What a check's run returns: its report entries, the value of its report section, and why the checks after
    it cannot run ("" to go on; readiness sets it when the server never became ready)."""

    entries: list[dict[str, Any]]
    section: Any = None
    stop: str = ""


@dataclass(frozen=True)
class Threshold:
    """One threshold name (or a family of names, ``pattern``) that a check measures.

    ``validate(key, value, concurrency)`` returns the problems of a value (each naming thresholds.<key> and the
    fix); ``evaluate(key, value, report, ran)`` returns its report entries (``ran``: the owning check was run).
    """

    name: str
    description: str
    validate: Callable[[str, Any, list[int]], list[str]]
    evaluate: Callable[[str, Any, dict[str, Any], bool], list[dict[str, Any]]]
    pattern: re.Pattern[str] | None = None

    def matches(self, key: str) -> bool:
        return key == self.name if self.pattern is None else self.pattern.fullmatch(key) is not None


@dataclass(frozen=True)
class Check:
    """One benchmark check, as the registry (``CHECKS`` in ``__init__.py``) lists it.

    name: what ``checks`` selects; run: the check; description: one paragraph in Ansible doc markup (the module's
    documentation and docs/benchmark.md are generated from it: ``python3 -m lab.gen_bench_docs``); entries: the
    names of the report entries it writes (default: its name); section: the report's top-level key it fills,
    ``section_empty`` its value when the check is not run; thresholds: the threshold names it measures;
    summary: the section as lines of the text summary.
    """

    name: str
    run: Callable[[Context], Awaitable[Outcome]]
    description: str
    entries: tuple[str, ...] = ()
    section: str = ""
    section_empty: Any = None
    thresholds: tuple[Threshold, ...] = ()
    # The lines of the text summary (bin/sparkfleet-bench) that show the section, when it is not empty.
    summary: Callable[[Any], list[str]] | None = None

    @property
    def entry_names(self) -> tuple[str, ...]:
        return self.entries or (self.name,)


def fmt(value: Any, digits: int = 1) -> str:
    """A number of the text summary ("-" for None)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def is_number(value: Any) -> bool:
    """A JSON number (int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def threshold_entry(name: str, limit: float, measured: float | None, kind: str, missing: str) -> dict[str, Any]:
    """The entry of a threshold: ``kind`` "min" (measured >= limit) or "max"; fail with ``missing`` when the value
    could not be measured (it was asked for and cannot be shown to hold)."""
    if measured is None:
        return {"name": name, "limit": float(limit), "measured": None, "status": "fail", "message": missing}
    ok = measured >= limit if kind == "min" else measured <= limit
    relation = ">=" if kind == "min" else "<="
    return {
        "name": name,
        "limit": float(limit),
        "measured": measured,
        "status": "pass" if ok else "fail",
        "message": f"{measured:g} {'meets' if ok else 'misses'} {relation} {limit:g}",
    }


def threshold_skip(name: str, limit: float, why: str) -> dict[str, Any]:
    return {"name": name, "limit": float(limit), "measured": None, "status": "skip", "message": why}


def global_threshold(
    check: str,
    name: str,
    *,
    kind: str,
    measure: Callable[[dict[str, Any]], float | None],
    missing: str,
    description: str,
) -> Threshold:
    """A threshold with one number for the whole run: ``measure(report)`` reads the value from the report."""

    def validate(key: str, value: Any, concurrency: list[int]) -> list[str]:
        return [] if is_number(value) else [f"thresholds.{key} must be a number, got {value!r}"]

    def evaluate(key: str, value: Any, report: dict[str, Any], ran: bool) -> list[dict[str, Any]]:
        if not ran:
            return [threshold_skip(key, float(value), f"the {check} check was not run")]
        return [threshold_entry(key, float(value), measure(report), kind, missing)]

    return Threshold(name=name, description=description, validate=validate, evaluate=evaluate)
