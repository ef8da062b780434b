"""The benchmark checks: readiness, chat, json_schema, multi_turn (+ prefix cache) and the load sweep.

Each check returns a ``{"name", "status", "message", "details"}`` entry and never raises for a
server's misbehaviour: a refused connection, an HTTP error, a cut or malformed stream, JSON of the
wrong shape or a timeout becomes a failed entry whose details keep what was measured before the
failure. The functional single-request checks (chat, json_schema) retry a transient server error
(HTTP 429/500/502/503/504, a cut stream) up to ``transient_retries`` times and report every retry.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..service.model import ENGINES
from . import schema as bench_schema
from . import stats as bench_stats
from .http_client import BenchHTTPError, HTTPClient, StreamInfo

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


def readiness_paths(engine: str, health_paths: Sequence[str] | None = None) -> list[str]:
    """The health endpoints readiness waits for: the service's own (the plan's health_paths), else its engine's in
    the one engine table (service/model.py), /v1/models left to the model check that follows. A service whose only
    health path is /v1/models is probed at /health, and a 404 there lets /v1/models decide."""
    paths = health_paths if health_paths else (ENGINES[engine].health_paths if engine in ENGINES else ())
    return [p for p in paths if p != MODELS_PATH] or ["/health"]


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


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:120] + "..."


def first_choice(body: Any, what: str) -> dict[str, Any]:
    """body["choices"][0] of a chat completion (or chunk) as a dict; BenchHTTPError(protocol) when the
    JSON has another shape, so a wrong-shaped reply fails the check instead of raising inside it."""
    if not isinstance(body, dict):
        raise BenchHTTPError("protocol", f"{what} is not a JSON object: {_short(body)}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BenchHTTPError("protocol", f"{what} without choices: {_short(body)}")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise BenchHTTPError("protocol", f"{what}: choices[0] is not a JSON object: {_short(choice)}")
    for key in ("message", "delta"):
        if choice.get(key) is not None and not isinstance(choice[key], dict):
            raise BenchHTTPError("protocol", f"{what}: choices[0].{key} is not a JSON object: {_short(choice[key])}")
    return choice


def usage_of(body: dict[str, Any], what: str) -> dict[str, Any] | None:
    """body["usage"] as a dict, None when absent; BenchHTTPError(protocol) when it is not an object."""
    usage = body.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise BenchHTTPError("protocol", f"{what}: usage is not a JSON object: {_short(usage)}")
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


def _retry_note(transient: list[str], failed: bool = False) -> str:
    if not transient:
        return ""
    if failed:
        return f" ({len(transient)} earlier attempt(s) failed too, first: {transient[0]})"
    return f" (after {len(transient)} transient server error(s), retried; first: {transient[0]})"


def _error_text(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"timeout: no complete answer within timeout_s={timeout_s:g}s"
    if isinstance(exc, BenchHTTPError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"connection error: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Context:
    """Shared state of one benchmark run: the client, the settings, the prompt calibration."""

    def __init__(self, client: HTTPClient, settings: Settings) -> None:
        self.client = client
        self.s = settings
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


# --- readiness ---------------------------------------------------------------------------------


async def check_readiness(ctx: Context) -> dict[str, Any]:
    s = ctx.s
    start = time.monotonic()
    deadline = start + s.ready_timeout_s
    paths = readiness_paths(s.engine, s.health_paths)
    details: dict[str, Any] = {"health_endpoint": None, "attempts": 0, "waited_s": 0.0}
    last = "no attempt made"
    healthy = False
    while True:
        details["attempts"] += 1
        path = paths[0]
        try:
            resp = await asyncio.wait_for(ctx.client.request("GET", path), min(s.timeout_s, 30.0))
            if resp.status == 200:
                healthy = True
                details["health_endpoint"] = path
                break
            if resp.status in (404, 405) and len(paths) > 1:
                paths.pop(0)
                last = f"GET {ctx.client.url(path)}: HTTP {resp.status}, trying {paths[0]}"
                continue
            if resp.status in (404, 405):
                # No health endpoint at all (some OpenAI-compatible servers): /v1/models decides.
                healthy = True
                details["health_endpoint"] = f"{MODELS_PATH} (no {path})"
                break
            last = f"GET {ctx.client.url(path)}: HTTP {resp.status} {resp.body[:200].decode('utf-8', 'replace')}"
        except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
            last = f"GET {ctx.client.url(path)}: {_error_text(exc, min(s.timeout_s, 30.0))}"
            if isinstance(exc, BenchHTTPError) and exc.permanent:
                break  # waiting will not fix it: say so now, not after ready_timeout_s
        if time.monotonic() + s.ready_interval_s > deadline:
            break
        await asyncio.sleep(s.ready_interval_s)
    details["waited_s"] = round(time.monotonic() - start, 2)
    details["healthy"] = healthy
    if not healthy:
        details["last_error"] = last
        return entry(
            "readiness",
            "fail",
            f"not ready after {details['waited_s']}s (ready_timeout_s={s.ready_timeout_s:g}): {last}",
            details,
        )
    # /v1/models: may still answer 503 for a moment after health turns green.
    models: list[str] = []
    while True:
        try:
            resp = await asyncio.wait_for(ctx.client.request("GET", MODELS_PATH), min(s.timeout_s, 30.0))
            if resp.status == 200:
                body = resp.json()
                data = body.get("data") if isinstance(body, dict) else None
                for item in data if isinstance(data, list) else []:
                    if isinstance(item, dict) and item.get("id"):
                        models.append(str(item["id"]))
                        aliases = item.get("aliases")
                        if isinstance(aliases, list):
                            models.extend(str(a) for a in aliases if a != item["id"])
                break
            last = f"GET {ctx.client.url(MODELS_PATH)}: HTTP {resp.status}"
        except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
            last = f"GET {ctx.client.url(MODELS_PATH)}: {_error_text(exc, min(s.timeout_s, 30.0))}"
        if time.monotonic() + s.ready_interval_s > deadline:
            details["waited_s"] = round(time.monotonic() - start, 2)
            return entry("readiness", "fail", f"healthy, but {MODELS_PATH} did not answer: {last}", details)
        await asyncio.sleep(s.ready_interval_s)
    details["waited_s"] = round(time.monotonic() - start, 2)
    details["models"] = models
    if s.model not in models:
        return entry(
            "readiness",
            "fail",
            f"model {s.model!r} is not served: {MODELS_PATH} lists {models or 'nothing'}; "
            "set the service's model to what the server serves",
            details,
        )
    return entry(
        "readiness",
        "pass",
        f"ready after {details['waited_s']}s via {details['health_endpoint']}; {s.model} is listed",
        details,
    )


# --- chat --------------------------------------------------------------------------------------


async def check_chat(ctx: Context) -> dict[str, Any]:
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
        problems.append(f"non-streaming: {_error_text(exc, s.timeout_s)}{_retry_note(transient, failed=True)}")
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
        rec.error = _error_text(exc, s.timeout_s)
        problems.append(f"streaming: {rec.error}{_retry_note(transient[plain_retries:], failed=True)}")
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
        return entry("chat", "fail", "; ".join(problems), details)
    return entry(
        "chat",
        "pass",
        f"non-streaming and streaming replies complete ({len(rec.chunk_times)} content chunks, usage reported)"
        f"{_retry_note(transient)}",
        details,
    )


# --- json_schema -------------------------------------------------------------------------------


async def check_json_schema(ctx: Context) -> dict[str, Any]:
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
        return entry(
            "json_schema", "fail", _error_text(exc, s.timeout_s) + _retry_note(transient, failed=True), details
        )
    details["attempts"] = len(transient) + 1
    if transient:
        details["transient_errors"] = transient
    content = as_dict(choice.get("message")).get("content") or ""
    if not isinstance(content, str):
        return entry("json_schema", "fail", f"the reply's message content is not text: {_short(content)}", details)
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
        return entry("json_schema", "fail", f"the reply is not JSON{cut}: {exc}", details)
    errors = bench_schema.validate(value, schema)
    details["errors"] = errors[:20]
    if errors:
        return entry(
            "json_schema",
            "fail",
            f"the reply does not match the schema: {'; '.join(errors[:3])}{_retry_note(transient)}",
            details,
        )
    return entry(
        "json_schema",
        "pass",
        f"the reply parses and matches the schema ({bench_schema.VALIDATOR}){_retry_note(transient)}",
        details,
    )


# --- multi_turn --------------------------------------------------------------------------------


def _cached(usage: dict[str, Any] | None) -> int | None:
    if not usage:
        return None
    detail = usage.get("prompt_tokens_details")
    if not isinstance(detail, dict):
        return None
    return as_int(detail.get("cached_tokens"))


async def check_multi_turn(ctx: Context) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """N conversations x T turns in parallel, then a shared-prefix run. Returns (entries, section)."""
    s = ctx.s
    await ctx.calibrate()
    n_conv, n_turns = s.multi_turn_conversations, s.multi_turn_turns
    latencies: list[list[float]] = [[] for _turn in range(n_turns)]
    prompt_tokens: list[list[float]] = [[] for _turn in range(n_turns)]
    cached: list[list[float]] = [[] for _turn in range(n_turns)]
    errors: list[str] = []
    user_words = ctx.words_for_tokens(s.multi_turn_input_len, overhead=False)

    async def conversation(index: int) -> None:
        history: list[dict[str, str]] = []
        for turn in range(n_turns):
            history.append(
                {"role": "user", "content": f"Conversation {index} turn {turn + 1}: {ctx.words(user_words)}"}
            )
            start = time.perf_counter()
            try:
                body = await ctx.chat(history, s.multi_turn_output_len)
            except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
                errors.append(f"conversation {index} turn {turn + 1}: {_error_text(exc, s.timeout_s)}")
                return
            latencies[turn].append((time.perf_counter() - start) * 1000)
            usage = as_dict(body.get("usage"))
            tokens = as_int(usage.get("prompt_tokens"))
            if tokens is not None:
                prompt_tokens[turn].append(tokens)
            hit = _cached(usage)
            if hit is not None:
                cached[turn].append(hit)
            reply = as_dict(first_choice(body, "chat completion").get("message")).get("content")
            history.append({"role": "assistant", "content": reply if isinstance(reply, str) and reply else "."})

    await asyncio.gather(*(conversation(i) for i in range(n_conv)))
    per_turn = []
    for turn in range(n_turns):
        per_turn.append(
            {
                "turn": turn + 1,
                "completed": len(latencies[turn]),
                "median_ms": _r(bench_stats.median(latencies[turn])),
                "p90_ms": _r(bench_stats.percentile(latencies[turn], 90.0)),
                "median_prompt_tokens": _r(bench_stats.median(prompt_tokens[turn])),
                "median_cached_tokens": _r(bench_stats.median(cached[turn])),
            }
        )
    cache_rate, prefix_details = await _shared_prefix_run(ctx, errors)
    reported = any(cached[t] for t in range(n_turns)) or prefix_details.get("reported", False)
    section: dict[str, Any] = {
        "conversations": n_conv,
        "turns": n_turns,
        "per_turn": per_turn,
        "cache_hit_rate": cache_rate,
        "cached_tokens_reported": reported,
        "shared_prefix": prefix_details,
        "errors": len(errors),
        "calibration": ctx.calibration,
    }
    total = n_conv * n_turns
    done = sum(len(x) for x in latencies)
    entries = []
    if errors:
        entries.append(
            entry(
                "multi_turn",
                "fail",
                f"{done} of {total} turns completed; {len(errors)} failed, first: {errors[0]}",
                {"errors": errors[:10]},
            )
        )
    else:
        last = per_turn[-1]
        entries.append(
            entry(
                "multi_turn",
                "pass",
                f"{n_conv} conversations x {n_turns} turns completed; last turn median {last['median_ms']} ms, "
                f"P90 {last['p90_ms']} ms",
            )
        )
    if cache_rate["achieved"] is None:
        entries.append(
            entry(
                "prefix_cache",
                "not_reported",
                "the server does not report usage.prompt_tokens_details.cached_tokens "
                "(SGLang: --enable-cache-report); cache hits cannot be measured",
                {"expected": cache_rate["expected"]},
            )
        )
    else:
        entries.append(
            entry(
                "prefix_cache",
                "pass",
                f"shared-prefix cache hit rate {cache_rate['achieved']:.3f} achieved, {cache_rate['expected']:.3f} "
                "expected (thresholds.min_cache_hit_rate enforces a minimum)",
                dict(cache_rate),
            )
        )
    return entries, section


async def _shared_prefix_run(ctx: Context, errors: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """expected = shared prefix tokens / prompt tokens over the requests after the first."""
    s = ctx.s
    prefix = ctx.words(ctx.words_for_tokens(s.shared_prefix_len, overhead=False))
    suffix_words = max(4, ctx.words_for_tokens(max(s.shared_prefix_len // 8, 8), overhead=False))
    suffixes = [f"Question {i}: {ctx.words(suffix_words)}" for i in range(max(s.multi_turn_conversations, 2))]
    details: dict[str, Any] = {"requests": len(suffixes), "reported": False}
    rate: dict[str, Any] = {"expected": 0.0, "achieved": None}
    try:
        base = await ctx.chat([{"role": "user", "content": suffixes[0]}], 1)
        first = await ctx.chat([{"role": "user", "content": f"{prefix}\n\n{suffixes[0]}"}], 1)
        shared = int(first["usage"]["prompt_tokens"]) - int(base["usage"]["prompt_tokens"])
    except (BenchHTTPError, OSError, asyncio.TimeoutError, KeyError, TypeError, ValueError) as exc:
        errors.append(
            f"shared prefix: {_error_text(exc, s.timeout_s) if not isinstance(exc, KeyError) else 'no usage'}"
        )
        return rate, details
    details["shared_prefix_tokens"] = shared
    results = await asyncio.gather(
        *(ctx.chat([{"role": "user", "content": f"{prefix}\n\n{sfx}"}], 1) for sfx in suffixes[1:]),
        return_exceptions=True,
    )
    prompts = 0
    hits = 0
    reported_prompts = 0
    for res in results:
        if isinstance(res, BaseException):
            errors.append(f"shared prefix: {_error_text(res, s.timeout_s)}")
            continue
        usage = as_dict(res.get("usage"))
        tokens = as_int(usage.get("prompt_tokens")) or 0
        prompts += tokens
        hit = _cached(usage)
        if hit is not None:
            hits += hit
            reported_prompts += tokens
    details["prompt_tokens"] = prompts
    details["reported"] = reported_prompts > 0
    if prompts:
        rate["expected"] = round(
            min(shared * (len(results) - sum(isinstance(r, BaseException) for r in results)) / prompts, 1.0), 4
        )
    if reported_prompts:
        rate["achieved"] = round(hits / reported_prompts, 4)
    return rate, details


def _r(value: float | None, ndigits: int = 2) -> float | None:
    return None if value is None else round(value, ndigits)


# --- load --------------------------------------------------------------------------------------


async def run_level(ctx: Context, concurrency: int, num_requests: int) -> dict[str, Any]:
    """One concurrency level of the sweep; streaming requests with random prompts."""
    s = ctx.s
    prompts = [ctx.prompt(s.input_len, tag=f"[{concurrency}-{i}]") for i in range(num_requests)]
    payloads = [ctx.chat_payload([{"role": "user", "content": p}], s.output_len, stream=True) for p in prompts]
    records = [StreamRecord() for _request in range(num_requests)]
    timeout = s.timeout_s
    perf = time.perf_counter

    async def one(i: int) -> None:
        rec = records[i]
        rec.sent = perf()
        try:
            await asyncio.wait_for(stream_chat(ctx, payloads[i], rec), timeout)
        except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
            rec.error = _error_text(exc, timeout)
            if rec.chunk_times:
                rec.error += f" (after {len(rec.chunk_times)} content chunks)"
        rec.end = perf()

    t0 = perf()
    if s.request_rate is None:
        # Closed loop: each of `concurrency` users sends its next request when the last one ends,
        # so a request is scheduled when it is sent and there is no queue to hide.
        order = iter(range(num_requests))

        async def user() -> None:
            for i in order:
                records[i].scheduled = perf()
                await one(i)

        await asyncio.gather(*(user() for _user in range(min(concurrency, num_requests))))
    else:
        # Open loop: Poisson arrivals. The clock starts at the arrival, so time spent waiting for
        # one of the `concurrency` slots counts in TTFT and latency.
        slots = asyncio.Semaphore(concurrency)

        async def arrive(i: int) -> None:
            async with slots:
                await one(i)

        tasks = []
        at = t0
        rng = random.Random(s.seed + concurrency)
        for i in range(num_requests):
            delay = at - perf()
            if delay > 0:
                await asyncio.sleep(delay)
            records[i].scheduled = at
            tasks.append(asyncio.ensure_future(arrive(i)))
            at += rng.expovariate(s.request_rate)
        await asyncio.gather(*tasks)
    duration = perf() - t0
    return summarize_level(records, concurrency, s.request_rate, duration)


def summarize_level(
    records: list[StreamRecord], concurrency: int, request_rate: float | None, duration: float
) -> dict[str, Any]:
    ok = [r for r in records if r.error is None]
    ttft: list[float] = []
    itl: list[float] = []
    tpot: list[float] = []
    e2e: list[float] = []
    queue: list[float] = []
    per_user: list[float] = []
    out_total = 0
    in_total = 0
    sources = set()
    for r in ok:
        latency = r.end - r.scheduled
        e2e.append(latency * 1000)
        queue.append((r.sent - r.scheduled) * 1000)
        usage = as_dict(r.usage)
        completion = as_int(usage.get("completion_tokens"))
        if completion is not None:
            out = completion
            sources.add("usage")
        else:
            out = len(r.chunk_times)
            sources.add("chunks")
        prompt = as_int(usage.get("prompt_tokens"))
        if prompt is not None:
            in_total += prompt
        out_total += out
        if latency > 0:
            per_user.append(out / latency)
        times = r.chunk_times
        if times:
            first = times[0] - r.scheduled
            ttft.append(first * 1000)
            itl.extend((b - a) * 1000 for a, b in itertools.pairwise(times))
            if out > 1:
                tpot.append((latency - first) / (out - 1) * 1000)
    errors = [r.error for r in records if r.error is not None]
    samples: dict[str, int] = {}
    for err in errors:
        samples[err] = samples.get(err, 0) + 1
    duration = max(duration, 1e-9)
    return {
        "concurrency": concurrency,
        "request_rate": request_rate,
        "mode": "closed" if request_rate is None else "poisson",
        "num_requests": len(records),
        "completed": len(ok),
        "errors": len(errors),
        "error_samples": [{"message": m, "count": c} for m, c in list(samples.items())[:5]],
        "duration_s": round(duration, 4),
        "request_throughput": round(len(ok) / duration, 4),
        "output_throughput": round(out_total / duration, 3),
        "total_throughput": round((out_total + in_total) / duration, 3),
        "total_input_tokens": in_total,
        "total_output_tokens": out_total,
        "mean_input_tokens": round(in_total / len(ok), 2) if ok else None,
        "mean_output_tokens": round(out_total / len(ok), 2) if ok else None,
        "token_source": "+".join(sorted(sources)) or None,
        "without_content": sum(1 for r in ok if not r.chunk_times),
        "ttft_ms": bench_stats.summarize(ttft),
        "itl_ms": bench_stats.summarize(itl),
        "tpot_ms": bench_stats.summarize(tpot),
        "e2e_ms": bench_stats.summarize(e2e),
        "queue_ms": bench_stats.summarize(queue),
        "per_user_output_tps": bench_stats.summarize_user(per_user),
        "ttft_samples_ms": [round(x, 3) for x in ttft[:TTFT_SAMPLE_CAP]],
    }


async def check_load(ctx: Context, error_budget: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweep. A level with failed requests fails the check unless a max_error_rate threshold
    (error_budget) decides instead; a level where nothing completed always fails it."""
    s = ctx.s
    await ctx.calibrate()
    rows = []
    for level in s.concurrency:
        n = s.num_prompts if s.num_prompts else max(4 * level, 16)
        rows.append(await run_level(ctx, level, n))
    problems = []
    for row in rows:
        if row["completed"] == 0:
            first = row["error_samples"][0]["message"] if row["error_samples"] else "no request"
            problems.append(f"concurrency {row['concurrency']}: no request completed ({first})")
        elif row["without_content"] == row["completed"]:
            # Nothing to time: TTFT, ITL and TPOT would be empty and their thresholds meaningless.
            problems.append(
                f"concurrency {row['concurrency']}: none of the {row['completed']} completed requests streamed a "
                "content chunk (delta.content or delta.reasoning_content), so TTFT and ITL cannot be measured"
            )
        elif row["errors"] and not error_budget:
            problems.append(
                f"concurrency {row['concurrency']}: {row['errors']} of {row['num_requests']} requests failed "
                f"({row['error_samples'][0]['message']})"
            )
    summary = ", ".join(
        f"c={r['concurrency']}: {r['output_throughput']:.1f} tok/s, TTFT p50 {r['ttft_ms']['p50']} ms" for r in rows
    )
    details = {"calibration": ctx.calibration, "input_len": s.input_len, "output_len": s.output_len}
    if problems:
        return entry("load", "fail", "; ".join(problems), details), rows
    return entry("load", "pass", summary, details), rows
