"""The fleet report: many ``sparkfleet.benchmark/v1`` reports in, one Markdown, HTML and JSON summary out.

Stdlib only (this file is shipped to the controller's module runner by Ansible). The HTML page is
self-contained: inline CSS and SVG generated here, no JavaScript, no fonts or images from the network.
Every string that comes from a report or the inventory goes through ``html.escape`` (HTML and SVG) or
``md_cell`` (Markdown).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contracts import BENCHMARK_SCHEMA, DTYPE_BYTES, FLEET_SCHEMA

OUTPUT_FILES = ("fleet-report.md", "fleet-report.html", "fleet-report.json")


class ReportError(Exception):
    """A benchmark report that cannot be read or does not follow the schema."""


@dataclass
class Row:
    """One host/service line of the fleet report."""

    host: str
    service: str
    profile: str | None = None
    model: str = ""
    engine: str = ""
    source: str = ""
    benchmark_ok: bool = False
    error: str | None = None
    not_run: str | None = None
    throughput: dict[int, float] = field(default_factory=dict)
    error_rate: dict[int, float] = field(default_factory=dict)
    p90_ttft_ms: float | None = None
    p90_ttft_concurrency: int | None = None
    ttft_samples_ms: list[float] = field(default_factory=list)
    ttft_samples_concurrency: int | None = None
    cache_hit_rate: float | None = None
    cache_hit_expected: float | None = None
    failed_checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    not_reported: list[str] = field(default_factory=list)
    decode_tps_per_user: float | None = None
    decode_concurrency: int | None = None
    ceiling_tps_per_user: float | None = None
    slow_at: list[int] = field(default_factory=list)
    # Concurrencies at which output throughput fell by more than the slow margin since the previous run.
    slower_at: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.service)

    @property
    def label(self) -> str:
        return f"{self.host}/{self.service}"

    @property
    def passed(self) -> bool:
        return self.error is None and self.benchmark_ok and not self.failures and not self.failed_checks

    @property
    def status(self) -> str:
        if self.not_run is not None:
            return "NOT RUN"
        return "PASS" if self.passed else "FAIL"

    @property
    def ceiling_pct(self) -> float | None:
        if self.decode_tps_per_user is None or not self.ceiling_tps_per_user:
            return None
        return 100.0 * self.decode_tps_per_user / self.ceiling_tps_per_user

    @property
    def flagged(self) -> bool:
        return bool(self.slow_at)


@dataclass
class Fleet:
    rows: list[Row]
    concurrencies: list[int]
    slow_margin: float
    run_id: str = ""
    generated_at: str = ""
    warnings: list[str] = field(default_factory=list)
    # Planned vs serving (report/reconcile.py); None when the run passed no plans.
    reconciliation: dict[str, Any] | None = None
    # What produced the run (report/history.py run_record) and the previous run's kept summary.
    record: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    # The measured fabric check's verdicts shown with the run (report/fabric.py), one per service across hosts.
    fabric: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        out: list[str] = []
        for row in self.rows:
            if row.not_run is not None:
                continue
            if row.error:
                out.append(f"{row.label}: {row.error}")
            elif row.failures:
                out.extend(f"{row.label}: {msg}" for msg in row.failures)
            elif row.failed_checks:
                out.append(f"{row.label}: failed {', '.join(row.failed_checks)}")
            elif not row.benchmark_ok:
                out.append(f"{row.label}: the benchmark reported ok=false without naming a failure")
        return out

    @property
    def flags(self) -> list[str]:
        out: list[str] = []
        for row in self.rows:
            if row.not_run is not None:
                out.append(f"{row.label}: not run: {row.not_run}")
            out.extend(f"{row.label}: {msg}" for msg in row.flags)
        return out


# --------------------------------------------------------------------------------------------- reading


def _num(value: Any) -> float | None:
    """A finite float, or None for null/NaN/missing/non-numbers (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def validate_report(obj: Any) -> list[str]:
    """Problems that make a report unusable (an empty list when it follows the schema closely enough)."""
    if not isinstance(obj, dict):
        return ["the report is not a JSON object"]
    problems: list[str] = []
    if obj.get("schema") != BENCHMARK_SCHEMA:
        problems.append(f"schema is {obj.get('schema')!r}, expected {BENCHMARK_SCHEMA!r}")
    for key in ("host", "service"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            problems.append(f"{key!r} must be a non-empty string")
    if not isinstance(obj.get("ok"), bool):
        problems.append("'ok' must be true or false")
    for key in ("checks", "load", "thresholds", "failures"):
        if key in obj and not isinstance(obj[key], list):
            problems.append(f"{key!r} must be a list")
    if isinstance(obj.get("load"), list):
        for i, entry in enumerate(obj["load"]):
            conc = entry.get("concurrency") if isinstance(entry, dict) else None
            if isinstance(conc, bool) or not isinstance(conc, int):
                problems.append(f"load[{i}] must be an object with an integer 'concurrency'")
    return problems


def load_report(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    problems = validate_report(obj)
    if problems:
        raise ReportError(f"{path}: not a {BENCHMARK_SCHEMA} report: {'; '.join(problems)}")
    result: dict[str, Any] = obj
    return result


def find_report_files(inputs: list[str]) -> list[Path]:
    """JSON files named in ``inputs``; directories are searched recursively. Our own outputs are skipped."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(q for q in sorted(p.rglob("*.json")) if q.name not in OUTPUT_FILES)
        elif p.is_file():
            found.append(p)
    seen: set[Path] = set()
    unique: list[Path] = []
    for p in found:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(p)
    return unique


# --------------------------------------------------------------------------------------------- rows


def _per_user_tps(entry: dict[str, Any]) -> float | None:
    per_user = entry.get("per_user_output_tps")
    if isinstance(per_user, dict):
        for key in ("p50", "mean"):
            v = _num(per_user.get(key))
            if v is not None and v > 0:
                return v
    tpot = entry.get("tpot_ms")
    if isinstance(tpot, dict):
        v = _num(tpot.get("p50"))
        if v is not None and v > 0:
            return 1000.0 / v
    return None


def ceiling_tps_per_user(bandwidth_gbps: float | None, params_b: float | None, dtype: str | None) -> float | None:
    """Batch-1 decode ceiling: every weight is read once per generated token.

    ceiling = bandwidth [B/s] / (parameters * bytes per parameter). KV-cache reads and activation traffic are
    ignored, so the real ceiling is lower; it is an upper bound to compare against, not a target.
    """
    if not bandwidth_gbps or not params_b or not dtype:
        return None
    bpp = DTYPE_BYTES.get(dtype.lower())
    if bpp is None or bandwidth_gbps <= 0 or params_b <= 0:
        return None
    return bandwidth_gbps * 1e9 / (params_b * 1e9 * bpp)


def _bandwidth(profiles: dict[str, Any], profile: str | None) -> float | None:
    if not profile or not isinstance(profiles.get(profile), dict):
        return None
    return _num(profiles[profile].get("memory_bandwidth_gbps"))


def row_from_report(report: dict[str, Any], source: str, meta: dict[str, Any] | None, profiles: dict[str, Any]) -> Row:
    meta = meta or {}
    row = Row(
        host=str(report["host"]),
        service=str(report["service"]),
        profile=report.get("profile") or meta.get("profile"),
        model=str(report.get("model") or meta.get("model") or ""),
        engine=str(report.get("engine") or meta.get("engine") or ""),
        source=source,
        benchmark_ok=bool(report["ok"]),
    )
    loads = sorted((e for e in report.get("load") or [] if isinstance(e, dict)), key=lambda e: int(e["concurrency"]))
    for entry in loads:
        c = int(entry["concurrency"])
        tps = _num(entry.get("output_throughput"))
        if tps is not None:
            row.throughput[c] = tps
        n = _num(entry.get("num_requests"))
        errors = _num(entry.get("errors"))
        if n and errors is not None:
            row.error_rate[c] = errors / n
    if loads:
        top = loads[-1]
        ttft = top.get("ttft_ms") if isinstance(top.get("ttft_ms"), dict) else {}
        row.p90_ttft_ms = _num(ttft.get("p90")) if ttft else None
        row.p90_ttft_concurrency = int(top["concurrency"])
        samples = [v for v in (_num(s) for s in top.get("ttft_samples_ms") or []) if v is not None]
        row.ttft_samples_ms = samples
        row.ttft_samples_concurrency = int(top["concurrency"])
        for entry in loads:
            tps_user = _per_user_tps(entry)
            if tps_user is not None:
                row.decode_tps_per_user = tps_user
                row.decode_concurrency = int(entry["concurrency"])
                break
    multi = report.get("multi_turn")
    if isinstance(multi, dict) and isinstance(multi.get("cache_hit_rate"), dict):
        row.cache_hit_rate = _num(multi["cache_hit_rate"].get("achieved"))
        row.cache_hit_expected = _num(multi["cache_hit_rate"].get("expected"))
    for check in report.get("checks") or []:
        if not isinstance(check, dict):
            continue
        name = str(check.get("name", "?"))
        if check.get("status") == "fail":
            row.failed_checks.append(name)
        elif check.get("status") == "not_reported":
            row.not_reported.append(name)
    for th in report.get("thresholds") or []:
        if isinstance(th, dict) and th.get("status") == "fail":
            row.failed_checks.append(str(th.get("name", "?")))
    row.failures = [str(f) for f in report.get("failures") or []]

    params_b = _num(meta.get("model_params_b")) or _num(report.get("model_params_b"))
    dtype = meta.get("model_dtype") or report.get("model_dtype")
    row.ceiling_tps_per_user = ceiling_tps_per_user(
        _bandwidth(profiles, row.profile), params_b, str(dtype) if dtype else None
    )
    if row.not_reported:
        row.flags.append(f"not reported by the server: {', '.join(row.not_reported)}")
    return row


def row_missing(meta: dict[str, Any], reason: str | None) -> Row:
    return Row(
        host=str(meta.get("host", "?")),
        service=str(meta.get("service", "?")),
        profile=meta.get("profile"),
        model=str(meta.get("model") or ""),
        engine=str(meta.get("engine") or ""),
        error=reason,
    )


# --------------------------------------------------------------------------------------------- the fleet


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def flag_slow(rows: list[Row], margin: float) -> None:
    """Flag rows whose output throughput is more than ``margin`` below the median of comparable rows.

    Comparable = same model, engine and profile, measured at the same concurrency: a Spark is not slow
    because a Station serving the same model is faster. Groups of one are not compared.
    """
    groups: dict[tuple[str, str, str | None], list[Row]] = {}
    for row in rows:
        if row.error is None and row.throughput:
            groups.setdefault((row.model, row.engine, row.profile), []).append(row)
    slow_detail: dict[tuple[str, str], list[str]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        levels = sorted({c for r in members for c in r.throughput})
        for c in levels:
            values = [r.throughput[c] for r in members if c in r.throughput]
            if len(values) < 2:
                continue
            med = _median(values)
            if med <= 0:
                continue
            for r in members:
                v = r.throughput.get(c)
                if v is not None and v < med * (1.0 - margin):
                    r.slow_at.append(c)
                    slow_detail.setdefault(r.key, []).append(
                        f"{v:,.1f} at c{c} ({100 * (1 - v / med):.0f}% below {med:,.1f})"
                    )
        for r in members:
            if r.key in slow_detail:
                r.flags.append(
                    f"slow: output tok/s {'; '.join(slow_detail[r.key])}, the median of {len(members)} hosts "
                    f"with the same model, engine and profile (margin {100 * margin:.0f}%)"
                )


def build_fleet(
    report_files: list[Path],
    expected: list[dict[str, Any]],
    *,
    profiles: dict[str, Any],
    slow_margin: float = 0.2,
    run_id: str = "",
    generated_at: str = "",
) -> Fleet:
    warnings: list[str] = []
    meta_by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for m in expected:
        meta_by_key[(str(m.get("host", "")), str(m.get("service", "")))] = m
    rows: dict[tuple[str, str], Row] = {}
    started: dict[tuple[str, str], str] = {}
    broken: list[Row] = []
    for path in report_files:
        try:
            report = load_report(path)
        except ReportError as exc:
            warnings.append(str(exc))
            broken.append(Row(host="?", service=path.name, source=str(path), error=str(exc)))
            continue
        key = (str(report["host"]), str(report["service"]))
        when = str(report.get("started_at") or "")
        if key in rows:
            warnings.append(f"two reports for {key[0]}/{key[1]}: kept the later one ({max(when, started[key])})")
            if when < started[key]:
                continue
        rows[key] = row_from_report(report, str(path), meta_by_key.get(key), profiles)
        started[key] = when
    for key, meta in meta_by_key.items():
        if key not in rows:
            if meta.get("not_run"):
                rows[key] = row_missing(meta, None)
                rows[key].not_run = str(meta["not_run"])
            else:
                rows[key] = row_missing(meta, str(meta.get("error") or "no benchmark report was produced"))
    ordered = sorted(rows.values(), key=lambda r: (r.host, r.service)) + broken
    flag_slow(ordered, slow_margin)
    for row in ordered:
        pct = row.ceiling_pct
        if pct is not None and pct > 100.0:
            row.flags.append(
                f"decode {row.decode_tps_per_user:.1f} tok/s per user is above the bandwidth ceiling "
                f"{row.ceiling_tps_per_user:.1f}: check model_params_b and model_dtype in the inventory"
            )
    levels = sorted({c for r in ordered for c in r.throughput})
    return Fleet(ordered, levels, slow_margin, run_id, generated_at, warnings)


# --------------------------------------------------------------------------------------------- JSON


def summary(fleet: Fleet) -> dict[str, Any]:
    return {
        "schema": FLEET_SCHEMA,
        "run_id": fleet.run_id,
        "generated_at": fleet.generated_at,
        "slow_margin": fleet.slow_margin,
        "concurrencies": fleet.concurrencies,
        "total": len(fleet.rows),
        "passed": sum(r.passed for r in fleet.rows),
        "failed": sum(r.status == "FAIL" for r in fleet.rows),
        "not_run": sum(r.not_run is not None for r in fleet.rows),
        "failed_hosts": sorted({r.host for r in fleet.rows if r.status == "FAIL"}),
        "slow_hosts": sorted({r.host for r in fleet.rows if r.flagged}),
        "slower_than_last_run": sorted({r.host for r in fleet.rows if r.slower_at}),
        "run_record": fleet.record,
        "previous_run": (fleet.previous or {}).get("run_id"),
        "rows": [
            {
                "host": r.host,
                "service": r.service,
                "status": r.status,
                "profile": r.profile,
                "model": r.model,
                "engine": r.engine,
                "source": r.source,
                "error": r.error,
                "not_run": r.not_run,
                "output_tps": {str(c): v for c, v in sorted(r.throughput.items())},
                "p90_ttft_ms": r.p90_ttft_ms,
                "p90_ttft_concurrency": r.p90_ttft_concurrency,
                "cache_hit_rate": r.cache_hit_rate,
                "decode_tps_per_user": r.decode_tps_per_user,
                "ceiling_tps_per_user": r.ceiling_tps_per_user,
                "ceiling_pct": r.ceiling_pct,
                "failed_checks": r.failed_checks,
                "slow_at": r.slow_at,
                "slower_at": r.slower_at,
                "flags": r.flags,
            }
            for r in fleet.rows
        ],
        "failures": fleet.failures,
        "flags": fleet.flags,
        "reconciliation": fleet.reconciliation,
        "fabric": fleet.fabric,
        "warnings": fleet.warnings,
    }
