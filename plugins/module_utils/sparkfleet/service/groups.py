"""Services across hosts, checked across the hosts' plans (what one host's plan cannot see; docs/multi-host.md).

Input: every host's plan (``ansible_facts.sparkfleet_plan``), the play's hosts (the limit), and optionally every
host's fabric facts (``ansible_facts.sparkfleet_fabric``, ``fabric.py``). Each host's plan holds its own piece of
a service across hosts (``service/multihost.py``); here the pieces of one service are put together and refused
when they cannot run as one: a host of the service outside the run, a host that does not list the service, ranks
that do not cover the hosts, a head that is not rank 0, definitions that differ between hosts, hosts of different
profiles or architectures, a group that would run on some hosts only, weights beyond the group's memory, a worker
without the image the head runs, and the fabric's problems (``fabric.check_group``). Every problem names the
service, the host and the fix, like ``service/topology.py`` does for Dynamo deployments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..fabric import check_group
from ..rollout import serial_batches
from .multihost import form_of
from .plan import DEPLOY, NO_GPU_PROFILE

# What must be the same in every host's copy of a service across hosts (the rest is the host's own).
_SAME_KEYS = ("engine", "image", "image_archive", "model", "port", "distributed_backend", "context_length")
_SAME_PIECE_KEYS = ("hosts", "head", "nnodes", "tp", "pp", "dist_port", "head_address", "workers")


@dataclass
class Groups:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Service name -> {engine, backend, head, hosts, ranks: {host: rank}, nnodes, tp, pp, status}.
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)


def _pieces(plans: Mapping[str, Any]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Service name -> {host: its planned service} for every service across hosts in the plans."""
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for host in sorted(plans):
        plan = plans[host] if isinstance(plans[host], Mapping) else {}
        for svc in plan.get("services") or []:
            if isinstance(svc, Mapping) and isinstance(svc.get("multihost"), Mapping):
                out.setdefault(str(svc.get("name")), {})[host] = svc
    return out


def _label(name: str, svc: Mapping[str, Any]) -> str:
    return f"service {name} ({svc.get('where') or 'llm_serving_services'})"


def _same(label: str, copies: Mapping[str, Mapping[str, Any]], errors: list[str]) -> None:
    first_host = next(iter(copies))
    first = copies[first_host]
    for host, svc in copies.items():
        if host == first_host:
            continue
        diff = [k for k in _SAME_KEYS if svc.get(k) != first.get(k)]
        diff += [f"multihost.{k}" for k in _SAME_PIECE_KEYS if svc["multihost"].get(k) != first["multihost"].get(k)]
        if diff:
            errors.append(
                f"{label}: host {host} plans it differently from {first_host} ({', '.join(diff)}): every host of a "
                "service across hosts must read one definition. Fix: declare it once, in group_vars of a group its "
                "hosts share, and give every host the same fabric variables view"
            )


def _coverage(label: str, copies: Mapping[str, Mapping[str, Any]], plans: Mapping[str, Any],
              play: set[str] | None, errors: list[str]) -> list[str]:  # fmt: skip
    """Every host of the service in the run and planning it, ranks 0..n-1 once each, the head rank 0."""
    piece = next(iter(copies.values()))["multihost"]
    hosts = [str(h) for h in piece["hosts"]]
    missing_run = [h for h in hosts if h not in plans or (play is not None and h not in play)]
    if missing_run:
        errors.append(
            f"{label}: host(s) {', '.join(missing_run)} of the service are not in this run (the limit or the play "
            f"covers {', '.join(sorted(play if play is not None else plans))}): a service across hosts is deployed "
            f"on all of its hosts together. Fix: run with --limit {','.join(hosts)} (or no limit), or change hosts"
        )
    not_listed = [h for h in hosts if h in plans and h not in copies and h not in missing_run]
    if not_listed:
        errors.append(
            f"{label}: host(s) {', '.join(not_listed)} are among its hosts but do not plan it (their "
            "llm_serving_services do not list it, or their plan has errors). Fix: declare the service in group_vars "
            f"of a group all of {', '.join(hosts)} are in, so that every host reads it"
        )
    ranks = {h: int(svc["multihost"]["rank"]) for h, svc in copies.items()}
    taken: dict[int, str] = {}
    for host, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if rank in taken:
            errors.append(f"{label}: hosts {taken[rank]} and {host} both hold rank {rank}: each rank once")
        taken.setdefault(rank, host)
    expected = set(range(len(hosts)))
    if set(taken) - expected:
        errors.append(
            f"{label}: ranks {sorted(set(taken) - expected)} are outside 0..{len(hosts) - 1}: the ranks must "
            f"cover its {len(hosts)} hosts exactly"
        )
    head = str(piece["head"])
    if head in copies and copies[head]["multihost"].get("role") != "head":
        errors.append(f"{label}: the head {head} does not plan the head's piece (rank 0); its plan is stale: rerun")
    if head not in copies and head not in missing_run and head not in not_listed:
        errors.append(f"{label}: its head {head} plans no piece of it: set head to one of {', '.join(hosts)}")
    return hosts


