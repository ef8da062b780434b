"""The fleet report as Markdown lines (printed at the end of a run and written as fleet-report.md)."""

from __future__ import annotations

from .fabric import markdown_lines as fabric_markdown_lines
from .gateway import markdown_lines as gateway_markdown_lines
from .history import markdown_lines as history_markdown_lines
from .model import Fleet, Row
from .reconcile import markdown_lines as reconcile_markdown

# --------------------------------------------------------------------------------------------- formatting


def fmt_num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def md_cell(text: str) -> str:
    """One Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def ttft_text(row: Row) -> str:
    if row.p90_ttft_ms is None:
        return "n/a"
    return f"{row.p90_ttft_ms:,.0f} ms @c{row.p90_ttft_concurrency}"


def ceiling_text(row: Row) -> str:
    pct = row.ceiling_pct
    if pct is None:
        return "n/a"
    ceiling = row.ceiling_tps_per_user or 0.0
    return f"{pct:.0f}% of {ceiling:,.{1 if ceiling < 100 else 0}f}"


def failed_text(row: Row) -> str:
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
        status = r.status + (" (slow)" if r.flagged else "") + (" (slower than last run)" if r.slower_at else "")
        cells = [r.host, r.service, status, r.profile or "n/a", r.model or "n/a"]
        cells += [fmt_num(r.throughput.get(c)) if c in r.throughput else "-" for c in fleet.concurrencies]
        cells += [ttft_text(r), fmt_pct(r.cache_hit_rate), ceiling_text(r), failed_text(r)]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    lines.append("")
    lines.extend(gateway_markdown_lines(fleet.rows, md_cell))
    lines.extend(fabric_markdown_lines(fleet.fabric, md_cell))
    lines.extend(history_markdown_lines(fleet, md_cell))
    failures = fleet.failures
    lines.append(f"## Failures ({len(failures)})")
    lines.append("")
    lines.extend([f"- {md_cell(f)}" for f in failures] or ["- none"])
    lines.append("")
    flags = fleet.flags + [f"report input: {w}" for w in fleet.warnings]
    lines.append(f"## Flags ({len(flags)})")
    lines.append("")
    lines.extend([f"- {md_cell(f)}" for f in flags] or ["- none"])
    if fleet.reconciliation is not None:
        # Last, so the end of a run's output says it: expected N, serving M, and why any is missing.
        lines.append("")
        lines.extend(reconcile_markdown(fleet.reconciliation, md_cell))
        lines.append(f"**{fleet.reconciliation['line']}**")
    return lines
