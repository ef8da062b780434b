"""A record of every run: what produced this report, and how each host did against the last run.

The fleet report names the commit, inventory, limit and variables (as the per-host plan digests: every
service variable reaches the report through the plan) that produced it. ``history.jsonl`` beside the run
directories keeps one summary line per run (newest last, the same run replaced, at most ``keep`` lines), and a
host/service whose output throughput fell by more than the slow margin since the previous run is flagged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
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


# What reading history.jsonl holds itself to: the file is written by this module, but it lives beside the reports
# where anyone may edit it, and a line that is not one of ours must never stop the report.
HISTORY_MAX_BYTES = 16 << 20  # only the newest part of a larger file is read
HISTORY_MAX_LINE_BYTES = 1 << 20  # a longer line is skipped unread
HISTORY_MAX_NOTES = 10  # notes about skipped lines, then one line counting the rest
_RUN_ID_MAX = 200


@dataclass
class History:
    """The kept summaries of history.jsonl (oldest first), the notes about what was skipped, and whether the file
    may be rewritten (false when it exists but cannot be read: it is left as it is)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    writable: bool = True


def _is_num(value: Any) -> bool:
    """A finite number that converts to a float (an integer of 400 digits does not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def entry_problem(entry: Any) -> str | None:
    """Why a parsed history line is not a summary this module can use (None when it is): every value the report
    reads from it has the type it needs, so a hand-edited or foreign line is skipped, never a crash later."""
    if not isinstance(entry, dict):
        return f"JSON {type(entry).__name__}, not an object"
    if entry.get("schema") != HISTORY_SCHEMA:
        return f"not a {HISTORY_SCHEMA} line"
    run_id = entry.get("run_id")
    if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > _RUN_ID_MAX:
        return f"run_id must be a non-empty string of at most {_RUN_ID_MAX} characters"
    if not isinstance(entry.get("generated_at", ""), str):
        return "generated_at must be a string"
    record = entry.get("record", {})
    if not isinstance(record, dict):
        return "record must be an object"
    if not isinstance(record.get("commit", ""), str):
        return "record.commit must be a string"
    for key in ("passed", "total"):
        if key in entry and not _is_count(entry[key]):
            return f"{key} must be a count (an integer, 0 or more)"
    rows = entry.get("rows", [])
    if not isinstance(rows, list):
        return "rows must be a list"
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"rows[{i}] must be an object"
        for key in ("host", "service", "model", "engine", "status"):
            if key in row and not isinstance(row[key], str):
                return f"rows[{i}].{key} must be a string"
        tps = row.get("output_tps", {})
        if not isinstance(tps, dict) or not all(_is_num(v) for v in tps.values()):
            return f"rows[{i}].output_tps must be an object of finite numbers"
    return None


def _lines(path: Path, history: History) -> list[tuple[int, bytes]]:
    """(line number, bytes) of the newest HISTORY_MAX_BYTES of the file; notes what was left unread."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - HISTORY_MAX_BYTES)
        # One byte more: whether the part read starts a line (the byte before it ends one).
        fh.seek(max(0, start - 1))
        data = fh.read(HISTORY_MAX_BYTES + (1 if start else 0))
    if start:
        cut = data.find(b"\n")
        data = data[cut + 1 :] if cut >= 0 else b""
        history.notes.append(
            f"history: the file holds {size:,} bytes; only its newest {HISTORY_MAX_BYTES:,} were read "
            "(the line numbers below count from there)"
        )
    return list(enumerate(data.split(b"\n"), 1))


def load_history(path: Path) -> History:
    """The kept summaries, oldest first. Never raises: a line that is not one of ours (not JSON, not an object,
    another schema, a value of the wrong type, too long, not UTF-8) is skipped with a note, e.g.
    ``history: line 17 skipped: not JSON``, and the notes go into the report."""
    history = History()
    try:
        lines = _lines(path, history)
    except FileNotFoundError:
        return history
    except OSError as exc:
        history.notes.append(f"history: {path} cannot be read ({exc.strerror or exc}); it is left as it is")
        history.writable = False
        return history
    skipped: list[str] = []
    for n, raw in lines:
        if not raw.strip():
            continue
        if len(raw) > HISTORY_MAX_LINE_BYTES:
            skipped.append(
                f"history: line {n} skipped: {len(raw):,} bytes, longer than a line may be ({HISTORY_MAX_LINE_BYTES:,})"
            )
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(f"history: line {n} skipped: not UTF-8 text")
            continue
        try:
            entry = json.loads(text)
        except RecursionError:
            skipped.append(f"history: line {n} skipped: not JSON (nested too deeply)")
            continue
        except ValueError as exc:  # JSONDecodeError, and an integer too long to convert
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc).split(":", maxsplit=1)[0]
            skipped.append(f"history: line {n} skipped: not JSON ({msg})")
            continue
        problem = entry_problem(entry)
        if problem is not None:
            skipped.append(f"history: line {n} skipped: {problem}")
            continue
        history.entries.append(entry)
    history.notes.extend(skipped[:HISTORY_MAX_NOTES])
    if len(skipped) > HISTORY_MAX_NOTES:
        history.notes.append(f"history: {len(skipped) - HISTORY_MAX_NOTES} more lines skipped")
    return history


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
    blob = text.encode("utf-8")
    try:
        # Compared as bytes, and read only when the sizes agree: the file may be huge or not text at all.
        same = path.stat().st_size == len(blob) and path.read_bytes() == blob
    except FileNotFoundError:
        same = False
    if same:
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
