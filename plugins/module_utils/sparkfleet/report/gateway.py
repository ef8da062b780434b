"""The gateway against the hosts: aggregate throughput and prefix-cache hit rate, through one URL and direct.

A gateway row is a benchmark report whose service is ``gateway:<model>`` (roles/llm_gateway writes them; a service
name in the inventory cannot contain a colon). Its direct rows are the other rows serving the same model.
Pure functions over report rows; stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Row

GATEWAY_SERVICE_PREFIX = "gateway:"


@dataclass(frozen=True)
class GatewayComparison:
    """One model served through a gateway, against the same model served directly by each host."""

    gateway: str
    model: str
    workers: int
    gateway_peak_tps: float | None
    gateway_peak_concurrency: int | None
    direct_sum_tps: float | None
    gateway_cache_hit: float | None
    direct_cache_hit: float | None

    @property
    def throughput_ratio(self) -> float | None:
        if self.gateway_peak_tps is None or not self.direct_sum_tps:
            return None
        return self.gateway_peak_tps / self.direct_sum_tps


def is_gateway_row(row: Row) -> bool:
    return row.service.startswith(GATEWAY_SERVICE_PREFIX)


def peak(throughput: dict[int, float]) -> tuple[float | None, int | None]:
    """The highest output tok/s of a sweep and the concurrency it was reached at."""
    if not throughput:
        return None, None
    c = max(throughput, key=lambda k: (throughput[k], -k))
    return throughput[c], c


def compare(rows: list[Row]) -> list[GatewayComparison]:
    """One comparison per gateway row, in row order.

    Aggregate throughput: the gateway's peak output tok/s against the sum of each direct row's peak (what the hosts
    give when each is driven to its best alone, the ceiling of a perfect router). Cache hit rate: the gateway's
    multi-turn hit rate against the mean of the direct rows' (cache-aware routing keeps a conversation on the
    worker that holds its prefix, so the two should be close; round-robin would divide it by the worker count).
    """
    out: list[GatewayComparison] = []
    for g in rows:
        if not is_gateway_row(g):
            continue
        model = g.model or g.service[len(GATEWAY_SERVICE_PREFIX) :]
        direct = [r for r in rows if not is_gateway_row(r) and r.model == model and r.error is None]
        peaks = [p for p in (peak(r.throughput)[0] for r in direct) if p is not None]
        hits = [r.cache_hit_rate for r in direct if r.cache_hit_rate is not None]
        g_peak, g_conc = peak(g.throughput)
        out.append(
            GatewayComparison(
                gateway=g.host,
                model=model,
                workers=len(direct),
                gateway_peak_tps=g_peak,
                gateway_peak_concurrency=g_conc,
                direct_sum_tps=sum(peaks) if peaks else None,
                gateway_cache_hit=g.cache_hit_rate,
                direct_cache_hit=sum(hits) / len(hits) if hits else None,
            )
        )
    return out


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


HEADER = [
    "gateway",
    "model",
    "direct services",
    "tok/s through the gateway (peak)",
    "sum of the hosts' peaks",
    "ratio",
    "cache hit via gateway",
    "cache hit direct (mean)",
]


def table_cells(c: GatewayComparison) -> list[str]:
    through = _num(c.gateway_peak_tps) + (f" @c{c.gateway_peak_concurrency}" if c.gateway_peak_concurrency else "")
    ratio = c.throughput_ratio
    return [
        c.gateway,
        c.model,
        str(c.workers),
        through,
        _num(c.direct_sum_tps),
        "n/a" if ratio is None else f"{ratio:.2f}",
        _pct(c.gateway_cache_hit),
        _pct(c.direct_cache_hit),
    ]


NOTE = (
    "The hosts' peaks are each measured alone (one host at a time), so their sum is what a perfect router could "
    "reach when every host has its own accelerator; hosts that share CPU cores or a link cannot reach it together."
)


def markdown_lines(rows: list[Row], cell: Callable[[str], str] = str) -> list[str]:
    """The section for fleet-report.md; empty when no gateway was benchmarked. ``cell`` escapes a table cell."""
    comparisons = compare(rows)
    if not comparisons:
        return []
    lines = ["## Through the gateway", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "|".join("---" if i < 2 else "--:" for i in range(len(HEADER))) + "|")
    for c in comparisons:
        lines.append("| " + " | ".join(cell(x) for x in table_cells(c)) + " |")
    lines += ["", NOTE, ""]
    return lines


def html_section(rows: list[Row], esc: Callable[[str], str]) -> str:
    """The section for fleet-report.html; empty when no gateway was benchmarked. ``esc`` escapes HTML text."""
    comparisons = compare(rows)
    if not comparisons:
        return ""
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"nowrap" if i < 2 else "num"}">{esc(v)}</td>' for i, v in enumerate(table_cells(c)))
        + "</tr>"
        for c in comparisons
    )
    return (
        "<h2>Through the gateway</h2>"
        f'<div class="table-wrap"><table id="gateway"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        f'<p class="meta">{esc(NOTE)}</p>'
    )
