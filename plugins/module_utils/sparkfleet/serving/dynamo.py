"""What Dynamo components add to a rendered service: the discovery and request planes, the addresses they
advertise, the shared directory of file discovery, etcd's arguments (docs/dynamo.md).

Dynamo 1.6 runs without NATS: requests travel over TCP (``DYN_REQUEST_PLANE=tcp``), KV events over ZMQ, and
components find each other through ``DYN_DISCOVERY_BACKEND``: ``file`` (a directory every component of the
deployment mounts: one host) or ``etcd`` (``ETCD_ENDPOINTS``: a deployment across hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..service.model import ALL_INTERFACES, Engine

# The variables a component advertises its address with (what the others connect to).
ADVERTISE_ENV = ("DYN_TCP_RPC_HOST", "DYN_TCP_RESPONSE_STREAM_HOST", "DYN_EVENT_PLANE_HOST")
# Binds the worker's system server (health, the model metadata the frontend reads) to one address.
SYSTEM_HOST_ENV = "DYN_SYSTEM_HOST"


class DynamoSettings(Protocol):
    advertise_address: str
    bind_address: str
    dynamo_dir: str


def file_kv_dir(svc: Mapping[str, Any], settings: DynamoSettings) -> str:
    return f"{settings.dynamo_dir}/{svc['dynamo_deployment']}"


def dynamo_env(svc: Mapping[str, Any], engine: Engine, settings: DynamoSettings) -> dict[str, str]:
    """The environment of a frontend or worker (etcd gets none)."""
    env = dict(engine.env)
    if engine.dynamo_role not in ("frontend", "worker"):
        return env
    env["DYN_NAMESPACE"] = str(svc["dynamo_deployment"])
    env["DYN_REQUEST_PLANE"] = "tcp"
    if svc["dynamo_discovery"] == "file":
        env["DYN_DISCOVERY_BACKEND"] = "file"
        env["DYN_FILE_KV"] = file_kv_dir(svc, settings)
    else:
        env["DYN_DISCOVERY_BACKEND"] = "etcd"
        env["ETCD_ENDPOINTS"] = str(svc["dynamo_discovery"])
    if settings.advertise_address:
        for name in ADVERTISE_ENV:
            env[name] = settings.advertise_address
    if engine.dynamo_role == "worker" and settings.bind_address:
        env[SYSTEM_HOST_ENV] = settings.bind_address
    return env


def dynamo_volumes(svc: Mapping[str, Any], engine: Engine, settings: DynamoSettings) -> list[str]:
    """File discovery: the deployment's directory, at the same path inside every component's container."""
    if engine.dynamo_role in ("frontend", "worker") and svc["dynamo_discovery"] == "file":
        path = file_kv_dir(svc, settings)
        return ["--volume", f"{path}:{path}"]
    return []


def etcd_args(svc: Mapping[str, Any], settings: DynamoSettings) -> list[str]:
    """One etcd member for one deployment: clients on the service's port, the peer port (port + 1) on loopback.

    Its data lives in the container (``--rm``): discovery state is leases that live components renew, so a
    restarted etcd is refilled as the components reconnect (a worker that cannot reconnect exits and systemd
    restarts it)."""
    port = int(svc["container_port"])
    listen = settings.bind_address or ALL_INTERFACES
    advertise = settings.advertise_address or settings.bind_address or "127.0.0.1"
    peer = f"http://127.0.0.1:{port + 1}"
    name = str(svc["name"])
    return [
        "--name",
        name,
        "--data-dir",
        f"/var/lib/etcd/{name}",
        "--listen-client-urls",
        f"http://{listen}:{port}",
        "--advertise-client-urls",
        f"http://{advertise}:{port}",
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"{name}={peer}",
    ]


ARG_BUILDERS = {"etcd": etcd_args}
