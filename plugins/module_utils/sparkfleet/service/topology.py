"""The fleet's Dynamo deployments, checked across hosts (the per-host plan cannot see the others).

Input: every host's plan (``ansible_facts.sparkfleet_plan``) and the address the others reach it at. Output:
every problem, each naming the deployment, the host and the variable to change, and the reachability probes the
preflight role runs from each frontend's host to each of its workers' hosts (docs/dynamo.md).

Rules: exactly one ``dynamo-frontend`` per ``dynamo_deployment``; at least one worker; workers that need a GPU on
hosts with a GPU profile (the CPU mocker is declared by its engine and ``gpu: none``); one ``dynamo_discovery``
per deployment; ``file`` only when every component is on one host; an etcd URL only when the deployment has the
``dynamo-etcd`` service it names; etcd's peer port (port + 1) free on its host; and, when etcd is deployed for the
first time, its host served first and alone (``serial``: a worker's health gate waits for its registration in
etcd, and in one batch Ansible may gate it before etcd starts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..rollout import serial_batches
from .groups import check_groups
from .model import ENGINES, SERVICES_VAR
from .plan import DEPLOY, NO_GPU_PROFILE


@dataclass
class Component:
    host: str
    name: str
    engine: str
    role: str
    port: int
    discovery: str
    where: str


@dataclass
class Topology:
    errors: list[str] = field(default_factory=list)
    # {from_host, to_host, address, port}: the frontend's host must reach each worker's host.
    probes: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)


def _components(plans: Mapping[str, Any]) -> tuple[dict[str, list[Component]], dict[str, str]]:
    by_deployment: dict[str, list[Component]] = {}
    profiles: dict[str, str] = {}
    for host in sorted(plans):
        plan = plans[host] if isinstance(plans[host], Mapping) else {}
        profiles[host] = str(plan.get("profile") or NO_GPU_PROFILE)
        for svc in plan.get("services") or []:
            if not isinstance(svc, Mapping) or svc.get("status") != DEPLOY:
                continue
            engine = ENGINES.get(str(svc.get("engine")))
            if engine is None or not engine.dynamo_role:
                continue
            comp = Component(
                host=host,
                name=str(svc.get("name")),
                engine=engine.name,
                role=engine.dynamo_role,
                port=int(svc.get("port") or engine.default_port),
                discovery=str(svc.get("dynamo_discovery") or "file"),
                where=str(svc.get("where") or SERVICES_VAR),
            )
            by_deployment.setdefault(str(svc.get("dynamo_deployment") or "dynamo"), []).append(comp)
    return by_deployment, profiles


def _label(c: Component) -> str:
    return f"{c.host}: {c.where}"


def _url_matches(url: str, comp: Component, addresses: Mapping[str, Sequence[str]]) -> bool:
    parts = urlsplit(url)
    names = {comp.host, *addresses.get(comp.host, ())}
    return parts.hostname in names and parts.port == comp.port


def _order_problem(where: str, etcd: Component, batches: Sequence[Sequence[str]]) -> str:
    """Why a first deploy of ``etcd`` could gate another host's component before etcd starts, or ''.

    The rule is that etcd's host is served first and alone: sufficient for serving.yml's batches and for
    rolling_update.yml's (whose canary is the first host, alone), whatever the batch size."""
    if batches and list(batches[0]) == [etcd.host]:
        return ""
    first = ", ".join(batches[0]) if batches else "none"
    return (
        f"{where}: {_label(etcd)} is deployed for the first time and its workers or frontend are on other hosts, "
        f"but the first batch served is {first}: a component's health gate could wait for etcd before etcd "
        f"starts. Fix: list {etcd.host} first in the inventory (or the limit) and serve it alone first: "
        "sparkfleet_rollout_batch: [1, 100%] for site.yml and serving.yml (1 for rolling_update.yml), or "
        f"playbooks/serving.yml --limit {etcd.host} before the rest; reruns need neither"
    )


