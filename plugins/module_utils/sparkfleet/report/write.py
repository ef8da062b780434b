"""Writing the fleet report: the three output files, the latest link, and the module's whole job."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..contracts import HISTORY_FILE
from ..files import write_atomic
from .fabric import current as current_fabric
from .fabric import load_verdicts as load_fabric
from .history import flag_slower, history_entry, load_history, previous_entry, run_record, update_history
from .html_page import render_html
from .markdown import render_markdown
from .model import OUTPUT_FILES, ReportError, build_fleet, find_report_files, summary
from .reconcile import reconcile

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
    plans: dict[str, Any] | None = None,
    orphans: dict[str, list[str]] | None = None,
    outcomes: dict[str, str] | None = None,
    answers: dict[str, Any] | None = None,
    reconciliation: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
    source_dir: str | None = None,
    history: bool = False,
    history_keep: int = 50,
) -> dict[str, Any]:
    """Everything the module does; returns the module result (raises ReportError on bad input)."""
    if not 0.0 <= slow_margin < 1.0:
        raise ReportError(f"slow_margin must be at least 0 and below 1 (a fraction, 0.2 = 20%), got {slow_margin}")
    if history_keep < 1:
        raise ReportError(f"history_keep must be at least 1 (how many runs history.jsonl keeps), got {history_keep}")
    for i, m in enumerate(expected):
        if not isinstance(m, dict) or not m.get("host") or not m.get("service"):
            raise ReportError(f"expected[{i}] must be a dict with 'host' and 'service'")
    files = find_report_files(inputs)
    fleet = build_fleet(
        files, expected, profiles=profiles, slow_margin=slow_margin, run_id=run_id, generated_at=generated_at
    )
    if plans is not None:
        fleet.reconciliation = reconcile(fleet.rows, plans, orphans, outcomes, answers)
    elif reconciliation:
        # A later stage rebuilding the run's report (the gateway's) keeps the reconciliation verify made.
        fleet.reconciliation = reconciliation
    fleet.record = run_record(record, source_dir, plans) if (record or source_dir or plans) else None
    # The measured fabric check's results, kept beside the run directories (playbooks/fabric_check.yml).
    fabric, notes = load_fabric(Path(dest).parent)
    fleet.fabric = current_fabric(fabric, fleet.reconciliation)
    fleet.warnings.extend(notes)
    history_path = Path(dest).parent / HISTORY_FILE if history else None
    entries: list[dict[str, Any]] = []
    if history_path is not None:
        history_read = load_history(history_path)
        entries = history_read.entries
        fleet.warnings.extend(history_read.notes)
        if not history_read.writable:
            history_path = None
        fleet.previous = previous_entry(entries, run_id)
        flag_slower(fleet.rows, fleet.previous, slow_margin)
    md_lines = render_markdown(fleet)
    data = summary(fleet)
    contents = {
        "fleet-report.md": "\n".join(md_lines) + "\n",
        "fleet-report.html": render_html(fleet),
        "fleet-report.json": json.dumps(data, indent=2, sort_keys=True) + "\n",
    }
    dest_path = Path(dest)
    written = write_outputs(dest_path, contents, check_mode)
    if history_path is not None and update_history(
        history_path, entries, history_entry(fleet), history_keep, check_mode
    ):
        written.append(str(history_path))
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
        "reconciliation": fleet.reconciliation,
    }
