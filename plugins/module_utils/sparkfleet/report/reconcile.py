"""Nothing silently missing: what the inventory plans per host against what is serving and verified.

For each host in the run, every service its plan expects (status deploy or skipped) is either serving or missing
with a reason: skipped by choice, failed its gate or its checks, does not answer, the host failed or was
unreachable. Services a host runs that the plan does not name (orphans of an earlier run) are listed too. ``ok`` is
false when a service is missing other than by explicit choice.

Serving counts what answers, whichever version. Without ``answers`` (a site.yml run) the evidence is this run's
benchmark: a service serves when it passed. A rollout (playbooks/rolling_update.yml) probes every planned service's
health paths on its host at the end (``answers``): a service that answers serves, the version its host's outcome
says (updated: this run's; rolled back or not reached: the previous one), and only one that does not answer, or
whose host did not answer at all (down or unreachable), is missing. This run's version that answers but failed its
benchmark is still missing (it failed verification).

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

# Which version a host serves when its services answer, by what its outcome says happened to it.
THIS_RUN = "this run's version"
PREVIOUS = "the previous version"
UNKNOWN = "an unknown version"
# A host's outcome, read by its first words (playbooks/rolling_update.yml and roles/llm_serving/tasks/lkg_restore.yml
# write them): (prefix, why, version).
_OUTCOME_KINDS = (
    ("updated", "updated", THIS_RUN),
    ("unchanged", "unchanged", THIS_RUN),
    ("rolled back", "rolled back", PREVIOUS),
    ("not reached", "not reached", PREVIOUS),
    ("update failed", "update failed", UNKNOWN),
    ("stopped", "stopped", UNKNOWN),
)
FAILED_OR_UNREACHABLE = "failed or unreachable"
DOWN = "down"
UNREACHABLE = "down or unreachable"
# The summary line's words for services that serve another version than this run's, in this order.
_TALLY = (("rolled back", "rolled back"), ("not reached", "not reached"), (UNKNOWN, "of an unknown version"))


def outcome_kind(outcome: Any) -> tuple[str | None, str]:
    """(why, version) of a host's outcome; (None, this run's version) without one (a site.yml run)."""
    text = str(outcome or "").strip().lower()
    if not text:
        return None, THIS_RUN
    for prefix, why, version in _OUTCOME_KINDS:
        if text.startswith(prefix):
            return why, version
    return FAILED_OR_UNREACHABLE, UNKNOWN


def _answer(value: Any) -> tuple[bool, str, list[str]]:
    """(answers, the probe's message, the model ids it listed) of one service's probe result."""
    if isinstance(value, bool):
        return value, "", []
    if not isinstance(value, Mapping):
        return False, "", []
    models = value.get("models")
    ids = [str(m) for m in models] if isinstance(models, list) else []
    return value.get("healthy") is True, " ".join(str(value.get("msg") or "").split()), ids


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
    piece = svc.get("multihost")
    if isinstance(piece, Mapping) and piece.get("role") == "worker":
        return (
            f"worker (rank {piece.get('rank')} of {piece.get('nnodes')}) of a service across hosts: verified "
            f"through its head {piece.get('head')} (and its health gate)"
        )
    return "verify.enabled is false: verified by its health gate only"


def _spanning(plans: Mapping[str, Any], hosts: Sequence[Mapping[str, Any]],
              missing: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """One entry per service across hosts (docs/multi-host.md): one service on N hosts, serving only when its head
    serves and no host of it failed in this run (a host of the group that fails fails the whole service)."""
    pieces: dict[str, dict[str, Mapping[str, Any]]] = {}
    for host in sorted(plans):
        for svc in plans[host] or []:
            piece = svc.get("multihost") if isinstance(svc, Mapping) else None
            if isinstance(piece, Mapping) and piece and svc.get("status") != ABSENT:
                pieces.setdefault(str(svc.get("name")), {})[host] = piece
    failed_hosts = {str(h.get("host")) for h in hosts if h.get("why") and h.get("why") not in SUCCESS_OUTCOMES}
    missing_keys = {(str(m.get("host")), str(m.get("service"))) for m in missing}
    out: list[dict[str, Any]] = []
    for name, by_host in sorted(pieces.items()):
        first = next(iter(by_host.values()))
        group_hosts = [str(h) for h in first.get("hosts") or by_host]
        head = str(first.get("head") or "")
        down = [h for h in group_hosts if h in failed_hosts or h not in by_host]
        if (head, name) in missing_keys and head not in down:
            down.insert(0, head)
        out.append(
            {
                "service": name,
                "head": head,
                "hosts": group_hosts,
                "nnodes": len(group_hosts),
                "serving": not down,
                "down": down,
            }
        )
    return out


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


def _unreachable_reason(outcome: str | None, why: str | None) -> str:
    if outcome and why == FAILED_OR_UNREACHABLE:
        return f"{UNREACHABLE}: {outcome}"
    said = f" (its outcome: {outcome})" if outcome else ""
    return f"{UNREACHABLE}: the host did not answer the probe at the end of the run{said}"


def reconcile(
    rows: Sequence[Row],
    plans: Mapping[str, Any],
    orphans: Mapping[str, Sequence[str]] | None = None,
    outcomes: Mapping[str, str] | None = None,
    answers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``plans``: host -> the plan's services ({name, status, reason}); ``outcomes``: host -> what happened to the
    host in this run (updated, rolled back, not reached, unreachable); ``answers``: host -> service -> its probe at
    the end of the run ({healthy, msg, models}), None when the run did not probe (a host missing from it did not
    answer); rows: the fleet report's rows (one per benchmarked service)."""
    by_key = {(r.host, r.service): r for r in rows}
    hosts: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    not_benchmarked: list[dict[str, Any]] = []
    frontends = _frontends(plans)
    tally: dict[str, int] = {}
    expected = serving = 0
    for host in sorted(plans):
        for svc in plans[host] or []:
            how = _not_benchmarked(svc, frontends) if isinstance(svc, Mapping) else None
            if how is not None:
                not_benchmarked.append({"host": host, "service": str(svc.get("name")), "verified": how})
        services = [s for s in plans[host] or [] if isinstance(s, Mapping) and _verified(s)]
        outcome = str((outcomes or {}).get(host) or "") or None
        why, version = outcome_kind(outcome)
        host_reason = None if why in SUCCESS_OUTCOMES else outcome
        probed = answers is not None and isinstance(answers.get(host), Mapping)
        host_answers: Mapping[str, Any] = answers[host] if answers is not None and probed else {}
        host_serving = 0
        down = False
        models: set[str] = set()
        for svc in services:
            name = str(svc.get("name"))
            expected += 1
            row = by_key.get((host, name))
            if svc.get("status") == SKIPPED:
                skipped = str(svc.get("reason") or "skipped by the plan")
                missing.append(
                    {"host": host, "service": name, "reason": skipped, "by_choice": skipped.startswith(BY_CHOICE)}
                )
                continue
            reason: str | None = None
            if answers is None:
                # No probe: this run's benchmark is the evidence.
                if row is None or not row.passed:
                    reason = host_reason or (_row_reason(row) if row is not None else "no result for this service")
            elif not probed:
                reason = _unreachable_reason(outcome, why)
            else:
                healthy, msg, ids = _answer(host_answers.get(name))
                if not healthy:
                    down = True
                    said = f" ({outcome})" if host_reason else ""
                    reason = f"{DOWN}: does not answer its health paths: {msg or 'no probe result'}{said}"
                elif version == THIS_RUN and row is not None and row.not_run is None and not row.passed:
                    reason = _row_reason(row)  # this run's version answers, but failed its verification
                else:
                    models.update(ids)
            if reason is not None:
                missing.append({"host": host, "service": name, "reason": reason, "by_choice": False})
                continue
            host_serving += 1
            if version != THIS_RUN:
                key = why if version == PREVIOUS and why else UNKNOWN
                tally[key] = tally.get(key, 0) + 1
        serving += host_serving
        if not services:
            serves, host_why = None, why
        else:
            # Nothing serving: known when the probe found nothing answering; unknown when the host did not answer
            # the probe; without a probe, only not verified.
            serves = (
                version
                if host_serving
                else "nothing"
                if probed
                else "unknown"
                if answers is not None
                else "not verified"
            )
            host_why = why
            if answers is not None and not probed:
                host_why = UNREACHABLE
            elif down and not host_serving:
                host_why = f"{why}; {DOWN}" if why and why not in SUCCESS_OUTCOMES else DOWN
        hosts.append(
            {
                "host": host,
                "expected": len(services),
                "serving": host_serving,
                "outcome": outcome,
                "serves": serves,
                "why": host_why,
                "models": sorted(models),
            }
        )
    orphan_list = [{"host": h, "service": s} for h in sorted(orphans or {}) for s in (orphans or {})[h]]
    spanning = _spanning(plans, hosts, missing)
    not_by_choice = [m for m in missing if not m["by_choice"]]
    by_choice = len(missing) - len(not_by_choice)
    parts = [", ".join(f"{tally[k]} {words}" for k, words in _TALLY if tally.get(k))] if tally else []
    if missing:
        parts.append(f"{by_choice} skipped by choice, {len(not_by_choice)} missing")
    line = f"expected {expected}, serving {serving}" + (f" ({'; '.join(parts)})" if parts else "")
    if orphan_list:
        line += f"; {len(orphan_list)} not in the inventory but running"
    return {
        "expected": expected,
        "serving": serving,
        "serving_other_version": {words: tally[k] for k, words in _TALLY if tally.get(k)},
        "probed": answers is not None,
        "hosts": hosts,
        "missing": missing,
        "orphans": orphan_list,
        "not_benchmarked": not_benchmarked,
        "ok": not not_by_choice and all(g["serving"] for g in spanning),
        # Only with services across hosts: a fleet of services on one host each reports exactly as before.
        **({"across_hosts": spanning} if spanning else {}),
        "line": line,
    }


def shows_hosts(rec: Mapping[str, Any]) -> bool:
    """Whether the report shows the per-host table of what each host serves and why (a rollout, a probe)."""
    return bool(rec.get("probed")) or any(h.get("outcome") for h in host_entries(rec))


def _serves(h: Mapping[str, Any]) -> str:
    """Which version, and the models it answers with where the probe listed them."""
    models = h.get("models")
    ids = ", ".join(str(m) for m in models) if isinstance(models, list) and h.get("serving") else ""
    return str(h.get("serves") or "-") + (f" ({ids})" if ids else "")


def host_cells(h: Mapping[str, Any]) -> list[str]:
    """host, expected, serving, serves, why, this run: one host's line of that table, plain text."""
    return [
        str(h.get("host", "?")),
        str(h.get("expected", "")),
        str(h.get("serving", "")),
        _serves(h),
        str(h.get("why") or "-"),
        str(h.get("outcome") or "-"),
    ]


HOST_HEADER = ["host", "expected", "serving", "serves", "why", "this run"]


def host_entries(rec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return dict_entries(rec, "hosts")


def markdown_lines(rec: Mapping[str, Any], cell: Any) -> list[str]:
    """The reconciliation section of fleet-report.md; its last line is the fleet's `expected N, serving M`."""
    lines = [f"## Planned vs serving: {cell(rec.get('line'))}", ""]
    width = len(HOST_HEADER) if shows_hosts(rec) else 3
    lines += [
        "| " + " | ".join(HOST_HEADER[:width]) + " |",
        "|" + "|".join(["---", "--:", "--:", "---", "---", "---"][:width]) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in host_cells(h)[:width]) + " |" for h in host_entries(rec)]
    lines.append("")
    missing, not_benchmarked, orphans = (
        dict_entries(rec, "missing"),
        dict_entries(rec, "not_benchmarked"),
        dict_entries(rec, "orphans"),
    )
    for g in dict_entries(rec, "across_hosts"):
        hosts = [str(h) for h in g.get("hosts") or []]
        state = (
            "serving" if g.get("serving") else f"FAILED (hosts down: {', '.join(str(h) for h in g.get('down') or [])})"
        )
        lines.append(
            f"- across hosts: {cell(g.get('service'))}: one service on {len(hosts)} hosts (head "
            f"{cell(g.get('head'))}; {cell(', '.join(hosts))}): {cell(state)}"
        )
    for m in missing:
        tag = "skipped by choice" if m.get("by_choice") else "MISSING"
        lines.append(f"- {tag}: {cell(m.get('host'))}/{cell(m.get('service'))}: {cell(m.get('reason'))}")
    for n in not_benchmarked:
        lines.append(f"- not benchmarked: {cell(n.get('host'))}/{cell(n.get('service'))}: {cell(n.get('verified'))}")
    for o in orphans:
        lines.append(
            f"- NOT IN THE INVENTORY: {cell(o.get('host'))}/{cell(o.get('service'))} still runs from an earlier run "
            "(llm_serving_remove_orphans: true removes it)"
        )
    if missing or orphans or not_benchmarked or dict_entries(rec, "across_hosts"):
        lines.append("")
    return lines


def dict_entries(rec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The entries of a list in a reconciliation (one passed back in by a later stage is read as carefully)."""
    value = rec.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
