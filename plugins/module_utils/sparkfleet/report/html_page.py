"""The fleet report as one self-contained HTML page (inline CSS and SVG, no JavaScript)."""

from __future__ import annotations

from .fabric import html_section as fabric_html_section
from .gateway import html_section as gateway_html_section
from .history import record_items
from .markdown import ceiling_text, failed_text, fmt_num, fmt_pct, ttft_text
from .model import Fleet, Row
from .reconcile import HOST_HEADER, dict_entries, host_cells, host_entries, shows_hosts
from .svg import esc, svg_throughput, svg_ttft

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
    badge = f'<span class="badge {esc(r.status.lower().replace(" ", ""))}">{esc(r.status)}</span>'
    if r.flagged:
        badge += '<span class="badge slow" title="slower than the fleet median">\u2691 slow</span>'
    cells = [
        f'<td class="nowrap">{esc(r.host)}<br><small>{esc(r.service)}</small></td>',
        f'<td class="nowrap">{badge}</td>',
        f'<td class="nowrap">{esc(r.profile or "n/a")}</td>',
        f'<td class="model">{esc(r.model or "n/a")}<br><small>{esc(r.engine)}</small></td>',
    ]
    for c in levels:
        cells.append(f'<td class="num">{esc(fmt_num(r.throughput[c])) if c in r.throughput else "-"}</td>')
    cells.append(f'<td class="num">{esc(ttft_text(r))}</td>')
    cells.append(f'<td class="num">{esc(fmt_pct(r.cache_hit_rate))}</td>')
    pct = r.ceiling_pct
    if pct is None:
        cells.append('<td class="num">n/a</td>')
    else:
        width = max(0.0, min(pct, 100.0))
        cells.append(
            f'<td class="num" title="{esc(fmt_num(r.decode_tps_per_user))} tok/s per user at concurrency '
            f'{esc(r.decode_concurrency)}, ceiling {esc(fmt_num(r.ceiling_tps_per_user))}">'
            f'<span class="bar"><i style="width:{width:.0f}%"></i></span>{esc(ceiling_text(r))}</td>'
        )
    cells.append(f'<td class="failed">{esc(failed_text(r))}</td>')
    cls = ' class="flagged" data-flagged="true"' if r.flagged else ""
    return f"<tr{cls}>" + "".join(cells) + "</tr>"


def _reconciliation_card(fleet: Fleet) -> str:
    """serving / planned: red when a service is missing (or an orphan runs), amber when some serve another version
    than this run's (rolled back, not reached), green otherwise."""
    rec = fleet.reconciliation
    if rec is None:
        return ""
    other = rec.get("serving_other_version")
    other = other if isinstance(other, dict) else {}
    cls = "bad" if not rec.get("ok") or rec.get("orphans") else ("warn" if other else "good")
    note = ", ".join(f"{n} {words}" for words, n in other.items())
    return (
        f'<div class="card {cls}" id="planned"><b>{esc(rec.get("serving"))} / {esc(rec.get("expected"))}</b>'
        f"serving / planned{f'<br><small>{esc(note)}</small>' if note else ''}</div>"
    )


def _reconciliation_hosts(fleet: Fleet) -> str:
    """What each host serves and why (updated, rolled back, not reached, down), when the run says (a rollout)."""
    rec = fleet.reconciliation
    if rec is None or not shows_hosts(rec):
        return ""
    head = "".join(f"<th>{esc(h)}</th>" for h in HOST_HEADER)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i in (1, 2) else "nowrap" if i < 5 else "failed"}">{esc(v)}</td>'
            for i, v in enumerate(host_cells(h))
        )
        + "</tr>"
        for h in host_entries(rec)
    )
    return (
        f'<div class="table-wrap"><table id="hosts"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _reconciliation_list(fleet: Fleet) -> str:
    rec = fleet.reconciliation
    if rec is None:
        return ""
    missing, orphans = dict_entries(rec, "missing"), dict_entries(rec, "orphans")
    hosts = _reconciliation_hosts(fleet)
    if not (missing or orphans or hosts):
        return ""
    items = [
        f"<li>{'skipped by choice' if m.get('by_choice') else '<b>missing</b>'}: "
        f"{esc(m.get('host'))}/{esc(m.get('service'))}: {esc(m.get('reason'))}</li>"
        for m in missing
    ]
    items += [
        f"<li><b>not in the inventory</b>: {esc(o.get('host'))}/{esc(o.get('service'))} still runs from an earlier "
        "run</li>"
        for o in orphans
    ]
    listed = f'<ul class="list" id="reconciliation">{"".join(items)}</ul>' if items else ""
    return f'<p class="meta">{esc(rec.get("line"))}</p>{hosts}{listed}'


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
        return "".join(f"<li>{esc(v)}</li>" for v in values) or "<li>none</li>"

    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body><main>",
            f"<h1>{esc(title)}</h1>",
            f'<p class="meta">{esc(fleet.generated_at or "")} &middot; slow = more than '
            f"{100 * fleet.slow_margin:.0f}% below the median of hosts with the same model, engine and profile</p>",
            '<div class="cards">',
            f'<div class="card good"><b>{passed}</b>passed</div>',
            f'<div class="card {"bad" if failed else "good"}"><b>{failed}</b>failed</div>',
            f'<div class="card {"warn" if slow else "good"}"><b>{slow}</b>slow</div>',
            f'<div class="card"><b>{len({r.host for r in fleet.rows})}</b>hosts</div>',
            _reconciliation_card(fleet),
            "</div>",
            _reconciliation_list(fleet),
            "<h2>Services</h2>",
            '<div class="table-wrap"><table id="services">',
            "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead>",
            "<tbody>" + "".join(_html_row(r, fleet.concurrencies) for r in fleet.rows) + "</tbody>",
            "</table></div>",
            gateway_html_section(fleet.rows, esc),
            fabric_html_section(fleet.fabric, esc),
            *(
                ["<h2>This run</h2>", f'<ul class="list" id="run">{items(record_items(fleet))}</ul>']
                if record_items(fleet)
                else []
            ),
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
