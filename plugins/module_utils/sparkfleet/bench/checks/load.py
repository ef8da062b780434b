"""The load check: a sweep over concurrency levels with streaming requests (TTFT, ITL, TPOT, end-to-end latency,
throughput, per-user rate). Its report section is ``load`` (one row per level); its thresholds are per level:
a number for every level, or a dict keyed by concurrency level (``{"32": 100}``; ``"all"`` or ``"*"`` for every
level)."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from typing import Any

from .. import stats as bench_stats
from ..http_client import BenchHTTPError
from .base import (
    TTFT_SAMPLE_CAP,
    Check,
    Context,
    Outcome,
    StreamRecord,
    Threshold,
    as_dict,
    as_int,
    entry,
    error_text,
    fmt,
    is_number,
    stream_chat,
    threshold_entry,
    threshold_skip,
)

NAME = "load"
ERROR_BUDGET = "max_error_rate"


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
            rec.error = error_text(exc, timeout)
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
        return entry(NAME, "fail", "; ".join(problems), details), rows
    return entry(NAME, "pass", summary, details), rows


async def run(ctx: Context) -> Outcome:
    result, rows = await check_load(ctx, ERROR_BUDGET in ctx.thresholds)
    return Outcome([result], section=rows)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The load table of the text summary."""
    head = (
        f"{'conc':>5} {'reqs':>5} {'ok':>5} {'err':>4} {'req/s':>8} {'out tok/s':>10} {'tot tok/s':>10} "
        f"{'TTFT p50':>9} {'TTFT p90':>9} {'ITL p50':>8} {'TPOT p50':>9} {'E2E p90':>9} {'user mean':>10} "
        f"{'user min':>9}"
    )
    lines = ["load (latencies in ms, per-user in output tok/s)", head]
    for row in rows:
        lines.append(
            f"{row['concurrency']:>5} {row['num_requests']:>5} {row['completed']:>5} {row['errors']:>4} "
            f"{fmt(row['request_throughput'], 2):>8} {fmt(row['output_throughput']):>10} "
            f"{fmt(row['total_throughput']):>10} {fmt(row['ttft_ms']['p50']):>9} "
            f"{fmt(row['ttft_ms']['p90']):>9} {fmt(row['itl_ms']['p50'], 2):>8} "
            f"{fmt(row['tpot_ms']['p50'], 2):>9} {fmt(row['e2e_ms']['p90']):>9} "
            f"{fmt(row['per_user_output_tps']['mean']):>10} {fmt(row['per_user_output_tps']['min']):>9}"
        )
    return lines


# --- thresholds (per concurrency level) ----------------------------------------------------------

ALL_LEVELS = ("all", "*")
# name -> (kind, the row's value: a dotted path, or error_rate; what it limits)
_LEVEL_METRICS: dict[str, tuple[str, str, str]] = {
    "min_output_tps": ("min", "output_throughput", "output tokens/s of the level"),
    "min_total_tps": ("min", "total_throughput", "prompt + output tokens/s of the level"),
    "min_request_throughput": ("min", "request_throughput", "completed requests/s of the level"),
    "min_per_user_tps": ("min", "per_user_output_tps.mean", "mean per-user output tok/s"),
    "min_worst_user_tps": ("min", "per_user_output_tps.min", "the slowest user's output tok/s"),
    ERROR_BUDGET: (
        "max",
        "error_rate",
        "failed requests / requests (0..1); with it, failed requests no longer fail the check",
    ),
}
_LATENCY = re.compile(r"max_(mean|p50|p90|p99)_(ttft|itl|tpot|e2e)_ms\Z")
LATENCY_NAME = "max_<mean|p50|p90|p99>_<ttft|itl|tpot|e2e>_ms"


def _level_metric(name: str) -> tuple[str, str]:
    if name in _LEVEL_METRICS:
        return _LEVEL_METRICS[name][:2]
    match = _LATENCY.fullmatch(name)
    if match is None:  # pragma: no cover - only called for a name one of the thresholds matched
        raise ValueError(f"{name} is not a load threshold")
    return "max", f"{match.group(2)}_ms.{match.group(1)}"


def validate_level_threshold(name: str, value: Any, concurrency: list[int]) -> list[str]:
    """A number (every level) or a dict of concurrency level (or all) to number."""
    if is_number(value):
        return []
    if not isinstance(value, dict) or not value:
        return [f"thresholds.{name} must be a number or a dict of concurrency level to number, got {value!r}"]
    problems: list[str] = []
    for level, limit in value.items():
        if not is_number(limit):
            problems.append(f"thresholds.{name}.{level} must be a number, got {limit!r}")
        if str(level) in ALL_LEVELS:
            continue
        try:
            as_level = int(str(level))
        except ValueError:
            problems.append(f"thresholds.{name} key {level!r} must be a concurrency level (an integer) or 'all'")
            continue
        if as_level not in concurrency:
            problems.append(
                f"thresholds.{name} names concurrency {as_level}, which is not in the sweep {concurrency}: "
                "add it to concurrency or drop the key"
            )
    return problems


def _lookup(row: dict[str, Any], dotted: str) -> float | None:
    if dotted == "error_rate":
        total = row.get("num_requests") or 0
        return None if not total else round(row.get("errors", 0) / total, 6)
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return float(value) if is_number(value) else None


def evaluate_level_threshold(name: str, value: Any, report: dict[str, Any], ran: bool) -> list[dict[str, Any]]:
    """One entry per level the threshold names (``<name>@<level>``)."""
    kind, dotted = _level_metric(name)
    load_rows = {int(row["concurrency"]): row for row in report.get(NAME) or []}
    targets: list[tuple[int | None, float]]
    if is_number(value):
        targets = [(level, float(value)) for level in sorted(load_rows)] or [(None, float(value))]
    else:
        targets = []
        for key, limit in value.items():
            if str(key) in ALL_LEVELS:
                targets.extend((level, float(limit)) for level in sorted(load_rows))
                if not load_rows:
                    targets.append((None, float(limit)))
            else:
                targets.append((int(str(key)), float(limit)))
    entries: list[dict[str, Any]] = []
    for level, limit in targets:
        label = f"{name}@{level}" if level is not None else name
        if not ran:
            entries.append(threshold_skip(label, limit, f"the {NAME} check was not run"))
        elif level is None or level not in load_rows:
            entries.append(
                {
                    "name": label,
                    "limit": limit,
                    "measured": None,
                    "status": "fail",
                    "message": "no load result for this concurrency level",
                }
            )
        else:
            measured = _lookup(load_rows[level], dotted)
            entries.append(threshold_entry(label, limit, measured, kind, "not measured: no request completed"))
    return entries


def _level_threshold(name: str, description: str, pattern: re.Pattern[str] | None = None) -> Threshold:
    return Threshold(
        name=name,
        description=description,
        validate=validate_level_threshold,
        evaluate=evaluate_level_threshold,
        pattern=pattern,
    )


CHECK = Check(
    name=NAME,
    run=run,
    description=(
        "C(load) sweeps O(concurrency) levels with streaming requests and reports TTFT, ITL, TPOT, end-to-end "
        "latency, throughput and per-user output rate. Token counts come from the server's C(usage)."
    ),
    section=NAME,
    section_empty=[],
    thresholds=(
        *(_level_threshold(name, spec[2]) for name, spec in _LEVEL_METRICS.items()),
        _level_threshold(LATENCY_NAME, "a latency statistic of the level, in ms (max_p90_ttft_ms)", _LATENCY),
    ),
    summary=summary,
)
