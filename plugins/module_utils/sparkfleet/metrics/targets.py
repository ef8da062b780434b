"""Prometheus scrape targets from the plan: never a second list of hosts.

Each host's plan (``ansible_facts.sparkfleet_plan``, made by preflight in this run) lists its services; every one
with status ``deploy`` is scraped on its port at its engine's metrics path (``ENGINES[...].metrics_path``), at the
address the controller reaches the host by (``ansible_host``, as the gateway's worker manifest does). Node
exporter is scraped on every host of the inventory, the gateway's Prometheus listener on each gateway host.
The result is Prometheus's file_sd format: one JSON list per job, which Prometheus rereads without a restart; the
engine's metrics path rides in the label ``metrics_path``, which the job's relabelling makes the scrape path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..service.model import ENGINES
from .rules import GATEWAY_JOB, NODE_JOB, SERVICE_JOB

LOOPBACK = "127.0.0.1"
# The label carrying a service's metrics path; prometheus.yml moves it into the scrape path and drops it.
PATH_LABEL = "metrics_path"


def _plan(info: Mapping[str, Any]) -> Mapping[str, Any]:
    plan = info.get("plan")
    return plan if isinstance(plan, Mapping) else {}


def _hostport(address: str, port: int) -> str:
    address = address.strip().strip("[]")
    return f"[{address}]:{int(port)}" if ":" in address else f"{address}:{int(port)}"


def service_targets(hosts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """{host: {address, plan}} -> one file_sd entry per deployed service."""
    out: list[dict[str, Any]] = []
    for host, info in sorted(hosts.items()):
        plan = _plan(info)
        for svc in plan.get("services") or []:
            if not isinstance(svc, Mapping) or svc.get("status") != "deploy":
                continue
            engine = ENGINES.get(str(svc.get("engine")))
            if engine is None or not engine.metrics_path:
                continue
            out.append(
                {
                    "targets": [_hostport(str(info.get("address") or host), int(svc["port"]))],
                    "labels": {
                        "host": host,
                        "service": str(svc["name"]),
                        "engine": engine.name,
                        "model": str(svc.get("model") or ""),
                        "profile": str(plan.get("profile") or ""),
                        # Prometheus's relabelling (roles/metrics' prometheus.yml) makes it the scrape path.
                        PATH_LABEL: engine.metrics_path,
                    },
                }
            )
    return out


def node_targets(hosts: Mapping[str, Mapping[str, Any]], port: int) -> list[dict[str, Any]]:
    """Node exporter on every host (its textfile directory carries the GPU collector's series)."""
    out = []
    for host, info in sorted(hosts.items()):
        plan = _plan(info)
        labels = {"host": host}
        if plan.get("profile"):
            labels["profile"] = str(plan["profile"])
        out.append({"targets": [_hostport(str(info.get("address") or host), port)], "labels": labels})
    return out


def gateway_targets(
    gateways: Sequence[Mapping[str, Any]], prometheus_host: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """smg's Prometheus listener on each gateway host: {host, address, port, bind_address}.

    A listener bound to loopback can only be scraped from its own host: elsewhere that is an error naming the
    variable to change.
    """
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    for gw in sorted(gateways, key=lambda g: str(g["host"])):
        host = str(gw["host"])
        bind = str(gw.get("bind_address") or "")
        if host == prometheus_host:
            address = LOOPBACK if bind in ("", LOOPBACK, "0.0.0.0", "::") else bind  # noqa: S104 - compared only
        elif bind.startswith("127.") or bind in ("::1", "localhost"):
            errors.append(
                f"the gateway on {host} serves its metrics on {bind} only, which Prometheus on {prometheus_host} "
                f"cannot reach: set llm_gateway_prometheus_bind_address for {host} to its address (and let only "
                f"{prometheus_host} reach llm_gateway_prometheus_port), or run Prometheus on {host}"
            )
            continue
        else:
            address = str(gw.get("address") or host) if bind in ("", "0.0.0.0", "::") else bind  # noqa: S104
        out.append({"targets": [_hostport(address, int(gw["port"]))], "labels": {"host": host, "service": "gateway"}})
    return out, errors


def scrape_targets(
    hosts: Mapping[str, Mapping[str, Any]],
    *,
    node_exporter_port: int,
    gateways: Sequence[Mapping[str, Any]],
    prometheus_host: str,
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every job's file_sd list, and the problems (empty when Prometheus can scrape them all)."""
    gateway, errors = gateway_targets(gateways, prometheus_host)
    return (
        {
            SERVICE_JOB: service_targets(hosts),
            NODE_JOB: node_targets(hosts, node_exporter_port),
            GATEWAY_JOB: gateway,
        },
        errors,
    )
