"""The fleet report: many ``sparkfleet.benchmark/v1`` reports in, one Markdown, HTML and JSON summary out.

Stdlib only (this file is shipped to the controller's module runner by Ansible). The HTML page is
self-contained: inline CSS and SVG generated here, no JavaScript, no fonts or images from the network.
Every string that comes from a report or the inventory goes through ``html.escape`` (HTML and SVG) or
``md_cell`` (Markdown).
"""

from __future__ import annotations

import html
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import write_atomic

BENCHMARK_SCHEMA = "sparkfleet.benchmark/v1"
FLEET_SCHEMA = "sparkfleet.fleet_report/v1"
OUTPUT_FILES = ("fleet-report.md", "fleet-report.html", "fleet-report.json")

# Bytes read per parameter for one decode step, by the service schema's model_dtype.
BYTES_PER_DTYPE: dict[str, float] = {
    "f32": 4.0,
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "nvfp4": 0.5,
    "int4": 0.5,
}

# Colour-blind friendly series colours (Okabe-Ito, then Tableau), cycled per row.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#8C564B",
    "#7F7F7F",
)


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
    bpp = BYTES_PER_DTYPE.get(dtype.lower())
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


# --------------------------------------------------------------------------------------------- formatting


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def md_cell(text: str) -> str:
    """One Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def _ttft_text(row: Row) -> str:
    if row.p90_ttft_ms is None:
        return "n/a"
    return f"{row.p90_ttft_ms:,.0f} ms @c{row.p90_ttft_concurrency}"


def _ceiling_text(row: Row) -> str:
    pct = row.ceiling_pct
    if pct is None:
        return "n/a"
    ceiling = row.ceiling_tps_per_user or 0.0
    return f"{pct:.0f}% of {ceiling:,.{1 if ceiling < 100 else 0}f}"


def _failed_text(row: Row) -> str:
    if row.not_run is not None:
        return "not run"
    if row.error:
        return "no report"
    return ", ".join(row.failed_checks) or "-"


def render_markdown(fleet: Fleet) -> list[str]:
    passed = sum(r.passed for r in fleet.rows)
    not_run = sum(r.not_run is not None for r in fleet.rows)
    lines = [
        "# sparkfleet fleet report" + (f" ({fleet.run_id})" if fleet.run_id else ""),
        "",
        f"{passed} of {len(fleet.rows)} services passed"
        + (f", {not_run} not run" if not_run else "")
        + (f"; generated {fleet.generated_at}" if fleet.generated_at else "")
        + ".",
        "",
    ]
    header = ["host", "service", "result", "profile", "model"]
    header += [f"tok/s c{c}" for c in fleet.concurrencies]
    header += ["p90 TTFT", "cache hit", "decode vs ceiling", "failed checks"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" if i < 5 or i >= len(header) - 1 else "--:" for i in range(len(header))) + "|")
    for r in fleet.rows:
        cells = [r.host, r.service, r.status + (" (slow)" if r.flagged else ""), r.profile or "n/a", r.model or "n/a"]
        cells += [_fmt(r.throughput.get(c)) if c in r.throughput else "-" for c in fleet.concurrencies]
        cells += [_ttft_text(r), _fmt_pct(r.cache_hit_rate), _ceiling_text(r), _failed_text(r)]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    lines.append("")
    failures = fleet.failures
    lines.append(f"## Failures ({len(failures)})")
    lines.append("")
    lines.extend([f"- {md_cell(f)}" for f in failures] or ["- none"])
    lines.append("")
    flags = fleet.flags + [f"report input: {w}" for w in fleet.warnings]
    lines.append(f"## Flags ({len(flags)})")
    lines.append("")
    lines.extend([f"- {md_cell(f)}" for f in flags] or ["- none"])
    return lines


# --------------------------------------------------------------------------------------------- SVG


def _nice_max(value: float) -> tuple[float, float]:
    """An axis maximum >= value and a tick step, both round numbers (about 5 ticks)."""
    if value <= 0:
        return 1.0, 0.2
    raw = value / 5.0
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = m * exp
        if step >= raw:
            break
    top = math.ceil(value / step) * step
    return top, step


def _tick_label(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:,.0f}k"
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:,.1f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def svg_throughput(fleet: Fleet, width: int = 1100, height: int = 400) -> str:
    """Output tokens/s against concurrency: one polyline per host/service row with data."""
    rows = [r for r in fleet.rows if r.throughput]
    levels = fleet.concurrencies
    left, right, top, bottom = 70, 290, 20, 50
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="throughput-plot" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Output throughput against concurrency, one line per host">',
        "<title>Output throughput (tok/s) against concurrency</title>",
    ]
    if not rows:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">no load data</text></svg>')
        return "\n".join(parts)
    values = [v for r in rows for v in r.throughput.values()]
    positive = [v for v in values if v > 0]
    # A fleet of Sparks and Stations spans two orders of magnitude: a log axis keeps every line readable.
    log_scale = bool(positive) and len(positive) == len(values) and max(positive) / min(positive) >= 20
    if log_scale:
        lo_exp = math.floor(math.log10(min(positive)))
        hi_exp = math.ceil(math.log10(max(positive) * 1.05))
        steps = [m * 10.0**k for k in range(lo_exp, hi_exp + 1) for m in (1, 2, 5)]
        y_lo = max(v for v in steps if v <= min(positive))  # the 1-2-5 steps just around the data
        y_hi = min(v for v in steps if v >= max(positive) * 1.05)
        ticks = [v for v in steps if y_lo <= v <= y_hi]
        ymax = y_hi
    else:
        ymax, ystep = _nice_max(max(values) * 1.05)
        y_lo = y_hi = ymax
        ticks = [i * ystep for i in range(round(ymax / ystep) + 1)]

    def x_of(c: int) -> float:
        if len(levels) == 1:
            return left + pw / 2
        return left + pw * levels.index(c) / (len(levels) - 1)

    def y_of(v: float) -> float:
        if log_scale:
            frac = (math.log10(max(v, y_lo)) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        else:
            frac = v / ymax
        return top + ph * (1 - frac)

    for v in ticks:
        y = y_of(v)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{_e(_tick_label(v))}</text>')
    for c in levels:
        x = x_of(c)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{c}</text>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}"/>')
    parts.append(
        f'<text class="axis-label" x="{left + pw / 2:.0f}" y="{height - 8}" text-anchor="middle">'
        "concurrent requests</text>"
    )
    parts.append(
        f'<text class="axis-label" transform="translate(16 {top + ph / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">output tokens/s{" (log scale)" if log_scale else ""}</text>'
    )
    for i, r in enumerate(rows):
        colour = PALETTE[fleet.rows.index(r) % len(PALETTE)]
        pts = [(x_of(c), y_of(v)) for c, v in sorted(r.throughput.items())]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        flagged = "true" if r.flagged else "false"
        dash = ' stroke-dasharray="7 4"' if r.flagged else ""
        parts.append(
            f'<polyline class="series{" flagged" if r.flagged else ""}" data-host="{_e(r.host)}" '
            f'data-service="{_e(r.service)}" data-flagged="{flagged}" fill="none" stroke="{colour}" '
            f'stroke-width="2.5"{dash} points="{points}"><title>{_e(r.label)}</title></polyline>'
        )
        for x, y in pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        ly = top + 8 + 22 * i
        lx = left + pw + 20
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{colour}" stroke-width="2.5"{dash}/>')
        mark = " \u2691 slow" if r.flagged else ""
        cls = "legend flagged" if r.flagged else "legend"
        parts.append(f'<text class="{cls}" x="{lx + 30}" y="{ly + 4}">{_e(_short(r.label, 26) + mark)}</text>')
    for j, r in enumerate(r for r in fleet.rows if not r.throughput):
        ly = top + 8 + 22 * (len(rows) + j)
        parts.append(
            f'<text class="legend nodata" x="{left + pw + 50}" y="{ly + 4}">{_e(_short(r.label, 18))} (no data)</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _box_stats(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    if len(s) == 1:
        q1 = med = q3 = s[0]
    else:
        q1, med, q3 = statistics.quantiles(s, n=4, method="inclusive")
    iqr = q3 - q1
    lo_fence, hi_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = [v for v in s if lo_fence <= v <= hi_fence]
    return {
        "q1": q1,
        "median": med,
        "q3": q3,
        "lo": min(inside) if inside else q1,
        "hi": max(inside) if inside else q3,
        "outliers": [v for v in s if v < lo_fence or v > hi_fence],
        "n": len(s),
    }


def svg_ttft(fleet: Fleet, width: int = 1100) -> str:
    """Box plot of time to first token per host/service (samples at the row's highest concurrency)."""
    rows = [r for r in fleet.rows if r.ttft_samples_ms]
    left, right, top, bottom, band = 230, 120, 20, 50, 34
    height = top + bottom + band * max(len(rows), 1)
    pw = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="ttft-plot" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Time to first token per host, box plot">',
        "<title>Time to first token (ms) per host</title>",
    ]
    if not rows:
        parts.append(f'<text x="{width / 2:.0f}" y="{top + 20}" text-anchor="middle">no TTFT samples</text></svg>')
        return "\n".join(parts)
    stats = [_box_stats(r.ttft_samples_ms) for r in rows]
    xmax, xstep = _nice_max(max(max(r.ttft_samples_ms) for r in rows) * 1.02)

    def x_of(v: float) -> float:
        return left + pw * v / xmax

    ph = band * len(rows)
    for i in range(round(xmax / xstep) + 1):
        v = i * xstep
        x = x_of(v)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{_e(_tick_label(v))}</text>'
        )
    parts.append(f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>')
    parts.append(
        f'<text class="axis-label" x="{left + pw / 2:.0f}" y="{height - 8}" text-anchor="middle">'
        "time to first token (ms)</text>"
    )
    for i, (r, st) in enumerate(zip(rows, stats, strict=True)):
        colour = PALETTE[fleet.rows.index(r) % len(PALETTE)]
        cy = top + band * i + band / 2
        h = band * 0.55
        cls = "box flagged" if r.flagged else "box"
        mark = " \u2691" if r.flagged else ""
        parts.append(
            f'<g class="{cls}" data-host="{_e(r.host)}" data-service="{_e(r.service)}" '
            f'data-flagged="{"true" if r.flagged else "false"}">'
        )
        parts.append(
            f"<title>{_e(r.label)}: median {st['median']:.0f} ms, IQR {st['q1']:.0f}-{st['q3']:.0f} ms, "
            f"{st['n']} samples at concurrency {r.ttft_samples_concurrency}</title>"
        )
        label_cls = "legend flagged" if r.flagged else "legend"
        parts.append(
            f'<text class="{label_cls}" x="{left - 10}" y="{cy + 4:.1f}" text-anchor="end">'
            f"{_e(_short(r.label, 28) + mark)}</text>"
        )
        parts.append(
            f'<line class="whisker" x1="{x_of(st["lo"]):.1f}" y1="{cy:.1f}" x2="{x_of(st["hi"]):.1f}" y2="{cy:.1f}"/>'
        )
        for v in (st["lo"], st["hi"]):
            parts.append(
                f'<line class="whisker" x1="{x_of(v):.1f}" y1="{cy - h / 3:.1f}" '
                f'x2="{x_of(v):.1f}" y2="{cy + h / 3:.1f}"/>'
            )
        bx = x_of(st["q1"])
        bw = max(x_of(st["q3"]) - bx, 1.0)
        parts.append(
            f'<rect x="{bx:.1f}" y="{cy - h / 2:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{colour}" '
            f'fill-opacity="0.35" stroke="{colour}" stroke-width="1.5"/>'
        )
        mx = x_of(st["median"])
        parts.append(
            f'<line class="median" x1="{mx:.1f}" y1="{cy - h / 2:.1f}" x2="{mx:.1f}" y2="{cy + h / 2:.1f}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        for v in st["outliers"]:
            parts.append(f'<circle cx="{x_of(v):.1f}" cy="{cy:.1f}" r="2.5" fill="none" stroke="{colour}"/>')
        parts.append(
            f'<text class="tick" x="{left + pw + 10}" y="{cy + 4:.1f}">p50 {st["median"]:,.0f} ms '
            f"(c{r.ttft_samples_concurrency})</text>"
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #1d232a; background: #f6f7f9; margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
.meta { color: #56606b; margin: 0 0 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0 8px; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 10px 16px; min-width: 120px; }
.card b { display: block; font-size: 22px; }
.card.bad b { color: #b3261e; } .card.good b { color: #1b7f3b; } .card.warn b { color: #9a6700; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid #dde1e6; border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 7px; border-bottom: 1px solid #eceff2; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.model { min-width: 90px; overflow-wrap: break-word; }
td.failed { min-width: 150px; overflow-wrap: break-word; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flagged td { background: #fff8e1; }
.badge { display: inline-block; border-radius: 4px; padding: 0 6px; font-weight: 700; font-size: 12px; }
.badge.pass { background: #d7f5df; color: #14632d; } .badge.fail { background: #fde0dc; color: #8c1d18; }
.badge.notrun { background: #e4e7eb; color: #3d4650; }
.badge.slow { background: #ffe8a3; color: #6b4a00; margin-left: 4px; }
.bar { display: inline-block; width: 36px; height: 8px; background: #e4e7eb; border-radius: 4px;
  vertical-align: middle; margin-right: 6px; overflow: hidden; }
.bar i { display: block; height: 100%; background: #0072B2; }
ul.list { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; margin: 0; padding: 10px 10px 10px 30px; }
ul.list li { margin: 3px 0; overflow-wrap: anywhere; }
figure { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; margin: 0 0 16px; padding: 12px; }
figcaption { color: #56606b; font-size: 13px; margin-top: 6px; }
svg.plot { display: block; max-width: 100%; height: auto; font-size: 12px; }
svg .grid { stroke: #e6e9ed; stroke-width: 1; }
svg .axis { stroke: #6b7580; stroke-width: 1; }
svg .tick { fill: #56606b; font-size: 11px; }
svg .axis-label { fill: #33404d; font-size: 12px; }
svg .legend { fill: #1d232a; font-size: 12px; }
svg .legend.flagged { fill: #9a3b00; font-weight: 700; }
svg .legend.nodata { fill: #8a939c; font-style: italic; }
svg .whisker { stroke: #5f6b76; stroke-width: 1.2; }
footer { color: #6b7580; font-size: 12px; margin-top: 28px; }
"""


def _html_row(r: Row, levels: list[int]) -> str:
    badge = f'<span class="badge {r.status.lower().replace(" ", "")}">{r.status}</span>'
    if r.flagged:
        badge += '<span class="badge slow" title="slower than the fleet median">\u2691 slow</span>'
    cells = [
        f'<td class="nowrap">{_e(r.host)}<br><small>{_e(r.service)}</small></td>',
        f'<td class="nowrap">{badge}</td>',
        f'<td class="nowrap">{_e(r.profile or "n/a")}</td>',
        f'<td class="model">{_e(r.model or "n/a")}<br><small>{_e(r.engine)}</small></td>',
    ]
    for c in levels:
        cells.append(f'<td class="num">{_e(_fmt(r.throughput[c])) if c in r.throughput else "-"}</td>')
    cells.append(f'<td class="num">{_e(_ttft_text(r))}</td>')
    cells.append(f'<td class="num">{_e(_fmt_pct(r.cache_hit_rate))}</td>')
    pct = r.ceiling_pct
    if pct is None:
        cells.append('<td class="num">n/a</td>')
    else:
        width = max(0.0, min(pct, 100.0))
        cells.append(
            f'<td class="num" title="{_e(_fmt(r.decode_tps_per_user))} tok/s per user at concurrency '
            f'{r.decode_concurrency}, ceiling {_e(_fmt(r.ceiling_tps_per_user))}">'
            f'<span class="bar"><i style="width:{width:.0f}%"></i></span>{_e(_ceiling_text(r))}</td>'
        )
    cells.append(f'<td class="failed">{_e(_failed_text(r))}</td>')
    cls = ' class="flagged" data-flagged="true"' if r.flagged else ""
    return f"<tr{cls}>" + "".join(cells) + "</tr>"


def render_html(fleet: Fleet) -> str:
    passed = sum(r.passed for r in fleet.rows)
    failed = sum(r.status == "FAIL" for r in fleet.rows)
    slow = sum(r.flagged for r in fleet.rows)
    title = "sparkfleet fleet report" + (f" {fleet.run_id}" if fleet.run_id else "")
    head = ["host / service", "result", "profile", "model / engine"]
    head += [f"tok/s c{c}" for c in fleet.concurrencies]
    head += ["p90 TTFT", "cache hit", "vs ceiling", "failed checks"]
    flags = fleet.flags + [f"report input: {w}" for w in fleet.warnings]
    failures = fleet.failures

    def items(values: list[str]) -> str:
        return "".join(f"<li>{_e(v)}</li>" for v in values) or "<li>none</li>"

    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body><main>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="meta">{_e(fleet.generated_at or "")} &middot; slow = more than '
            f"{100 * fleet.slow_margin:.0f}% below the median of hosts with the same model, engine and profile</p>",
            '<div class="cards">',
            f'<div class="card good"><b>{passed}</b>passed</div>',
            f'<div class="card {"bad" if failed else "good"}"><b>{failed}</b>failed</div>',
            f'<div class="card {"warn" if slow else "good"}"><b>{slow}</b>slow</div>',
            f'<div class="card"><b>{len({r.host for r in fleet.rows})}</b>hosts</div>',
            "</div>",
            "<h2>Services</h2>",
            '<div class="table-wrap"><table id="services">',
            "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead>",
            "<tbody>" + "".join(_html_row(r, fleet.concurrencies) for r in fleet.rows) + "</tbody>",
            "</table></div>",
            f"<h2>Failures ({len(failures)})</h2>",
            f'<ul class="list" id="failures">{items(failures)}</ul>',
            f"<h2>Flags ({len(flags)})</h2>",
            f'<ul class="list" id="flags">{items(flags)}</ul>',
            "<h2>Throughput</h2>",
            "<figure>",
            svg_throughput(fleet),
            "<figcaption>Output tokens per second at each concurrency, one line per host and service; "
            "dashed lines are hosts flagged as slow.</figcaption>",
            "</figure>",
            "<h2>Time to first token</h2>",
            "<figure>",
            svg_ttft(fleet),
            "<figcaption>Box: quartiles and median; whiskers: the furthest samples within 1.5 IQR; "
            "circles: outliers. Samples at each service's highest concurrency.</figcaption>",
            "</figure>",
            "<footer>Decode vs ceiling: measured decode tokens/s per user at the lowest concurrency, as a share of "
            "memory bandwidth / (parameters &times; bytes per parameter), shown where the profile's bandwidth and "
            "the service's model_params_b and model_dtype are known.</footer>",
            "</main></body>",
            "</html>",
            "",
        ]
    )


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
                "flags": r.flags,
            }
            for r in fleet.rows
        ],
        "failures": fleet.failures,
        "flags": fleet.flags,
        "warnings": fleet.warnings,
    }


# --------------------------------------------------------------------------------------------- writing


def write_outputs(dest: Path, contents: dict[str, str], check_mode: bool) -> list[str]:
    """Write each file whose content differs; returns the paths that were (or, in check mode, would be) written."""
    changed: list[str] = []
    for name, text in contents.items():
        path = dest / name
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current == text:
            continue
        changed.append(str(path))
        if not check_mode:
            dest.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
    return changed


def point_latest(link: Path, target: Path, check_mode: bool) -> bool:
    """Make ``link`` a relative symlink to ``target`` (the run directory). Returns whether it changed."""
    rel = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == rel:
        return False
    if link.exists() and not link.is_symlink():
        raise ReportError(f"{link} exists and is not a symlink: move it away, it is where the latest report points")
    if not check_mode:
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.parent / f".{link.name}.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(rel, tmp)
        os.replace(tmp, link)
    return True


def generate(
    *,
    inputs: list[str],
    dest: str,
    expected: list[dict[str, Any]],
    profiles: dict[str, Any],
    slow_margin: float,
    run_id: str,
    generated_at: str,
    latest_link: str | None,
    check_mode: bool,
) -> dict[str, Any]:
    """Everything the module does; returns the module result (raises ReportError on bad input)."""
    if not 0.0 <= slow_margin < 1.0:
        raise ReportError(f"slow_margin must be at least 0 and below 1 (a fraction, 0.2 = 20%), got {slow_margin}")
    for i, m in enumerate(expected):
        if not isinstance(m, dict) or not m.get("host") or not m.get("service"):
            raise ReportError(f"expected[{i}] must be a dict with 'host' and 'service'")
    files = find_report_files(inputs)
    fleet = build_fleet(
        files, expected, profiles=profiles, slow_margin=slow_margin, run_id=run_id, generated_at=generated_at
    )
    md_lines = render_markdown(fleet)
    data = summary(fleet)
    contents = {
        "fleet-report.md": "\n".join(md_lines) + "\n",
        "fleet-report.html": render_html(fleet),
        "fleet-report.json": json.dumps(data, indent=2, sort_keys=True) + "\n",
    }
    dest_path = Path(dest)
    written = write_outputs(dest_path, contents, check_mode)
    latest_changed = False
    if latest_link:
        latest_changed = point_latest(Path(latest_link), dest_path, check_mode)
    return {
        "changed": bool(written) or latest_changed,
        "markdown": contents["fleet-report.md"],
        "markdown_lines": md_lines,
        "files": [str(dest_path / n) for n in OUTPUT_FILES],
        "written": written,
        "inputs": [str(p) for p in files],
        "summary": {k: v for k, v in data.items() if k != "rows"},
        "rows": data["rows"],
        "warnings": fleet.warnings,
    }
