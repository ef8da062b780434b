"""A record of every run: what produced this report, and how each host did against the last run.

The fleet report names the commit, inventory, limit and variables (as the per-host plan digests: every
service variable reaches the report through the plan) that produced it. ``history.jsonl`` beside the run
directories keeps one summary line per run (newest last, the same run replaced, at most ``keep`` lines), and a
host/service whose output throughput fell by more than the slow margin since the previous run is flagged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..contracts import HISTORY_SCHEMA
from ..files import write_atomic
from ..gpu import subprocess_runner
from .model import Fleet, Row


def git_state(source_dir: str | None) -> dict[str, Any]:
    """The commit of ``source_dir`` and whether its tracked files differ from it; {} when it is not a git checkout."""
    if not source_dir:
        return {}
    run = subprocess_runner(10)
    rc, head, _err = run(["git", "-C", source_dir, "rev-parse", "HEAD"])
    if rc != 0:
        return {}
    _rc, status, _err = run(["git", "-C", source_dir, "status", "--porcelain", "--untracked-files=no"])
    return {"commit": head.strip(), "dirty": bool(status.strip())}


def digest(value: Any) -> str:
    """A short, stable digest of a JSON-able value (sorted keys): equal variables give equal digests."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def run_record(record: dict[str, Any] | None, source_dir: str | None, plans: dict[str, Any] | None) -> dict[str, Any]:
    """What produced this run: the caller's facts (inventory, limit, play, versions) plus git and plan digests."""
    out: dict[str, Any] = {k: v for k, v in (record or {}).items() if v not in (None, "", [])}
    out.update(git_state(source_dir))
    if plans:
        out["plan_digests"] = {host: digest(services) for host, services in sorted(plans.items())}
    return out


def _row_entry(row: Row) -> dict[str, Any]:
    return {
        "host": row.host,
        "service": row.service,
        "model": row.model,
        "engine": row.engine,
        "status": row.status,
        "output_tps": {str(c): v for c, v in sorted(row.throughput.items())},
    }


def history_entry(fleet: Fleet) -> dict[str, Any]:
    return {
        "schema": HISTORY_SCHEMA,
        "run_id": fleet.run_id,
        "generated_at": fleet.generated_at,
        "record": fleet.record or {},
        "passed": sum(r.passed for r in fleet.rows),
        "total": len(fleet.rows),
        "rows": [_row_entry(r) for r in fleet.rows],
    }


def load_history(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The kept summaries, oldest first; a line that is not one of ours is skipped with a warning."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.append(f"{path}:{n}: not JSON ({exc.msg}), skipped")
            continue
        if not isinstance(entry, dict) or entry.get("schema") != HISTORY_SCHEMA or not entry.get("run_id"):
            warnings.append(f"{path}:{n}: not a {HISTORY_SCHEMA} line, skipped")
            continue
        entries.append(entry)
    return entries, warnings


def previous_entry(entries: list[dict[str, Any]], run_id: str) -> dict[str, Any] | None:
    """The newest kept run other than this one."""
    for entry in reversed(entries):
        if entry.get("run_id") != run_id:
            return entry
    return None


def flag_slower(rows: list[Row], previous: dict[str, Any] | None, margin: float) -> None:
    """Flag each passing row whose throughput at a concurrency fell by more than ``margin`` since ``previous``.

    Compared only with the same host, service, model and engine at the same concurrency (a new model is not slower).
    """
    if not previous:
        return
    before = {(r.get("host"), r.get("service")): r for r in previous.get("rows", []) if isinstance(r, dict)}
    for row in rows:
        old = before.get((row.host, row.service))
        if not row.passed or not old or old.get("model") != row.model or old.get("engine") != row.engine:
            continue
        details: list[str] = []
        for c, now in sorted(row.throughput.items()):
            was = (old.get("output_tps") or {}).get(str(c))
            if isinstance(was, (int, float)) and was > 0 and now < was * (1.0 - margin):
                row.slower_at.append(c)
                details.append(f"c{c} {now:,.1f} vs {was:,.1f} ({100 * (now / was - 1):+.0f}%)")
        if details:
            row.flags.append(
                f"slower than the last run ({previous.get('run_id')}): output tok/s {'; '.join(details)}, "
                f"more than {margin:.0%} down"
            )


def update_history(
    path: Path, entries: list[dict[str, Any]], entry: dict[str, Any], keep: int, check_mode: bool
) -> bool:
    """Append this run's summary (replacing a line of the same run), keep the newest ``keep``; returns changed."""
    kept = [e for e in entries if e.get("run_id") != entry["run_id"]] + [entry]
    kept = kept[-keep:] if keep > 0 else kept
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in kept)
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current == text:
        return False
    if not check_mode:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    return True


def record_items(fleet: Fleet) -> list[str]:
    """The "This run" items, plain text (the Markdown and the HTML page escape them their own way)."""
    rec = fleet.record or {}
    if not rec and fleet.previous is None:
        return []
    items: list[str] = []
    if rec.get("commit"):
        items.append(f"commit: {rec['commit'][:12]}" + (" (with uncommitted changes)" if rec.get("dirty") else ""))
    for key, label in (("inventory", "inventory"), ("limit", "limit"), ("play", "play"), ("ansible", "ansible-core")):
        value = rec.get(key)
        if value:
            items.append(f"{label}: " + (", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    if rec.get("plan_digests"):
        distinct = len(set(rec["plan_digests"].values()))
        items.append(
            f"variables: {len(rec['plan_digests'])} host plans, {distinct} distinct "
            "(their digests: run_record.plan_digests in fleet-report.json)"
        )
    prev = fleet.previous
    if prev is None:
        items.append("previous run: none kept (history starts with this run)")
    else:
        slower = sorted({r.host for r in fleet.rows if r.slower_at})
        commit = str((prev.get("record") or {}).get("commit", ""))
        items.append(
            f"previous run: {prev.get('run_id')}"
            + (f" (commit {commit[:12]})" if commit else "")
            + f", {prev.get('passed', 0)} of {prev.get('total', 0)} passed; "
            + (f"slower since then: {', '.join(slower)}" if slower else "no host slower since then")
        )
    return items


def markdown_lines(fleet: Fleet, cell: Any) -> list[str]:
    items = record_items(fleet)
    return ["## This run", "", *[f"- {cell(i)}" for i in items], ""] if items else []
