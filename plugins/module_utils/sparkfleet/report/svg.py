"""The fleet report's SVG plots (throughput against concurrency, TTFT boxes), escaped, no scripts."""

from __future__ import annotations

import html
import math
import statistics
from typing import Any

from .model import Fleet

# --------------------------------------------------------------------------------------------- SVG

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


def esc(text: object) -> str:
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
        parts.append(
            f'<text class="tick" x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{esc(_tick_label(v))}</text>'
        )
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
            f'<polyline class="series{" flagged" if r.flagged else ""}" data-host="{esc(r.host)}" '
            f'data-service="{esc(r.service)}" data-flagged="{flagged}" fill="none" stroke="{colour}" '
            f'stroke-width="2.5"{dash} points="{points}"><title>{esc(r.label)}</title></polyline>'
        )
        for x, y in pts:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        ly = top + 8 + 22 * i
        lx = left + pw + 20
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{colour}" stroke-width="2.5"{dash}/>')
        mark = " \u2691 slow" if r.flagged else ""
        cls = "legend flagged" if r.flagged else "legend"
        parts.append(f'<text class="{cls}" x="{lx + 30}" y="{ly + 4}">{esc(_short(r.label, 26) + mark)}</text>')
    for j, r in enumerate(r for r in fleet.rows if not r.throughput):
        ly = top + 8 + 22 * (len(rows) + j)
        parts.append(
            f'<text class="legend nodata" x="{left + pw + 50}" y="{ly + 4}">{esc(_short(r.label, 18))} (no data)</text>'
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
            f'<text class="tick" x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{esc(_tick_label(v))}</text>'
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
            f'<g class="{cls}" data-host="{esc(r.host)}" data-service="{esc(r.service)}" '
            f'data-flagged="{"true" if r.flagged else "false"}">'
        )
        parts.append(
            f"<title>{esc(r.label)}: median {st['median']:.0f} ms, IQR {st['q1']:.0f}-{st['q3']:.0f} ms, "
            f"{st['n']} samples at concurrency {r.ttft_samples_concurrency}</title>"
        )
        label_cls = "legend flagged" if r.flagged else "legend"
        parts.append(
            f'<text class="{label_cls}" x="{left - 10}" y="{cy + 4:.1f}" text-anchor="end">'
            f"{esc(_short(r.label, 28) + mark)}</text>"
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