def _alike(label: str, hosts: Sequence[str], plans: Mapping[str, Any], fabric: Mapping[str, Any],
           errors: list[str]) -> None:  # fmt: skip
    profiles = {h: str((plans.get(h) or {}).get("profile") or NO_GPU_PROFILE) for h in hosts if h in plans}
    if len(set(profiles.values())) > 1:
        listing = ", ".join(f"{h} {p}" for h, p in profiles.items())
        errors.append(
            f"{label}: its hosts have different profiles ({listing}): one model is split over machines of one kind. "
            "Fix: hosts of one profile (sparkfleet_profile_override only where detection is wrong)"
        )
    archs = {h: str((fabric.get(h) or {}).get("architecture") or "") for h in hosts if fabric.get(h)}
    if len({a for a in archs.values() if a}) > 1:
        listing = ", ".join(f"{h} {a or 'unknown'}" for h, a in archs.items())
        errors.append(f"{label}: its hosts have different architectures ({listing}): use hosts of one architecture")


def _status(label: str, copies: Mapping[str, Mapping[str, Any]], errors: list[str]) -> str:
    statuses = {h: str(svc.get("status")) for h, svc in copies.items()}
    if len(set(statuses.values())) > 1:
        listing = ", ".join(f"{h} {s} ({copies[h].get('reason') or 'planned'})" for h, s in statuses.items())
        errors.append(
            f"{label}: its hosts would not run it together ({listing}): a service across hosts runs on all of its "
            "hosts or on none. Fix: the skipped host's problem (its plan says why)"
        )
    return next(iter(statuses.values()))


def _image(label: str, svc: Mapping[str, Any], hosts: Sequence[str], fabric: Mapping[str, Any],
           errors: list[str]) -> None:  # fmt: skip
    """A worker without the image the head holds, where delivering it could give another build (a tag pulled
    later may be a newer image; a digest or one archive is the same everywhere)."""
    image = str(svc.get("image") or "")
    if not image or "@sha256:" in image or svc.get("image_archive"):
        return
    ids = {h: str(((fabric.get(h) or {}).get("images") or {}).get(image, "")) for h in hosts if fabric.get(h)}
    head = hosts[0] if hosts else ""
    if not ids.get(head):
        return
    for host, image_id in ids.items():
        if host != head and not image_id:
            errors.append(
                f"{label}: worker {host} does not hold image {image}, which the head {head} holds "
                f"({ids[head][:19]}): pulled now, the tag may give another build than the head's. Fix: pin the "
                "image by digest (repo@sha256:...), deliver one archive (image_archive), or pull it on every host "
                "first"
            )


def _batches(label: str, hosts: Sequence[str], batches: Sequence[Sequence[str]] | None, errors: list[str]) -> None:
    """The hosts of one service across hosts served in one batch: serving starts its pieces in order across the
    hosts of a batch (the workers' RPC servers before the head), and a piece alone cannot serve."""
    if not batches:
        return
    where = {h: i for i, batch in enumerate(batches) for h in batch}
    split = sorted({where[h] for h in hosts if h in where})
    if len(split) > 1:
        listing = "; ".join(f"batch {i + 1}: {', '.join(h for h in hosts if where.get(h) == i)}" for i in split)
        errors.append(
            f"{label}: its hosts would be served in different batches ({listing}; sparkfleet_rollout_batch): a "
            "service across hosts starts on all of its hosts together. Fix: a batch that holds all of them "
            "(sparkfleet_rollout_batch: 100%, or list them next to each other and a batch size that keeps them "
            "together)"
        )


def check_groups(
    plans: Mapping[str, Any],
    play_hosts: Sequence[str] | None = None,
    fabric: Mapping[str, Any] | None = None,
    serial: Any = None,
) -> Groups:
    """``plans``: host -> its plan fact; ``play_hosts``: the run's hosts (None: the plans' hosts); ``fabric``:
    host -> its fabric facts (no fabric, image or architecture check without them); ``serial``: the serving
    play's batches (no batch check without it and play_hosts)."""
    out = Groups()
    batches = serial_batches(list(play_hosts), serial) if play_hosts is not None and serial is not None else None
    play = {str(h) for h in play_hosts} if play_hosts is not None else None
    facts = {h: f for h, f in (fabric or {}).items() if isinstance(f, Mapping)}
    for name, copies in sorted(_pieces(plans).items()):
        first = next(iter(copies.values()))
        label = _label(name, first)
        before = len(out.errors)
        _same(label, copies, out.errors)
        hosts = _coverage(label, copies, plans, play, out.errors)
        _alike(label, hosts, plans, facts, out.errors)
        _batches(label, hosts, batches, out.errors)
        status = _status(label, copies, out.errors)
        _image(label, first, hosts, facts, out.errors)
        group_facts = {h: facts[h] for h in hosts if h in facts}
        form = form_of(first)
        # The CX-7 checks are for NCCL over RDMA; llama.cpp's RPC split runs over TCP on any network (the lab).
        if status == DEPLOY and group_facts and (form is None or form.nccl):
            endpoints = {h: {"interface": s["multihost"].get("interface"), "address": s["multihost"].get("address")}
                         for h, s in copies.items()}  # fmt: skip
            problems, warnings = check_group(group_facts, endpoints, label=label, images=())
            out.errors += problems
            out.warnings += warnings
        piece = first["multihost"]
        out.groups[name] = {
            "engine": first.get("engine"),
            "backend": piece.get("backend"),
            "head": piece.get("head"),
            "hosts": hosts,
            "ranks": {h: int(s["multihost"]["rank"]) for h, s in copies.items()},
            "nnodes": piece.get("nnodes"),
            "tp": piece.get("tp"),
            "pp": piece.get("pp"),
            "status": status,
            "ok": len(out.errors) == before,
        }
    return out


__all__ = ["Groups", "check_groups"]
