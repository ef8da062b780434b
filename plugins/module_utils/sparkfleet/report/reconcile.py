"""Nothing silently missing: what the inventory plans per host against what is serving and verified.

For each host in the run, every service its plan expects (status deploy or skipped) is either serving (its
benchmark passed) or missing with a reason: skipped by choice, failed its gate or its checks, rolled back, the
host failed or was unreachable before verification. Services a host runs that the plan does not name (orphans
of an earlier run) are listed too. ``ok`` is false when a service is missing other than by explicit choice.

Planned services the benchmark does not speak to are not expected to serve a benchmark, and are never missing:
Dynamo workers (verified through their deployment's frontend) and etcd (its health gate); they are listed, with
how they are verified, under ``not_benchmarked``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..service.model import ENGINES
from ..service.plan import ABSENT, SKIPPED
from .model import Row

BY_CHOICE = "skipped by choice"
# A rollout's outcomes that are not a reason for a missing service.
SUCCESS_OUTCOMES = ("updated", "unchanged")


def _verified(svc: Mapping[str, Any]) -> bool:
    """A planned service that verification benchmarks: not absent, not verify.enabled false, an engine the
    benchmark speaks to (a Dynamo worker is reached through its frontend, etcd is not an LLM endpoint)."""
    engine = ENGINES.get(str(svc.get("engine")))
    given = svc.get("verify")
    verify: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    return (
        svc.get("status") != ABSENT
        and verify.get("enabled", True) is not False
        and (engine is None or engine.benchmarked)
    )


def _not_benchmarked(svc: Mapping[str, Any], frontends: Mapping[str, str]) -> str | None:
    """How a deployed service that verification does not benchmark is verified instead; None when it is
    benchmarked (or absent)."""
    if svc.get("status") == ABSENT or _verified(svc):
        return None
    engine = ENGINES.get(str(svc.get("engine")))
    if engine is not None and engine.dynamo_role == "worker":
        frontend = frontends.get(str(svc.get("dynamo_deployment")))
        where = f"its frontend {frontend}" if frontend else "its deployment's frontend"
        return f"a Dynamo worker: verified through {where} (and its health gate)"
    if engine is not None and engine.dynamo_role == "discovery":
        return "Dynamo discovery (etcd): verified by its health gate"
    return "verify.enabled is false: verified by its health gate only"


def _frontends(plans: Mapping[str, Any]) -> dict[str, str]:
    """Dynamo deployment -> its frontend as host/service (preflight allows one per deployment)."""
    out: dict[str, str] = {}
    for host in sorted(plans):
        for svc in plans[host] or []:
            if not isinstance(svc, Mapping) or svc.get("status") == ABSENT:
                continue
            engine = ENGINES.get(str(svc.get("engine")))
            if engine is not None and engine.dynamo_role == "frontend":
                out.setdefault(str(svc.get("dynamo_deployment")), f"{host}/{svc.get('name')}")
    return out


def _row_reason(row: Row) -> str:
    if row.not_run is not None:
        return f"not run: {row.not_run}"
    if row.error:
        return row.error
    if row.failures:
        return "failed verification: " + row.failures[0]
    if row.failed_checks:
        return "failed verification: " + ", ".join(row.failed_checks)
    return "failed verification"


def reconcile(
    rows: Sequence[Row],
    plans: Mapping[str, Any],
    orphans: Mapping[str, Sequence[str]] | None = None,
    outcomes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``plans``: host -> the plan's services ({name, status, reason}); ``outcomes``: host -> why a host has no
    result (rolled back, unreachable); rows: the fleet report's rows (one per benchmarked service)."""
    by_key = {(r.host, r.service): r for r in rows}
    hosts: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    not_benchmarked: list[dict[str, Any]] = []
    frontends = _frontends(plans)
    expected = serving = 0
    for host in sorted(plans):
        for svc in plans[host] or []:
            how = _not_benchmarked(svc, frontends) if isinstance(svc, Mapping) else None
            if how is not None:
                not_benchmarked.append({"host": host, "service": str(svc.get("name")), "verified": how})
        services = [s for s in plans[host] or [] if isinstance(s, Mapping) and _verified(s)]
        host_serving = 0
        for svc in services:
            name = str(svc.get("name"))
            expected += 1
            row = by_key.get((host, name))
            if svc.get("status") == SKIPPED:
                reason = str(svc.get("reason") or "skipped by the plan")
                missing.append(
                    {"host": host, "service": name, "reason": reason, "by_choice": reason.startswith(BY_CHOICE)}
                )
            elif row is not None and row.passed:
                host_serving += 1
            else:
                host_reason = (outcomes or {}).get(host)
                if host_reason in SUCCESS_OUTCOMES:
                    host_reason = None
                reason = host_reason or (_row_reason(row) if row is not None else "no result for this service")
                missing.append({"host": host, "service": name, "reason": reason, "by_choice": False})
        serving += host_serving
        hosts.append(
            {"host": host, "expected": len(services), "serving": host_serving, "outcome": (outcomes or {}).get(host)}
        )
    orphan_list = [{"host": h, "service": s} for h in sorted(orphans or {}) for s in (orphans or {})[h]]
    not_by_choice = [m for m in missing if not m["by_choice"]]
    by_choice = len(missing) - len(not_by_choice)
    line = f"expected {expected}, serving {serving}"
    if missing:
        line += f" ({by_choice} skipped by choice, {len(not_by_choice)} missing)"
    if orphan_list:
        line += f"; {len(orphan_list)} not in the inventory but running"
    return {
        "expected": expected,
        "serving": serving,
        "hosts": hosts,
        "missing": missing,
        "orphans": orphan_list,
        "not_benchmarked": not_benchmarked,
        "ok": not not_by_choice,
        "line": line,
    }


def markdown_lines(rec: Mapping[str, Any], cell: Any) -> list[str]:
    """The reconciliation section of fleet-report.md; its last line is the fleet's `expected N, serving M`."""
    lines = [f"## Planned vs serving: {rec['line']}", ""]
    if any(h.get("outcome") for h in rec["hosts"]):
        lines += ["| host | expected | serving | this run |", "|---|--:|--:|---|"]
        lines += [
            f"| {cell(h['host'])} | {h['expected']} | {h['serving']} | {cell(h.get('outcome') or '-')} |"
            for h in rec["hosts"]
        ]
    else:
        lines += ["| host | expected | serving |", "|---|--:|--:|"]
        lines += [f"| {cell(h['host'])} | {h['expected']} | {h['serving']} |" for h in rec["hosts"]]
    lines.append("")
    for m in rec["missing"]:
        tag = "skipped by choice" if m["by_choice"] else "MISSING"
        lines.append(f"- {tag}: {cell(m['host'])}/{cell(m['service'])}: {cell(m['reason'])}")
    for n in rec.get("not_benchmarked", []):
        lines.append(f"- not benchmarked: {cell(n['host'])}/{cell(n['service'])}: {cell(n['verified'])}")
    for o in rec["orphans"]:
        lines.append(
            f"- NOT IN THE INVENTORY: {cell(o['host'])}/{cell(o['service'])} still runs from an earlier run "
            "(llm_serving_remove_orphans: true removes it)"
        )
    if rec["missing"] or rec["orphans"] or rec.get("not_benchmarked"):
        lines.append("")
    return lines
