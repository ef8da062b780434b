"""The controller side of playbooks/status.yml (module sparkfleet_status_report): one document per host, a table.

It takes each host's document from the collector (``status/collect.py``; a host that did not answer gets one
saying so), adds to each service the last verification of that host and service from the run history
(``reports/history.jsonl``, read by ``report/history.py``'s own reader), writes ``<dir>/<host>.json`` and
``<dir>/status.txt`` (the table), and says which hosts are unhealthy or drifted; the playbook fails on them.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..contracts import HISTORY_FILE, STATUS_SCHEMA
from ..files import write_atomic
from ..report.history import load_history
from .collect import DRIFTED, MAX_TEXT, OK, SKIPPED_STATE, UNHEALTHY

UNREACHABLE = "unreachable"
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S UTC", "%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float | None:
    """A UTC time as the verify stage writes it (generated_at, or a run_id) -> epoch seconds; None when neither."""
    for fmt in _TIME_FORMATS:
        try:
            return float(calendar.timegm(time.strptime(text.strip(), fmt)))
        except ValueError:
            continue
    return None


def last_verifications(entries: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(host, service) -> the newest verification of it in the history: result (PASS, FAIL, NOT RUN), run and time."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:  # oldest first: a newer run replaces an older one
        run_id = str(entry.get("run_id") or "")
        at = parse_time(str(entry.get("generated_at") or "")) or parse_time(run_id)
        for row in entry.get("rows") or []:
            key = (str(row.get("host") or ""), str(row.get("service") or ""))
            found[key] = {"result": str(row.get("status") or ""), "run_id": run_id, "at": at}
    return found


def verification(
    found: Mapping[tuple[str, str], Mapping[str, Any]], host: str, service: str, now: float
) -> dict[str, Any]:
    """The last verification of a host's service for its document: result, run_id, age_s (None: never verified)."""
    last = found.get((host, service))
    if last is None:
        return {"result": "never", "run_id": "", "age_s": None}
    at = last.get("at")
    return {"result": last["result"], "run_id": last["run_id"], "age_s": round(now - at) if at is not None else None}


