"""One model across several hosts: a service that names its hosts (or a group and a node count) and its
parallelism, expanded deterministically into one planned piece per host (docs/multi-host.md).

The service is one entry of ``llm_serving_services`` that every host of it lists (group_vars of a group they
share); a host that is not one of its hosts ignores it. Each host's plan (``service/plan.py``) expands the service
with the same inputs (the inventory's groups, every host's fabric address) and keeps its own piece: rank, role
(the head, rank 0, serves the API; the others are workers), the head's address on the fabric, the number of
hosts, and the NCCL/UCX/Gloo/host-IP environment of that host (FIELD-NOTES "one model across Sparks"). What one
host's plan cannot see is checked across the plans by ``service/groups.py``.

How each engine spans hosts is data: ``MultiHost`` forms in ``service/model.py``'s ENGINES.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..fabric import pick_endpoint
from .model import ENGINES, Engine, MultiHost

HEAD, WORKER = "head", "worker"
# The keys that make a service span hosts, and those that only mean something when it does.
SPAN_KEYS = ("hosts", "group")
SPAN_ONLY_KEYS = ("nodes", "head", "tensor_parallel", "pipeline_parallel", "distributed_backend", "dist_port")
# The host variables a host's fabric endpoint is read from (they win over the fabric facts).
FABRIC_INTERFACE_VAR = "sparkfleet_fabric_interface"
FABRIC_ADDRESS_VAR = "sparkfleet_fabric_address"
FABRIC_HCA_VAR = "sparkfleet_fabric_hca"
_NETDEV = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,14}")
_RDMA_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# NVIDIA's environment for NCCL across Sparks: every variable that names the interface of bootstrap and socket
# traffic gets the fabric interface (they differ between nodes).
SOCKET_IFNAME_ENV = (
    "NCCL_SOCKET_IFNAME",
    "GLOO_SOCKET_IFNAME",
    "TP_SOCKET_IFNAME",
    "UCX_NET_DEVICES",
    "OMPI_MCA_btl_tcp_if_include",
)
# RDMA over the CX-7: the container sees the RDMA devices and may pin memory.
NCCL_DOCKER_ARGS = ("--device", "/dev/infiniband", "--ulimit", "memlock=-1")

Err = Callable[[str, str], None]


def spans_hosts(svc: Mapping[str, Any]) -> bool:
    """Whether a (raw or normalized) service names hosts or a group."""
    return bool(svc.get("hosts")) or bool(svc.get("group"))


def form_of(svc: Mapping[str, Any]) -> MultiHost | None:
    engine = ENGINES.get(str(svc.get("engine")))
    return engine.multihost_form(svc.get("distributed_backend")) if engine else None


# ------------------------------------------------------------------ the parser's checks (one service, no host)


def check_keys(svc: dict[str, Any], engine: Engine, given: frozenset[str], err: Err) -> None:
    """The multi-host keys of one normalized service (types already checked); fills the backend default."""
    if not spans_hosts(svc):
        for key in SPAN_ONLY_KEYS:
            if key in given:
                err(key, "is set, but the service does not span hosts: set hosts (or group), or remove it")
        return
    if not engine.multihost:
        spanning = ", ".join(e.name for e in ENGINES.values() if e.multihost)
        err("hosts" if svc["hosts"] else "group", f"is set, but engine {engine.name} runs on one host only: "
            f"engines that span hosts are {spanning}")  # fmt: skip
        return
    if svc["hosts"] and svc["group"]:
        err("group", "is set together with hosts: name the hosts or a group, not both")
    if "nodes" in given and not svc["group"]:
        err("nodes", "is set without group: it counts the hosts of group (with hosts, list them)")
    backends = [key for key, _form in engine.multihost]
    backend = svc["distributed_backend"] or backends[0]
    if backend not in backends:
        err("distributed_backend", f"{backend!r} is not a backend of engine {engine.name}: use {', '.join(backends)}")
        return
    svc["distributed_backend"] = backend
    form = engine.multihost_form(backend)
    if form is None:  # checked above
        return
    if not form.parallel:
        for key in ("tensor_parallel", "pipeline_parallel"):
            if key in given:
                err(key, f"is set, but {engine.name} ({backend}) splits the model by layer on its own: remove it")
    _check_hosts(svc, err)
    for key in ("extra_args", "command"):
        for arg in svc[key]:
            name = arg.split("=", 1)[0]
            if name in form.owned_flags:
                err(key, f"sets {name}, which sparkfleet sets on every host of a service across hosts (from "
                    "hosts, tensor_parallel, pipeline_parallel and dist_port): remove it")  # fmt: skip


def _check_hosts(svc: Mapping[str, Any], err: Err) -> None:
    hosts = svc["hosts"]
    if hosts:
        seen: set[str] = set()
        for i, host in enumerate(hosts):
            if not host.strip():
                err(f"hosts[{i}]", "is empty: name an inventory host")
            elif host in seen:
                err(f"hosts[{i}]", f"{host!r} is listed twice: each host holds one rank")
            seen.add(host)
        if len(hosts) < 2:
            err("hosts", "names one host: a service on one host needs no hosts (list it in that host's "
                "llm_serving_services), one across hosts names two or more")  # fmt: skip
        if svc["head"] and svc["head"] not in hosts:
            err("head", f"{svc['head']!r} is not one of hosts ({', '.join(hosts)}): the head is one of them")


# ------------------------------------------------------------------ resolving hosts (the plan: needs the inventory)


def resolve_hosts(svc: Mapping[str, Any], groups: Mapping[str, Any] | None) -> tuple[list[str], str, list[str]]:
    """(hosts in rank order, head first; the head; problems) from hosts or group + nodes."""
    problems: list[str] = []
    if svc.get("group"):
        group = str(svc["group"])
        members = (groups or {}).get(group)
        if not isinstance(members, (list, tuple)):
            return [], "", [f"group {group!r} is not a group of the inventory. Fix: name a group (or list hosts)"]
        members = [str(h) for h in members]
        nodes = svc.get("nodes") or len(members)
        if nodes > len(members):
            problems.append(
                f"nodes is {nodes}, but group {group!r} has {len(members)} host(s) ({', '.join(members) or 'none'}): "
                "lower nodes or add hosts to the group"
            )
        hosts = members[:nodes]
        if len(hosts) < 2:
            problems.append(f"group {group!r} gives {len(hosts)} host(s): a service across hosts needs two or more")
    else:
        hosts = [str(h) for h in svc.get("hosts") or []]
        known = (groups or {}).get("all")
        if isinstance(known, (list, tuple)):
            for host in hosts:
                if host not in known:
                    problems.append(f"hosts names {host!r}, which is not a host of the inventory: fix the name")
    head = str(svc.get("head") or (hosts[0] if hosts else ""))
    if head and head not in hosts:
        problems.append(f"head {head!r} is not one of its hosts ({', '.join(hosts)}): name one of them")
        return hosts, head, problems
    ordered = [head, *[h for h in hosts if h != head]] if head else hosts
    return ordered, head, problems


def member(raw: Any, host: str, groups: Mapping[str, Any] | None) -> bool:
    """Whether this host plans ``raw`` (a service in its llm_serving_services): every single-host service, and a
    service across hosts only on its hosts. Unreadable entries are kept, so the parser reports them."""
    if not isinstance(raw, Mapping) or not spans_hosts(raw) or not host:
        return True
    hosts = raw.get("hosts")
    group = raw.get("group")
    if hosts and isinstance(hosts, list) and not group:
        return host in hosts
    if isinstance(group, str) and not hosts:
        members = (groups or {}).get(group)
        nodes = raw.get("nodes")
        if isinstance(members, (list, tuple)):
            count = nodes if isinstance(nodes, int) and not isinstance(nodes, bool) and nodes > 0 else len(members)
            return host in list(members)[:count]
    return True


# ------------------------------------------------------------------ fabric endpoints and the pieces


def fabric_endpoint(host: str, fabric: Mapping[str, Any] | None, needs_interface: bool) -> tuple[dict[str, Any], str]:
    """The host's fabric endpoint {interface, address, hca}: its host variables, else its fabric facts (the first up
    ConnectX-7 interface with an address); and the problem when there is none ('' when fine)."""
    data = (fabric or {}).get(host)
    data = data if isinstance(data, Mapping) else {}
    interface = str(data.get("interface") or "")
    address = str(data.get("address") or "")
    hca = data.get("hca") or []
    hca = [h for h in (hca.split(",") if isinstance(hca, str) else hca) if h]
    facts = data.get("facts")
    if isinstance(facts, Mapping) and facts:
        picked = pick_endpoint(facts, interface)
        interface = interface or picked.get("interface", "")
        address = address or picked.get("address", "")
        hca = hca or list(picked.get("hca") or [])
    endpoint = {"interface": interface, "address": address, "hca": [str(h) for h in hca]}
    if not address:
        return endpoint, (
            f"host {host} has no fabric address: set {FABRIC_ADDRESS_VAR} (its ConnectX-7 address, e.g. "
            f"192.168.100.11) in its host vars, or gather the fabric facts "
            "(sparkfleet.fleet.sparkfleet_fabric_facts) with an up CX-7 interface that has an address"
        )
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return endpoint, f"host {host}: {FABRIC_ADDRESS_VAR} {address!r} is not an IP address: write the CX-7 address"
    # Both land in the piece's env file and the NCCL/UCX variables: a netdev name as the kernel allows it (at most 15
    # characters) and RDMA device names, from an allowlist, so no value can carry a line or a separator.
    if interface and not _NETDEV.fullmatch(interface):
        return endpoint, (
            f"host {host}: {FABRIC_INTERFACE_VAR} {interface[:40]!r} is not a network interface name (letters, digits, "
            "'.', '_', '-', at most 15 characters): write the CX-7 netdev, e.g. enp1s0f1np1"
        )
    bad_hca = [h for h in endpoint["hca"] if not _RDMA_DEVICE.fullmatch(h)]
    if bad_hca:
        return endpoint, (
            f"host {host}: {FABRIC_HCA_VAR} {bad_hca[0][:40]!r} is not an RDMA device name (letters, digits, '.', '_',"
            " '-', at most 64 characters): list the devices ibdev2netdev shows, e.g. rocep1s0f1,roceP2p1s0f1"
        )
    if needs_interface and not interface:
        return endpoint, (
            f"host {host} has no fabric interface: set {FABRIC_INTERFACE_VAR} (the CX-7 netdev, e.g. enp1s0f1np1, "
            "the same port on every host) or gather the fabric facts"
        )
    return endpoint, ""


def parallelism(svc: Mapping[str, Any], nnodes: int, form: MultiHost) -> tuple[int, int, str]:
    """(tp, pp, problem): tensor_parallel defaults to the hosts over pipeline_parallel; tp x pp a multiple of
    the number of hosts."""
    if not form.parallel:
        return 1, 1, ""
    pp = int(svc.get("pipeline_parallel") or 1)
    tp = int(svc.get("tensor_parallel") or max(1, nnodes // pp))
    if (tp * pp) % nnodes:
        return (
            tp,
            pp,
            (
                f"tensor_parallel {tp} x pipeline_parallel {pp} = {tp * pp} is not a multiple of its {nnodes} hosts: "
                "each host runs (tp x pp) / hosts ranks. Fix: tensor_parallel or pipeline_parallel so that the product "
                f"is {nnodes}, {2 * nnodes}, ..."
            ),
        )
    return tp, pp, ""


def _fmt(template: str, values: Mapping[str, Any]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def format_args(templates: Sequence[str], piece: Mapping[str, Any]) -> list[str]:
    """A form's argument templates filled from a piece."""
    values = {
        "tp": piece["tp"],
        "pp": piece["pp"],
        "nnodes": piece["nnodes"],
        "rank": piece["rank"],
        "address": piece["address"],
        "head_address": piece["head_address"],
        "dist_port": piece["dist_port"],
        "workers": ",".join(piece["workers"]),
    }
    return [_fmt(t, values) for t in templates]


