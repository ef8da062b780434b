"""What a piece of a service across hosts adds to its rendered unit (docs/multi-host.md): the host's network, the
entry point of a Ray node or an RPC server, the RDMA devices for NCCL, the engine's multi-node flags and the
fabric environment of that host. All of it comes from the planned piece (``service/multihost.py``) and the
engine's ``MultiHost`` form (``service/model.py``): the engines differ only in data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..service.model import ENGINES, MultiHost
from ..service.multihost import NCCL_DOCKER_ARGS, WORKER, format_args


def piece_form(svc: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, MultiHost | None]:
    """The service's planned piece and its engine's form; (None, None) for a service on one host."""
    piece = svc.get("multihost")
    if not isinstance(piece, Mapping):
        return None, None
    return piece, ENGINES[str(svc["engine"])].multihost_form(str(piece["backend"]))


def command(piece: Mapping[str, Any], form: MultiHost) -> list[str] | None:
    """The container's command when the form replaces the engine's on this host (a Ray node, an RPC server);
    None: the engine's own server."""
    templates = form.worker_command if piece["role"] == WORKER else form.head_command
    return format_args(templates, piece) if templates else None


def server_args(piece: Mapping[str, Any], form: MultiHost) -> list[str]:
    """The multi-node flags of the engine's server on this host."""
    role = form.worker_args if piece["role"] == WORKER else form.head_args
    return format_args((*form.args, *role), piece)


def docker_options(piece: Mapping[str, Any], form: MultiHost, gpu: bool, given: Sequence[str]) -> list[str]:
    """``docker run`` options of the piece: its entry point, and for NCCL over RDMA (a GPU piece on a host whose
    fabric lists RDMA devices) /dev/infiniband and unlimited locked memory, unless ``given`` has them already."""
    entrypoint = form.worker_entrypoint if piece["role"] == WORKER else form.head_entrypoint
    out = ["--entrypoint", entrypoint] if entrypoint else []
    if form.nccl and gpu and piece.get("hca"):
        have = {(given[i], given[i + 1]) for i in range(len(given) - 1)}
        pairs = list(zip(NCCL_DOCKER_ARGS[::2], NCCL_DOCKER_ARGS[1::2], strict=True))
        out += [a for pair in pairs if pair not in have for a in pair]
    return out


def describe(piece: Mapping[str, Any]) -> str:
    """' (head, rank 0 of 2: spark-03, spark-04)' for the unit's description."""
    return f" ({piece['role']}, rank {piece['rank']} of {piece['nnodes']}: {', '.join(piece['hosts'])})"


__all__ = ["command", "describe", "docker_options", "piece_form", "server_args"]
