"""Exposure: for every port a host's services listen on, where it listens and who may reach it.

A decision, not an accident (docs/serving.md, "Who can reach each port"):
- a worker behind a gateway that has an API key is reachable only from the gateway's hosts and the controller
  (``worker_sources``), so the key cannot be bypassed by talking to the worker directly; opening it is the explicit
  variable ``llm_serving_expose_workers``;
- etcd (Dynamo's discovery) is reachable only from the hosts of the deployments on this host (``etcd_sources``);
- every other port is reachable by anyone who can route to the host, and says so.

Restricted ports are enforced by host firewall rules (iptables, the tool Docker itself programs): a port Docker
publishes is filtered in Docker's own ``DOCKER-USER`` chain by its original destination port (after Docker's DNAT the
packet carries the container's port), a port on the host's network (etcd) in ``INPUT``. Loopback and the host's own
traffic are never filtered. IPv6 reaches published ports through docker-proxy (``INPUT``): a restricted port refuses
IPv6 from anywhere but loopback. The rules live in sparkfleet's own chains, which the role's unit flushes and
refills as a whole, so a removed service leaves no rule behind.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from ..contracts import owned_marker
from ..service.model import ENGINES

DOCKER_CHAIN = "SPARKFLEET-DOCKER"
INPUT_CHAIN = "SPARKFLEET-INPUT"
FIREWALL_UNIT = "firewall"  # sparkfleet-firewall.service (contracts.RESERVED_SERVICE_NAMES)
FIREWALL_MARKER = owned_marker(FIREWALL_UNIT)
ANYONE = "anyone"
RESTRICTED = "restricted"


def normalize_sources(sources: Sequence[Any], variable: str) -> tuple[list[str], list[str]]:
    """IPv4 addresses or networks (CIDR), deduplicated and sorted; errors name the variable and the value."""
    out: set[str] = set()
    errors: list[str] = []
    for value in sources:
        text = str(value).strip()
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            errors.append(f"{variable}: {text!r} is not an IPv4 address or network: list addresses (10.0.0.5) or CIDRs")
            continue
        if net.version != 4:
            errors.append(f"{variable}: {text!r} is IPv6: list IPv4 sources (restricted ports refuse IPv6)")
            continue
        out.add(str(net))
    return sorted(out, key=ipaddress.ip_network), errors


def service_exposure(
    svc: Mapping[str, Any],
    *,
    bind_address: str,
    worker_sources: Sequence[str] | None,
    etcd_sources: Sequence[str] | None,
) -> dict[str, Any]:
    """One rendered service -> where its port listens and who may reach it."""
    engine = ENGINES[str(svc["engine"])]
    path = "host" if engine.host_network or svc.get("host_network") else "docker"
    entry: dict[str, Any] = {
        "service": svc["name"],
        "port": int(svc["port"]),
        "listen": bind_address or "0.0.0.0",  # noqa: S104 - reported, not bound here
        "path": path,
        "reach": ANYONE,
        "allow": [],
    }
    if engine.arg_builder == "etcd":
        if etcd_sources is not None:
            return {**entry, "reach": RESTRICTED, "allow": list(etcd_sources),
                    "why": "Dynamo's etcd: only the hosts of its deployments"}  # fmt: skip
        return {**entry, "why": "Dynamo's etcd, opened by llm_serving_expose_etcd"}
    if engine.dynamo_role:
        return {**entry, "why": "a Dynamo component on the host's network (its request plane picks ports at run time)"}
    if worker_sources is not None:
        return {**entry, "reach": RESTRICTED, "allow": list(worker_sources),
                "why": "behind a gateway with an API key: only the gateway's hosts and the controller"}  # fmt: skip
    return {**entry, "why": "no gateway with a key in front of it, or llm_serving_expose_workers is true"}


def piece_exposure(svc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rendezvous port of a piece of a service across hosts (docs/multi-host.md), on the side that listens: a
    worker's RPC server (llama.cpp: the head connects to it) is reachable from its head only; a head's rendezvous
    (SGLang, vLLM, Ray's GCS) from its workers only. [] for a service on one host, and on the side that connects."""
    piece = svc.get("multihost")
    if not isinstance(piece, Mapping) or not piece:
        return []
    worker = piece.get("role") == "worker"
    if worker != (piece.get("start_first") == "workers"):
        return []
    if worker:
        peers = [str(piece.get("head_address") or "")]
        why = f"the RPC server of a worker of {svc['name']}: only its head ({piece.get('head')})"
    else:
        peers = [str(w).rsplit(":", 1)[0].strip("[]") for w in piece.get("workers") or []]
        why = f"the rendezvous of {svc['name']} across hosts: only its workers"
    entry: dict[str, Any] = {
        "service": svc["name"],
        "port": int(piece["dist_port"]),
        "listen": str(piece.get("address") or "0.0.0.0"),  # noqa: S104 - reported, not bound here
        "path": "host",
        "reach": RESTRICTED,
        "allow": [],
        "why": why,
    }
    try:
        if all(p and ipaddress.ip_address(p).version == 4 for p in peers):
            return [{**entry, "allow": sorted({str(ipaddress.ip_network(p)) for p in peers}, key=ipaddress.ip_network)}]
    except ValueError:
        pass
    return [
        {**entry, "reach": ANYONE, "why": why.replace(": only", ": IPv6 or unknown peers, open to anyone; meant for")}
    ]


def _docker_rules(entry: Mapping[str, Any]) -> list[str]:
    match = f"-p tcp -m conntrack --ctdir ORIGINAL --ctorigdstport {entry['port']}"
    rules = [f"-A {DOCKER_CHAIN} {match} -s {src} -j RETURN" for src in entry["allow"]]
    return [*rules, f"-A {DOCKER_CHAIN} {match} -j DROP"]


def _input_rules(entry: Mapping[str, Any]) -> list[str]:
    match = f"-p tcp --dport {entry['port']}"
    rules = [f"-A {INPUT_CHAIN} {match} -s {src} -j RETURN" for src in entry["allow"]]
    return [*rules, f"-A {INPUT_CHAIN} {match} -j DROP"]


def firewall_rules(exposure: Sequence[Mapping[str, Any]], host: str) -> dict[str, str]:
    """iptables-restore input (``--noflush``: only sparkfleet's two chains are declared, so only they are flushed)
    for IPv4 and IPv6, from the restricted entries. Both flush sparkfleet's chains even when nothing is restricted."""
    restricted = [e for e in exposure if e["reach"] == RESTRICTED]
    head = [f"# sparkfleet: who may reach the services of {host} (roles/llm_serving, serving/exposure.py)",
            FIREWALL_MARKER, "*filter", f":{DOCKER_CHAIN} - [0:0]", f":{INPUT_CHAIN} - [0:0]",
            f"-A {INPUT_CHAIN} -i lo -j RETURN"]  # fmt: skip
    v4 = list(head)
    v6 = list(head)
    for entry in restricted:
        if entry["path"] == "docker":
            v4 += _docker_rules(entry)
            v6.append(f"-A {INPUT_CHAIN} -p tcp --dport {entry['port']} -j DROP")
        else:
            v4 += _input_rules(entry)
            v6.append(f"-A {INPUT_CHAIN} -p tcp --dport {entry['port']} -j DROP")
    return {"v4": "\n".join([*v4, "COMMIT", ""]), "v6": "\n".join([*v6, "COMMIT", ""]), "marker": FIREWALL_MARKER}