def piece_env(form: MultiHost, endpoint: Mapping[str, Any], head_address: str) -> dict[str, str]:
    """The environment of one host's piece: the fabric interface for NCCL/UCX/Gloo/torch, the RDMA devices, the
    head as MASTER_ADDR, the engine's host-IP variables set to this host's fabric address."""
    env: dict[str, str] = {}
    if form.nccl:
        if endpoint["interface"]:
            for name in SOCKET_IFNAME_ENV:
                env[name] = str(endpoint["interface"])
        if endpoint["hca"]:
            env["NCCL_IB_HCA"] = ",".join(endpoint["hca"])
            env["NCCL_IB_SUBNET_AWARE_ROUTING"] = "1"
        env["MASTER_ADDR"] = head_address
    for name in form.host_ip_env:
        env[name] = str(endpoint["address"])
    env.update(dict(form.env))
    return env


def expand(
    svc: Mapping[str, Any], groups: Mapping[str, Any] | None, fabric: Mapping[str, Any] | None
) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str]]:
    """Every host's piece of one service: ({host: piece}, {host: its fabric problem}, the service's problems).

    Deterministic: the head is rank 0, the other hosts follow in the order listed (or the group's order)."""
    form = form_of(svc)
    if form is None:
        return {}, {}, [f"engine {svc.get('engine')} has no backend {svc.get('distributed_backend')!r}"]
    hosts, head, problems = resolve_hosts(svc, groups)
    if problems or not hosts:
        return {}, {}, problems
    nnodes = len(hosts)
    tp, pp, problem = parallelism(svc, nnodes, form)
    if problem:
        problems.append(problem)
    port = int(svc.get("dist_port") or form.dist_port)
    endpoints: dict[str, dict[str, Any]] = {}
    fabric_problems: dict[str, str] = {}
    for host in hosts:
        endpoints[host], fabric_problems[host] = fabric_endpoint(host, fabric, form.nccl)
    head_address = endpoints[head]["address"]
    workers = [f"{_host_port(endpoints[h]['address'])}:{port}" for h in hosts[1:]]
    pieces: dict[str, dict[str, Any]] = {}
    for rank, host in enumerate(hosts):
        endpoint = endpoints[host]
        pieces[host] = {
            "hosts": list(hosts),
            "head": head,
            "host": host,
            "rank": rank,
            "role": HEAD if rank == 0 else WORKER,
            "nnodes": nnodes,
            "backend": str(svc.get("distributed_backend")),
            "tp": tp,
            "pp": pp,
            "dist_port": port,
            "interface": endpoint["interface"],
            "address": endpoint["address"],
            "hca": endpoint["hca"],
            "head_address": head_address,
            "workers": workers,
            "env": piece_env(form, endpoint, head_address),
            "start_first": form.start_first,
        }
    return pieces, {h: p for h, p in fabric_problems.items() if p}, problems