def unreachable_document(host: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The document of a host whose collector gave no status (unreachable, or the module failed)."""
    msg = str(result.get("msg") or "no status was collected from this host")
    return {
        "schema": STATUS_SCHEMA,
        "host": host,
        "collected_at": "",
        "verdict": UNREACHABLE if result.get("unreachable") or not result else UNHEALTHY,
        "services": [],
        "own_units": [],
        "gpu": {"source": "none", "unified_memory": False, "devices": []},
        "plan_errors": [],
        "problems": [msg[:MAX_TEXT]],
        "truncated": len(msg) > MAX_TEXT,
    }


def host_documents(
    hosts: Sequence[str], results: Mapping[str, Any], history: Sequence[Mapping[str, Any]], now: float
) -> list[dict[str, Any]]:
    """Each host's document, in the order of ``hosts``, with every service's last verification added."""
    found = last_verifications(history)
    docs = []
    for host in hosts:
        result = results.get(host) or {}
        status = result.get("status") if isinstance(result, Mapping) else None
        if not isinstance(status, Mapping) or status.get("schema") != STATUS_SCHEMA:
            docs.append(unreachable_document(host, result if isinstance(result, Mapping) else {}))
            continue
        doc = {"schema": STATUS_SCHEMA, "host": host, **{k: v for k, v in status.items() if k != "schema"}}
        for svc in doc.get("services") or []:
            svc["verify"] = verification(found, host, str(svc.get("name")), now)
        docs.append(doc)
    return docs


def groups(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Multi-host services: every piece of a service across hosts (its ``group``: the service's name, or a Dynamo
    deployment), with each piece's host and state, so the service reads as one. The hook for a verdict of the whole
    service: today each piece counts for its own host; collect._group names the group of a piece."""
    out: dict[str, list[dict[str, str]]] = {}
    for doc in docs:
        for svc in doc.get("services") or []:
            if svc.get("group"):
                out.setdefault(str(svc["group"]), []).append(
                    {"host": str(doc["host"]), "service": str(svc["name"]), "state": str(svc["state"])}
                )
    return out


def across_hosts(docs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each service across hosts judged as one: {hosts, ok, why}. It is ok only when every one of its hosts answered
    and runs its piece ok; a host that is unreachable, or whose piece is not ok, fails the whole service."""
    by_host = {str(doc["host"]): doc for doc in docs}
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for svc in doc.get("services") or []:
            hosts = [str(h) for h in svc.get("group_hosts") or []]
            if not hosts or str(svc.get("group")) in out:
                continue
            why: list[str] = []
            for host in hosts:
                other = by_host.get(host)
                piece = next((s for s in (other or {}).get("services") or [] if s.get("name") == svc.get("name")), None)
                if other is None:
                    why.append(f"{host} not in this status run")
                elif other.get("verdict") == UNREACHABLE:
                    why.append(f"{host} unreachable")
                elif piece is None:
                    why.append(f"{host} does not plan its piece")
                elif piece.get("state") != OK:
                    why.append(f"{host} {piece.get('state')}")
            out[str(svc["group"])] = {"hosts": hosts, "ok": not why, "why": why}
    return out


def bad_hosts(docs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Host -> why it is not ok (its verdict and the services that make it so; a service across hosts that failed
    fails every host of it)."""
    bad: dict[str, str] = {}
    failed = {name: g for name, g in across_hosts(docs).items() if not g["ok"]}
    for doc in docs:
        host = str(doc["host"])
        groups_failed = [f"{name} across hosts failed ({'; '.join(g['why'])})" for name, g in failed.items()
                         if host in g["hosts"]]  # fmt: skip
        if doc.get("verdict") == OK:
            if groups_failed:
                bad[host] = "; ".join(groups_failed)
            continue
        names = [str(s["name"]) for s in doc.get("services") or [] if s.get("state") in (UNHEALTHY, DRIFTED)]
        why = str(doc.get("verdict"))
        if names:
            why += " (" + ", ".join(names) + ")"
        else:
            first = [*(doc.get("problems") or []), *(doc.get("plan_errors") or [])][:1]
            why += f": {str(first[0])[:120]}" if first else ""
        bad[str(doc["host"])] = why
    return bad


def _mib(value: Any) -> str:
    return f"{value / 1024:.1f}" if isinstance(value, (int, float)) else "?"


def gpu_cell(gpu: Mapping[str, Any]) -> str:
    """GPU memory in use on a host: 'used/total GiB' per GPU ('unified' on GB10), '-' without a GPU."""
    devices = gpu.get("devices") or []
    if not devices:
        return "-"
    cells = [f"{_mib(d.get('used_mib'))}/{_mib(d.get('total_mib'))} GiB" for d in devices[:2]]
    more = f" +{len(devices) - 2}" if len(devices) > 2 else ""
    return ", ".join(cells) + more + (" unified" if gpu.get("unified_memory") else "")


def fmt_age(seconds: float | None) -> str:
    """A short age: 45s, 12m, 3h, 2d; '-' when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _service_cells(svc: Mapping[str, Any]) -> list[str]:
    unit = svc.get("unit") or {}
    image = svc.get("image") or {}
    health = svc.get("health") or {}
    verify = svc.get("verify") or {}
    if svc.get("planned") == "skipped":
        return [SKIPPED_STATE, "-", "-", "-", "-", str(svc.get("reason") or "")[:60]]
    unit_cell = str(unit.get("active") or "-")
    if unit.get("active") == "active" and unit.get("uptime_s") is not None:
        unit_cell += f" {fmt_age(unit['uptime_s'])}"
    health_cell = ("healthy" if health.get("healthy") else "DOWN") if health.get("checked") else "-"
    result = str(verify.get("result") or "-")
    verify_cell = result if result in ("never", "-") else f"{result} {fmt_age(verify.get('age_s'))} ago"
    problems = "; ".join(str(p) for p in svc.get("problems") or []) or "-"
    return [str(svc.get("state")), unit_cell, str(image.get("state") or "-"), health_cell, verify_cell, problems]


HEADER = ["HOST", "SERVICE", "STATE", "UNIT", "IMAGE", "HEALTH", "VERIFIED", "GPU MEM", "PROBLEMS"]


def table(docs: Sequence[Mapping[str, Any]]) -> str:
    """The status table, one row per service (one per host without any), and a closing summary line."""
    rows: list[list[str]] = []
    for doc in docs:
        gpu = gpu_cell(doc.get("gpu") or {})
        services = doc.get("services") or []
        if not services or doc.get("verdict") == UNREACHABLE:
            problems = "; ".join(str(p) for p in [*(doc.get("problems") or []), *(doc.get("plan_errors") or [])])
            state = str(doc.get("verdict"))
            rows.append([str(doc["host"]), "-", state, "-", "-", "-", "-", gpu, problems[:100] or "no service planned"])
            continue
        for i, svc in enumerate(services):
            cells = _service_cells(svc)
            rows.append([str(doc["host"]) if i == 0 else "", str(svc.get("name")), *cells[:5],
                         gpu if i == 0 else "", cells[5][:100]])  # fmt: skip
        for unit in doc.get("own_units") or []:  # sparkfleet's own units: the gateway, the firewall
            active = str(unit.get("active") or "-")
            up = f" {fmt_age(unit['uptime_s'])}" if active == "active" and unit.get("uptime_s") is not None else ""
            state = OK if active == "active" else UNHEALTHY
            rows.append(["", f"({unit.get('name')})", state, active + up, "-", "-", "-", "", "-"])
        host_problems = [*(doc.get("problems") or []), *(doc.get("plan_errors") or [])]
        if host_problems:
            rows.append(["", "(host)", str(doc.get("verdict")), "", "", "", "", "", "; ".join(host_problems)[:100]])
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
             for row in [HEADER, *rows]]  # fmt: skip
    for name, g in across_hosts(docs).items():
        verdict = "ok" if g["ok"] else "FAILED: " + "; ".join(g["why"])
        lines.append(f"across hosts: {name} on {', '.join(g['hosts'])}: {verdict}")
    return "\n".join(line.rstrip() for line in lines) + "\n" + summary(docs) + "\n"


def summary(docs: Sequence[Mapping[str, Any]]) -> str:
    """One line: how many hosts, how many ok, and the others by name."""
    bad = bad_hosts(docs)
    ok = len(docs) - len(bad)
    line = f"{len(docs)} host(s): {ok} ok"
    if bad:
        line += "; not ok: " + "; ".join(f"{h} {why}" for h, why in bad.items())
    return line


def write_documents(docs: Sequence[Mapping[str, Any]], out_dir: Path, table_text: str) -> list[str]:
    """``<out_dir>/<host>.json`` for each host and ``<out_dir>/status.txt``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in docs:
        path = out_dir / f"{doc['host']}.json"
        write_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
        written.append(str(path))
    write_atomic(out_dir / "status.txt", table_text)
    written.append(str(out_dir / "status.txt"))
    return written


def build(
    params: Mapping[str, Any], *, check_mode: bool, warn: Callable[[str], None], now: float | None = None
) -> dict[str, Any]:
    """The report's result from its parameters (hosts, results, report_dir, status_dir): the module and the action
    plugin of the same name both return this."""
    now = time.time() if now is None else now
    history = load_history(Path(str(params["report_dir"])) / HISTORY_FILE)
    for note in history.notes:
        warn(note)
    docs = host_documents([str(h) for h in params["hosts"]], params.get("results") or {}, history.entries, now)
    text = table(docs)
    # Check mode writes nothing (as the verify stage's report): the table is returned all the same.
    written = [] if check_mode else write_documents(docs, Path(str(params["status_dir"])), text)
    bad = bad_hosts(docs)
    return {
        "changed": False,
        "table": text,
        "summary": summary(docs),
        "bad_hosts": bad,
        "groups": groups(docs),
        "across_hosts": across_hosts(docs),
        "files": written,
        "msg": (
            f"{len(bad)} of {len(docs)} host(s) unhealthy or drifted: "
            + "; ".join(f"{h}: {why}" for h, why in bad.items())
            + f" (documents in {params['status_dir']})"
            if bad
            else f"all {len(docs)} host(s) ok"
        ),
    }


def run_module(module: Any, now: float | None = None) -> None:
    """The body of the sparkfleet_status_report module (playbooks run its action plugin, in the controller's own
    process: no module to start)."""
    module.exit_json(**build(module.params, check_mode=module.check_mode, warn=module.warn, now=now))


__all__ = ["DRIFTED", "OK", "UNHEALTHY", "UNREACHABLE", "build", "host_documents", "run_module", "table"]