def check_topology(
    plans: Mapping[str, Any],
    addresses: Mapping[str, Sequence[str]] | None = None,
    ssh_ports: Mapping[str, int] | None = None,
    serial: Any = None,
    play_hosts: Sequence[str] | None = None,
) -> Topology:
    """``plans``: host -> its plan fact; ``addresses``: host -> the names/addresses others reach it at (the first
    one is probed); ``ssh_ports``: host -> the port the reachability probe connects to (default 22); ``serial``
    and ``play_hosts``: the serving play's batches and its hosts in order (no order check without them)."""
    addresses = addresses or {}
    out = Topology()
    batches = serial_batches(list(play_hosts), serial) if play_hosts is not None and serial is not None else None
    by_deployment, profiles = _components(plans)
    for name, comps in sorted(by_deployment.items()):
        where = f"dynamo_deployment {name!r}"
        frontends = [c for c in comps if c.role == "frontend"]
        workers = [c for c in comps if c.role == "worker"]
        etcds = [c for c in comps if c.role == "discovery"]
        hosts = sorted({c.host for c in comps})
        out.deployments[name] = {
            "frontends": [c.host for c in frontends],
            "workers": [f"{c.host}/{c.name}" for c in workers],
            "hosts": hosts,
        }
        if not frontends:
            out.errors.append(
                f"{where} has {len(workers)} worker(s) ({', '.join(_label(c) for c in workers) or 'none'}) but no "
                "dynamo-frontend: add one service with engine dynamo-frontend and this dynamo_deployment to "
                "llm_serving_services of one host (CPU is enough)"
            )
        elif len(frontends) > 1:
            out.errors.append(
                f"{where} has {len(frontends)} frontends ({'; '.join(_label(c) for c in frontends)}): a deployment "
                "has exactly one dynamo-frontend; remove the others or give them their own dynamo_deployment"
            )
        if frontends and not workers:
            out.errors.append(
                f"{where} has a frontend ({_label(frontends[0])}) but no worker: add dynamo-sglang services (GPU "
                "hosts) or dynamo-mocker services (CPU stand-ins) with this dynamo_deployment"
            )
        for w in workers:
            if ENGINES[w.engine].needs_gpu_host and profiles.get(w.host) == NO_GPU_PROFILE:
                out.errors.append(
                    f"{_label(w)} is a {w.engine} worker of {where}, but host {w.host} has no GPU profile (profile "
                    f"{NO_GPU_PROFILE}): move it to a Spark or Station, or use engine dynamo-mocker with gpu: none "
                    "for a CPU stand-in"
                )
        discoveries = sorted({c.discovery for c in comps})
        if len(discoveries) > 1:
            listing = "; ".join(f"{_label(c)} has {c.discovery}" for c in comps)
            out.errors.append(
                f"{where} mixes dynamo_discovery values ({listing}): every component of a deployment must use the "
                "same one"
            )
            continue
        discovery = discoveries[0]
        if discovery == "file":
            if etcds:
                out.errors.append(
                    f"{where} uses dynamo_discovery file but has a dynamo-etcd service ({_label(etcds[0])}): set "
                    "dynamo_discovery to its URL, or remove it"
                )
            if len(hosts) > 1:
                out.errors.append(
                    f"{where} spans hosts {', '.join(hosts)} with dynamo_discovery file, which is a directory on one "
                    "host: the frontend would never see the other hosts' workers. Fix: add a dynamo-etcd service "
                    "(on the frontend's host) and set dynamo_discovery to its URL on every component "
                    "(docs/dynamo.md)"
                )
        else:
            urls = discovery.split(",")
            matched = [e for e in etcds if any(_url_matches(u, e, addresses) for u in urls)]
            if not matched:
                have = "; ".join(f"{_label(e)} on port {e.port}" for e in etcds) or "none"
                out.errors.append(
                    f"{where} sets dynamo_discovery {discovery}, but no dynamo-etcd service of the deployment "
                    f"listens there (dynamo-etcd services: {have}). Fix: add a dynamo-etcd service with this "
                    "dynamo_deployment on the host the URL names, on the URL's port"
                )
        for e in etcds:
            installed = (plans.get(e.host) or {}).get("installed") or []
            if batches is not None and len(hosts) > 1 and e.name not in installed:
                problem = _order_problem(where, e, batches)
                if problem:
                    out.errors.append(problem)
            peer = e.port + 1
            clash = [
                c for cs in by_deployment.values() for c in cs if c.host == e.host and c.port == peer and c is not e
            ]
            if clash:
                out.errors.append(
                    f"{_label(clash[0])} uses port {peer}, which {e.name} (dynamo-etcd on port {e.port}) takes for "
                    "its peer URL (port + 1): move one of them"
                )
        for f in frontends[:1]:
            for host in sorted({c.host for c in comps if c.host != f.host}):
                target = (list(addresses.get(host, ())) or [host])[0]
                out.probes.append(
                    {
                        "from_host": f.host,
                        "to_host": host,
                        "address": target,
                        "port": int((ssh_ports or {}).get(host, 22)),
                        "deployment": name,
                    }
                )
    return out


def run_module(module: Any) -> None:
    """The body of the sparkfleet_topology module."""
    params = module.params
    topo = check_topology(
        params.get("plans") or {},
        {h: [str(a) for a in v if a] for h, v in (params.get("addresses") or {}).items()},
        {h: int(p) for h, p in (params.get("ssh_ports") or {}).items() if p},
        serial=params.get("serial"),
        play_hosts=params.get("play_hosts"),
    )
    # Services across hosts (service/groups.py): their pieces put together, and their hosts' fabric.
    groups = check_groups(params.get("plans") or {}, params.get("play_hosts"), params.get("fabric") or None,
                          serial=params.get("serial"))  # fmt: skip
    for warning in groups.warnings:
        module.warn(warning)
    module.exit_json(changed=False, errors=topo.errors + groups.errors, probes=topo.probes,
                     deployments=topo.deployments, groups=groups.groups)  # fmt: skip


__all__ = ["Topology", "check_topology", "run_module"]