def plan_piece(
    svc: dict[str, Any],
    host: str,
    groups: Mapping[str, Any] | None,
    fabric: Mapping[str, Any] | None,
    gpus_per_host: int | None = None,
) -> list[str]:
    """Give a service across hosts this host's piece (``svc["multihost"]``); a worker serves no API (health: its
    unit running, or the form's worker paths; not benchmarked: verify goes through the head). Returns the problems,
    each naming the service's path, the host and the fix."""
    where = svc.get("where") or "llm_serving_services"
    if not host:
        return [f"{where} spans hosts, but the plan was made without this host's inventory name (the preflight role "
                "passes it as host): run playbooks/preflight.yml"]  # fmt: skip
    pieces, fabric_problems, problems = expand(svc, groups, fabric)
    out = [f"{where}: {p}" for p in problems]
    if host in fabric_problems:
        out.append(f"{where}: {fabric_problems[host]}")
    piece = pieces.get(host)
    if piece is None:
        if not problems:
            out.append(f"{where}: host {host} is not one of its hosts ({', '.join(pieces) or 'none'})")
        return out
    svc["multihost"] = piece
    per_host = piece["tp"] * piece["pp"] // piece["nnodes"]
    if gpus_per_host is not None and per_host > gpus_per_host:
        out.append(
            f"{where}: tensor_parallel {piece['tp']} x pipeline_parallel {piece['pp']} over {piece['nnodes']} hosts "
            f"puts {per_host} ranks on each host, but {host} gives it {gpus_per_host} GPU(s) (gpu: {svc['gpu']}). "
            "Fix: tensor_parallel x pipeline_parallel = the number of hosts (one GPU each), or gpu: all"
        )
    if piece["role"] == WORKER:
        form = form_of(svc)
        svc["health_paths"] = list(form.worker_health_paths) if form else []
        svc["verify"]["enabled"] = False
    return out


