"""A rollout's arithmetic, in one place: its batches (canary first), and its failure budget.

``plan_rollout`` turns the rollout settings (``sparkfleet_rollout_batch``, ``_canary``, ``_max_fail_percentage``)
and the hosts in play order into the batch sizes the update play's ``serial`` takes, the hosts of each batch, and
the number of failed hosts the budget allows. ``serial_batches`` is how Ansible cuts hosts by ``serial`` (the
serving play's and preflight's topology check read it too). Every bad setting is refused here, before any host
changes, with a message naming the variable and the fix.

A service across hosts rolls out as one unit (docs/multi-host.md): ``rollout_units`` finds the hosts that must
stay together (the hosts of each such service, merged where two services share a host), and the plan never cuts a
unit: a batch takes whole units until it holds at least its size (it grows past it rather than split one; a canary
is the first unit, a whole group when the first host is in one). The update play runs the hosts in the plan's
``order`` (each unit's hosts next to each other), which is why the batches can be explicit sizes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .service.multihost import resolve_hosts, spans_hosts

BATCH_VAR = "sparkfleet_rollout_batch"
CANARY_VAR = "sparkfleet_rollout_canary"
BUDGET_VAR = "sparkfleet_rollout_max_fail_percentage"

# A host count (1, 2, ...) or a whole percentage of the hosts in play (1%-100%), as Ansible's serial takes them.
_ENTRY = re.compile(r"[1-9][0-9]{0,5}|([1-9][0-9]?|100)%")
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _entry_size(entry: Any, total: int) -> int:
    """The hosts one serial entry takes, as Ansible's ``pct_to_int`` counts them (a percentage at least 1);
    0 or an entry that is not a number takes every host left."""
    text = str(entry).strip()
    try:
        if text.endswith("%"):
            return int(int(text[:-1]) / 100.0 * total) or 1
        return int(text)
    except ValueError:
        return 0


def serial_batches(hosts: Sequence[str], serial: Any) -> list[list[str]]:
    """The batches Ansible's ``serial`` makes of ``hosts`` (in play order): each entry a count or a percentage of
    all hosts (at least 1), the last entry repeated; 0, none or an empty list is one batch."""
    entries = list(serial) if isinstance(serial, (list, tuple)) else [serial]
    batches: list[list[str]] = []
    rest = list(hosts)
    i = 0
    while rest:
        entry = entries[min(i, len(entries) - 1)] if entries else 0
        size = _entry_size(entry if entry is not None else 0, len(hosts))
        size = len(rest) if size <= 0 else size
        batches.append(rest[:size])
        rest = rest[size:]
        i += 1
    return batches


def _span_hosts(raw: Any, groups: Mapping[str, Any]) -> list[str]:
    """The hosts of one declared service across hosts (an entry of llm_serving_services as the inventory has it),
    or [] for a service on one host or an entry too broken to read (preflight's parser refuses those)."""
    if not isinstance(raw, Mapping) or not spans_hosts(raw):
        return []
    hosts, group, nodes = raw.get("hosts"), raw.get("group"), raw.get("nodes")
    if hosts and not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
        return []
    if group and (
        not isinstance(group, str) or (nodes is not None and (isinstance(nodes, bool) or not isinstance(nodes, int)))
    ):
        return []
    resolved, _head, _problems = resolve_hosts(raw, groups)
    return resolved


def rollout_units(hosts: Sequence[str], services: Mapping[str, Any], groups: Mapping[str, Any]) -> list[list[str]]:
    """The units of a rollout, in play order: the hosts (of ``hosts``) of every service across hosts, merged where
    two services share a host; every other host is a unit alone. ``services``: host -> its llm_serving_services."""
    order = {str(h): i for i, h in enumerate(hosts)}
    parent = {h: h for h in order}

    def root(h: str) -> str:
        while parent[h] != h:
            parent[h] = parent[parent[h]]
            h = parent[h]
        return h

    for declared in services.values():
        for raw in declared if isinstance(declared, list) else []:
            members = [h for h in _span_hosts(raw, groups) if h in order]
            for other in members[1:]:
                a, b = sorted((root(members[0]), root(other)), key=order.__getitem__)
                parent[b] = a
    units: dict[str, list[str]] = {}
    for host in order:
        units.setdefault(root(host), []).append(host)
    return sorted(units.values(), key=lambda unit: order[unit[0]])


def unit_batches(units: Sequence[Sequence[str]], serial: Sequence[Any], total: int) -> list[list[str]]:
    """Whole units into batches of at least each serial entry's size (of ``total`` hosts; the last entry repeats)."""
    batches: list[list[str]] = []
    for unit in units:
        if not batches or len(batches[-1]) >= _target(serial, len(batches) - 1, total):
            batches.append([])
        batches[-1].extend(unit)
    return batches


def _target(serial: Sequence[Any], index: int, total: int) -> int:
    size = _entry_size(serial[min(index, len(serial) - 1)], total) if serial else 0
    return total if size <= 0 else size


@dataclass
class RolloutPlan:
    """What the rollout does, decided before any host changes."""

    hosts: list[str] = field(default_factory=list)
    # The hosts in the order the update play runs them: each unit's hosts next to each other.
    order: list[str] = field(default_factory=list)
    # The units of more than one host (services across hosts): host -> its unit's hosts.
    unit_of: dict[str, list[str]] = field(default_factory=dict)
    # The update play's serial: every batch's size, explicit (Ansible repeats the last entry; here none is left).
    serial: list[int] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)
    # The rollout stops once more hosts than this have failed (rolled back, stopped, unreachable).
    max_failures: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hosts": self.hosts,
            "order": self.order,
            "unit_of": self.unit_of,
            "serial": self.serial,
            "batches": self.batches,
            "canary": self.batches[0] if self.batches else [],
            "max_failures": self.max_failures,
            "total": len(self.hosts),
        }


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def plan_rollout(
    hosts: Sequence[str],
    batch: Any,
    canary: Any,
    max_fail_percentage: Any,
    units: Sequence[Sequence[str]] | None = None,
) -> RolloutPlan:
    """The rollout of ``hosts`` (play order): a canary alone first when ``canary``, then batches of ``batch``
    (a count, a percentage, or a list of them; the last repeated), and the failure budget. ``units``: the hosts that
    roll out together (``rollout_units``; none: every host alone)."""
    plan = RolloutPlan(hosts=[str(h) for h in hosts])
    entries = list(batch) if isinstance(batch, (list, tuple)) else [batch]
    bad = [e for e in entries if isinstance(e, bool) or not _ENTRY.fullmatch(str(e).strip())]
    if not entries or bad:
        plan.errors.append(
            f"{BATCH_VAR} {_show(batch)} must be a host count (1, 2, ...), a percentage of the hosts in the limit "
            "(1%-100%, e.g. 25%), or a list of them (e.g. [1, 25%]: the last one repeats)"
        )
    is_canary = _flag(canary)
    if is_canary is None:
        plan.errors.append(f"{CANARY_VAR} {_show(canary)} must be true or false")
    pct_text = str(max_fail_percentage).strip()
    pct = Fraction(pct_text) if not isinstance(max_fail_percentage, bool) and _PERCENT.fullmatch(pct_text) else None
    if pct is None or pct > 100:
        plan.errors.append(
            f"{BUDGET_VAR} {_show(max_fail_percentage)} must be a number from 0 to 100: the share (percent) of the "
            "hosts in the limit that may fail before the rollout stops"
        )
    if plan.errors:
        return plan
    serial = ([1] if is_canary else []) + entries
    known = set(plan.hosts)
    grouped = [[str(h) for h in unit if str(h) in known] for unit in units or []]
    grouped = [unit for unit in grouped if unit]
    taken = {h for unit in grouped for h in unit}
    first = {h: i for i, h in enumerate(plan.hosts)}
    whole = sorted(grouped + [[h] for h in plan.hosts if h not in taken], key=lambda unit: min(first[h] for h in unit))
    plan.batches = unit_batches(whole, serial, len(plan.hosts))
    plan.order = [h for b in plan.batches for h in b]
    plan.unit_of = {h: list(unit) for unit in whole if len(unit) > 1 for h in unit}
    plan.serial = [len(b) for b in plan.batches]
    # Stopped when failures * 100 / total > pct, i.e. failures > pct * total / 100 (exact, no float rounding).
    plan.max_failures = int((pct or Fraction(0)) * len(plan.hosts) / 100)
    return plan


def _show(value: Any) -> str:
    text = str(value)
    return json.dumps(text if len(text) <= 40 else text[:40] + "...")


def run_module(module: Any) -> None:
    """The body of the sparkfleet_rollout_plan module."""
    p = module.params
    units = rollout_units(p["hosts"], p["services"] or {}, p["groups"] or {})
    plan = plan_rollout(p["hosts"], p["batch"], p["canary"], p["max_fail_percentage"], units)
    if plan.errors:
        module.fail_json(msg="bad rollout settings: " + "; ".join(plan.errors) + ". Nothing was changed.")
    module.exit_json(changed=False, **plan.as_dict())


__all__ = ["RolloutPlan", "plan_rollout", "rollout_units", "run_module", "serial_batches", "unit_batches"]
