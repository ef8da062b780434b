"""The fabric lines of the fleet report: the measured check's verdicts (fabric_perf.py, playbooks/fabric_check.yml),
kept as ``<report dir>/fabric/<service>.json`` beside the run directories, one line per group.

A verdict file that is not one of the check's (not JSON, another schema, a value of the wrong type, larger than
1 MiB) is skipped with a note in the report's flags, never a failure. With a reconciliation (the run's plans), only
the verdicts of the services across hosts planned now, on the same hosts, are shown: a result for hosts the service
no longer spans is not this fabric's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..contracts import FABRIC_DIR, FABRIC_PERF_SCHEMA
from ..fabric_perf import ERROR, NOT_RUN, PASS, STATUSES, verdict_line

MAX_BYTES = 1 << 20
_TEXT = ("service", "head", "size", "measured_at", "command")
_NUMBERS = ("busbw_gbps", "avg_busbw_gbps", "threshold_gbps")


def _check(obj: Any) -> str:
    """Why a verdict cannot be shown ('' when it can)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("schema") != FABRIC_PERF_SCHEMA:
        return f"schema is {obj.get('schema')!r}, expected {FABRIC_PERF_SCHEMA!r}"
    if obj.get("status") not in STATUSES:
        return f"status {obj.get('status')!r} is not one of {', '.join(STATUSES)}"
    bad = [k for k in _TEXT if not isinstance(obj.get(k, ""), str)]
    bad += [
        k
        for k in _NUMBERS
        if obj.get(k) is not None and (isinstance(obj[k], bool) or not isinstance(obj[k], (int, float)))
    ]
    for key in ("hosts", "services", "problems"):
        if not isinstance(obj.get(key, []), list) or not all(isinstance(x, str) for x in obj.get(key, [])):
            bad.append(key)
    endpoints = obj.get("endpoints", [])
    if not isinstance(endpoints, list) or not all(isinstance(e, dict) for e in endpoints):
        bad.append("endpoints")
    if not obj.get("service"):
        bad.append("service")
    return f"wrong type: {', '.join(sorted(set(bad)))}" if bad else ""


def load_verdicts(report_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The verdicts kept in ``<report_dir>/fabric/``, by service; and a note for each file skipped."""
    directory = report_dir / FABRIC_DIR
    verdicts: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    except OSError:
        paths = []
    for path in paths:
        where = f"{FABRIC_DIR}/{path.name}"
        try:
            if path.stat().st_size > MAX_BYTES:
                notes.append(f"{where}: skipped: larger than {MAX_BYTES} bytes")
                continue
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            notes.append(f"{where}: skipped: not a readable JSON file ({type(exc).__name__})")
            continue
        why = _check(obj)
        if why:
            notes.append(f"{where}: skipped: not a fabric check result ({why})")
            continue
        verdicts.append(obj)
    return sorted(verdicts, key=lambda v: str(v["service"])), notes


def current(verdicts: Sequence[Mapping[str, Any]], reconciliation: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The verdicts of the services across hosts the run plans, on the hosts they span now (all without plans)."""
    if reconciliation is None:
        return [dict(v) for v in verdicts]
    groups = reconciliation.get("across_hosts")
    spans = {
        str(g.get("service")): sorted(str(h) for h in g.get("hosts") or [])
        for g in (groups if isinstance(groups, list) else [])
        if isinstance(g, Mapping)
    }
    return [dict(v) for v in verdicts if spans.get(str(v["service"])) == sorted(str(h) for h in v.get("hosts") or [])]


def failed(verdicts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [v for v in verdicts if v.get("status") not in (PASS, NOT_RUN)]


HEADING = "Fabric (NCCL all_gather_perf, playbooks/fabric_check.yml)"


def markdown_lines(verdicts: Sequence[Mapping[str, Any]], cell: Callable[[str], str]) -> list[str]:
    """The section of fleet-report.md: a line per group, its problems under it; empty without verdicts."""
    if not verdicts:
        return []
    lines = [f"## {HEADING}", ""]
    for v in verdicts:
        lines.append(f"- {cell(verdict_line(v))}")
        lines += [f"  - {cell(p)}" for p in v.get("problems") or [] if v.get("status") != NOT_RUN]
    lines.append("")
    return lines


def html_section(verdicts: Sequence[Mapping[str, Any]], esc: Callable[[Any], str]) -> str:
    """The section of fleet-report.html; empty without verdicts."""
    if not verdicts:
        return ""
    items = []
    for v in verdicts:
        status = str(v.get("status") or ERROR)
        badge = {PASS: "pass", NOT_RUN: "notrun"}.get(status, "fail")
        problems = "".join(f"<li>{esc(p)}</li>" for p in v.get("problems") or [] if status != NOT_RUN)
        items.append(
            f'<li><span class="badge {badge}">{esc(status.upper())}</span> {esc(verdict_line(v))}'
            + (f"<ul>{problems}</ul>" if problems else "")
            + "</li>"
        )
    return f'<h2>{esc(HEADING)}</h2><ul class="list" id="fabric">{"".join(items)}</ul>'


__all__ = ["HEADING", "current", "failed", "html_section", "load_verdicts", "markdown_lines"]