def port_clashes(services: Sequence[Mapping[str, Any]], host: str = "") -> list[str]:
    """Two present services of one host on one port, a rendezvous port included (a host in two groups on one
    port): the parser checks the API ports, this adds the rendezvous ports of services across hosts."""
    seen: dict[int, tuple[str, bool]] = {}
    out: list[str] = []
    on = f" on {host}" if host else " on this host"
    for svc in services:
        if svc.get("state") != "present":
            continue
        where = str(svc.get("where") or svc.get("name"))
        for i, port in enumerate(listening_ports(svc)):
            other = seen.get(port)
            # Two API ports on one port: the parser says so already.
            if other is not None and other[0] != where and (i or other[1]):
                out.append(
                    f"{where} takes port {port}{on} (its {'dist_port' if i else 'port'}), which {other[0]} also "
                    f"takes (its {'dist_port' if other[1] else 'port'}): a host in two services across hosts needs "
                    "its own ports for each. Fix: set dist_port or port of one of them"
                )
            seen.setdefault(port, (where, bool(i)))
    return out


def _host_port(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def listening_ports(svc: Mapping[str, Any]) -> list[int]:
    """The host ports one planned service takes: its port, and on a service across hosts the rendezvous port."""
    ports = [int(svc["port"])]
    piece = svc.get("multihost")
    if isinstance(piece, Mapping):
        ports.append(int(piece["dist_port"]))
    return ports


__all__ = [
    "FABRIC_ADDRESS_VAR",
    "FABRIC_HCA_VAR",
    "FABRIC_INTERFACE_VAR",
    "HEAD",
    "NCCL_DOCKER_ARGS",
    "SOCKET_IFNAME_ENV",
    "WORKER",
    "check_keys",
    "expand",
    "fabric_endpoint",
    "format_args",
    "member",
    "plan_piece",
    "port_clashes",
    "resolve_hosts",
    "spans_hosts",
]
