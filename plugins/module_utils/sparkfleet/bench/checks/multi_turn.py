"""The multi_turn check: parallel conversations, then a shared-prefix run (entry ``prefix_cache``) comparing the
expected and the achieved prefix-cache hit rate. Its report section is ``multi_turn``; its thresholds
``min_cache_hit_rate`` and ``max_turn_p90_ms``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .. import stats as bench_stats
from ..http_client import BenchHTTPError
from .base import (
    Check,
    Context,
    Outcome,
    as_dict,
    as_int,
    entry,
    error_text,
    first_choice,
    fmt,
    global_threshold,
    is_number,
)

NAME = "multi_turn"
PREFIX_CACHE = "prefix_cache"


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
                errors.append(f"conversation {index} turn {turn + 1}: {error_text(exc, s.timeout_s)}")
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
                NAME,
                "fail",
                f"{done} of {total} turns completed; {len(errors)} failed, first: {errors[0]}",
                {"errors": errors[:10]},
            )
        )
    else:
        last = per_turn[-1]
        entries.append(
            entry(
                NAME,
                "pass",
                f"{n_conv} conversations x {n_turns} turns completed; last turn median {last['median_ms']} ms, "
                f"P90 {last['p90_ms']} ms",
            )
        )
    if cache_rate["achieved"] is None:
        entries.append(
            entry(
                PREFIX_CACHE,
                "not_reported",
                "the server does not report usage.prompt_tokens_details.cached_tokens "
                "(SGLang: --enable-cache-report); cache hits cannot be measured",
                {"expected": cache_rate["expected"]},
            )
        )
    else:
        entries.append(
            entry(
                PREFIX_CACHE,
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
        errors.append(f"shared prefix: {error_text(exc, s.timeout_s) if not isinstance(exc, KeyError) else 'no usage'}")
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
            errors.append(f"shared prefix: {error_text(res, s.timeout_s)}")
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


async def run(ctx: Context) -> Outcome:
    entries, section = await check_multi_turn(ctx)
    return Outcome(entries, section=section)


def summary(multi: dict[str, Any]) -> list[str]:
    """The multi-turn lines of the text summary."""
    rate = multi["cache_hit_rate"]
    lines = [
        f"multi-turn: {multi['conversations']} conversations x {multi['turns']} turns; shared-prefix cache hit "
        f"rate expected {fmt(rate['expected'], 3)}, achieved "
        f"{fmt(rate['achieved'], 3) if rate['achieved'] is not None else 'not reported'}",
        f"{'turn':>5} {'done':>5} {'median ms':>10} {'p90 ms':>9} {'prompt tok':>11} {'cached tok':>11}",
    ]
    for turn in multi["per_turn"]:
        lines.append(
            f"{turn['turn']:>5} {turn['completed']:>5} {fmt(turn['median_ms']):>10} {fmt(turn['p90_ms']):>9} "
            f"{fmt(turn['median_prompt_tokens']):>11} "
            f"{fmt(turn['median_cached_tokens']) if turn['median_cached_tokens'] is not None else 'n/r':>11}"
        )
    return lines


def _cache_hit_rate(report: dict[str, Any]) -> float | None:
    multi = report.get(NAME) or {}
    achieved = (multi.get("cache_hit_rate") or {}).get("achieved")
    return float(achieved) if isinstance(achieved, (int, float)) and not isinstance(achieved, bool) else None


def _slowest_turn_p90(report: dict[str, Any]) -> float | None:
    turns = (report.get(NAME) or {}).get("per_turn") or []
    p90s = [float(t["p90_ms"]) for t in turns if is_number(t.get("p90_ms"))]
    return max(p90s) if p90s else None


CHECK = Check(
    name=NAME,
    run=run,
    description=(
        "C(multi_turn) runs O(multi_turn_conversations) conversations of O(multi_turn_turns) turns in parallel, "
        "then a shared-prefix run that compares the expected and the achieved prefix-cache hit rate (entry "
        "C(prefix_cache))."
    ),
    entries=(NAME, PREFIX_CACHE),
    section=NAME,
    section_empty=None,
    thresholds=(
        global_threshold(
            NAME,
            "min_cache_hit_rate",
            kind="min",
            measure=_cache_hit_rate,
            missing="not measured: the server did not report cached prompt tokens",
            description="the shared-prefix run's achieved cache hit rate (0..1)",
        ),
        global_threshold(
            NAME,
            "max_turn_p90_ms",
            kind="max",
            measure=_slowest_turn_p90,
            missing="not measured: no turn completed",
            description="the slowest multi-turn turn's P90 latency",
        ),
    ),
    summary=summary,
)
