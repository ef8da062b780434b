"""Render the plan: a planned service (``service/plan.py``) -> its ``docker run`` argv and systemd unit inputs.

Nothing here validates a service: the one parser did, before any host changed. What needs the host itself
(a port another process already listens on) is checked here, from probes the role reads first.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import ENGINE_LABEL, SERVICE_LABEL, UNIT_PREFIX, owned_marker, unit_service_name
from ..netenv import base_url_for
from ..paths import (
    DOCKER_BIN,
    DYNAMO_DIR,
    ENV_DIR,
    HF_HOME,
    HF_HOME_IN_CONTAINER,
    NIM_CACHE_DIR,
    NIM_CACHE_IN_CONTAINER,
    UNIT_DIR,
)
from ..service.model import ALL_INTERFACES, ENGINES, SERVICES_VAR
from ..service.plan import ABSENT, DEPLOY, SKIPPED
from .dynamo import ARG_BUILDERS, dynamo_env, dynamo_volumes
from .errors import ServingError
from .exposure import firewall_rules, normalize_sources, piece_exposure, service_exposure
from .multihost import command as multihost_command
from .multihost import describe as multihost_describe
from .multihost import docker_options as multihost_docker_options
from .multihost import piece_form
from .multihost import server_args as multihost_server_args
from .probes import own_service_names, parse_listening_ports, parse_own_containers


@dataclass
class Settings:
    """Role-wide settings (role defaults) that shape every unit."""

    hf_cache_dir: str = HF_HOME
    hf_hub_offline: int = 0
    nim_cache_dir: str = NIM_CACHE_DIR
    nim_uid: int = 1000
    env_dir: str = ENV_DIR
    unit_dir: str = UNIT_DIR
    docker_bin: str = DOCKER_BIN
    bind_address: str = ""
    # The host's address that Dynamo components advertise to each other (docs/dynamo.md); "": Dynamo's own guess.
    advertise_address: str = ""
    dynamo_dir: str = DYNAMO_DIR
    restart_sec: int = 15
    restart_max_delay_s: int = 300
    restart_steps: int = 5
    start_limit_interval_s: int = 1800
    start_limit_burst: int = 10
    stop_timeout_s: int = 60
    health_timeout_s: int = 2700
    systemd_version: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Settings:
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ServingError(f"unknown settings {unknown}: known settings are {sorted(known)}")
        defaults = cls()
        out: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(defaults, key)
            try:
                out[key] = int(value) if isinstance(default, int) else str(value)
            except (TypeError, ValueError):
                raise ServingError(f"setting {key} must be an integer, not {value!r}") from None
        return cls(**out)


def systemd_quote(arg: str) -> str:
    """Quote one argument for an Exec*= line (systemd.syntax: quoting, then % specifiers and $ expansion)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        return arg
    if "'" not in arg and "\\" not in arg:
        return f"'{arg}'"
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_join(argv: Sequence[str]) -> str:
    return " ".join(systemd_quote(a) for a in argv)


def _flag_groups(args: Sequence[str]) -> list[list[str]]:
    """Split ["--a", "1", "--b", "--c", "x"] into [["--a","1"], ["--b"], ["--c","x"]]."""
    groups: list[list[str]] = []
    for a in args:
        if a.startswith("-") or not groups:
            groups.append([a])
        else:
            groups[-1].append(a)
    return groups


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def merge_args(defaults: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """Default flags the user did not set in `overrides`, then the overrides (the user's value wins)."""
    given = {_flag_name(a) for a in overrides if a.startswith("-")}
    kept = [g for g in _flag_groups(defaults) if _flag_name(g[0]) not in given]
    return [a for g in kept for a in g] + list(overrides)


def _fmt_fraction(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def names_of(name: str, settings: Settings) -> dict[str, str]:
    """What sparkfleet owns on a host for one service: unit, container, env file."""
    unit_name = f"{UNIT_PREFIX}{name}.service"
    return {
        "name": name,
        "unit_name": unit_name,
        "unit_path": f"{settings.unit_dir}/{unit_name}",
        "container_name": f"{UNIT_PREFIX}{name}",
        "env_file": f"{settings.env_dir}/{name}.env",
    }


@dataclass
class Rendered:
    """Everything the role needs for one present service."""

    name: str
    engine: str
    image: str
    image_archive: str
    model: str
    port: int
    container_port: int
    gpu: str
    unit_name: str
    container_name: str
    unit_path: str
    env_file: str
    docker_argv: list[str]
    env: dict[str, str]
    secret_env: list[str]
    directories: list[dict[str, Any]]
    health_paths: list[str]
    health_timeout_s: int
    stop_timeout_s: int
    # Where a client on the host reaches the service (the health gate, the benchmark): the bind address, or
    # loopback when it binds every address.
    probe_url: str = ""
    # The env name that carries the key from the variable api_key_var (both names only, never the key).
    api_key_env: str = ""
    api_key_var: str = ""
    unit: dict[str, Any] = field(default_factory=dict)
    # Runs on the host's network (a Dynamo component, a piece of a service across hosts).
    host_network: bool = False
    # The piece of a service across hosts (service/multihost.py): rank, role, hosts, head...; {} on one host.
    multihost: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["docker_run"] = shlex.join(self.docker_argv)
        return d


def _gpu_flags(device: int | str | None) -> list[str]:
    if device is None:
        return []
    if device == "all":
        return ["--gpus", "all"]
    return ["--gpus", f'"device={int(device)}"']


def _engine_args(svc: Mapping[str, Any], profile: Mapping[str, Any], settings: Settings | None = None) -> list[str]:
    """The container's command and the engine's flags (data in service/model.py's ENGINES)."""
    engine = ENGINES[svc["engine"]]
    flags = engine.flags
    command = list(svc["command"]) or list(engine.launcher)
    extra = list(svc["extra_args"])
    piece, form = piece_form(svc)  # a piece of a service across hosts (serving/multihost.py)
    replaced = multihost_command(piece, form) if piece is not None and form is not None else None
    if replaced is not None and piece is not None and piece["role"] == "worker":
        return replaced  # a Ray node or an RPC server: no engine server on this host
    command = replaced if replaced is not None else command
    if engine.arg_builder:  # arguments no flag table describes (etcd)
        return command + merge_args(ARG_BUILDERS[engine.arg_builder](svc, settings or Settings()), extra)
    if flags.model is None and flags.port is None:  # nim (configured by env) and openai (the image's own arguments)
        return command + extra
    # A host-network server listens on the host itself: the bind address, if one is set, is where.
    listen = (settings.bind_address if settings and (engine.host_network or piece) else "") or ALL_INTERFACES
    defaults = [flags.host, listen] if flags.host else []
    defaults += [flags.port, str(svc["container_port"])] if flags.port else []
    if flags.mem_fraction and svc["mem_fraction"] is not None:
        defaults += [flags.mem_fraction, _fmt_fraction(float(svc["mem_fraction"]))]
    if flags.context_length and svc["context_length"]:
        defaults += [flags.context_length, str(svc["context_length"])]
    if engine.profile_args:
        defaults += [str(a) for a in profile.get(engine.profile_args) or []]
    defaults += list(engine.default_args)
    # Metrics on (roles/metrics scrapes them); a profile that lists the flag too does not repeat it.
    defaults += [a for a in engine.metrics_args if a not in defaults]
    if piece is not None and form is not None:
        defaults += multihost_server_args(piece, form)
    model = [flags.model, svc["model"]] if flags.model else []
    return [*command, *model, *merge_args(defaults, extra)]


def render_service(
    svc: Mapping[str, Any], *, profile: Mapping[str, Any], settings: Settings, hf_token_present: bool = False
) -> Rendered:
    """One planned service (status deploy) -> its docker run argv and unit inputs."""
    engine = ENGINES[svc["engine"]]
    name = svc["name"]
    own = names_of(name, settings)
    port, cport = int(svc["port"]), int(svc["container_port"])
    publish = f"{settings.bind_address}:{port}:{cport}" if settings.bind_address else f"{port}:{cport}"
    gpu_flags = _gpu_flags(svc.get("gpu_device"))
    argv = [settings.docker_bin, "run", "--rm", "--name", own["container_name"], "--pull", "never"]
    argv += ["--label", f"{SERVICE_LABEL}={name}", "--label", f"{ENGINE_LABEL}={engine.name}"]
    # Dynamo components advertise the host's address and open ports at run time: they share the host's network, and
    # so does a piece of a service across hosts (NCCL, Ray and the RPC backend open ports at run time too).
    piece, form = piece_form(svc)
    host_network = engine.host_network or piece is not None
    argv += ["--network", "host"] if host_network else ["--publish", publish]
    argv += ["--env-file", own["env_file"]]
    shm_size = svc.get("shm_size")
    if gpu_flags:
        argv += gpu_flags
        argv += [str(a) for a in profile.get("docker_args") or []]
        shm_size = shm_size or profile.get("shm_size")
    if shm_size:
        argv += ["--shm-size", str(shm_size)]
    if piece is not None and form is not None:
        given = [str(a) for a in profile.get("docker_args") or []]
        argv += multihost_docker_options(piece, form, bool(gpu_flags), given)
    directories: list[dict[str, Any]] = []
    env = dict(svc["env"])
    if piece is not None:
        env = {**piece["env"], **env}  # the service's env wins
    if engine.cache == "hf":
        argv += ["--volume", f"{settings.hf_cache_dir}:{HF_HOME_IN_CONTAINER}"]
        directories.append({"path": settings.hf_cache_dir, "owner": "root", "group": "root", "mode": "0755"})
        # The cache the hf_cache role fills, as the container sees it; offline once it is warm.
        env.setdefault("HF_HOME", HF_HOME_IN_CONTAINER)
        env.setdefault("HF_HUB_CACHE", f"{HF_HOME_IN_CONTAINER}/hub")
        if settings.hf_hub_offline:
            env.setdefault("HF_HUB_OFFLINE", "1")
    elif engine.cache == "nim":
        argv += ["--volume", f"{settings.nim_cache_dir}:{NIM_CACHE_IN_CONTAINER}"]
        uid = str(settings.nim_uid)
        directories.append({"path": settings.nim_cache_dir, "owner": uid, "group": uid, "mode": "0755"})
    if engine.dynamo_role:
        env = {**dynamo_env(svc, engine, settings), **env}
        volumes = dynamo_volumes(svc, engine, settings)
        argv += volumes
        directories += [{"path": v.split(":", 1)[0], "owner": "root", "group": "root", "mode": "0755"}
                        for v in volumes[1::2]]  # fmt: skip
    if engine.port_env:
        env[engine.port_env] = str(cport)
    argv += list(svc["docker_args"])
    argv.append(svc["image"])
    argv += _engine_args(svc, profile, settings)

    secret_env = [s for s in engine.secret_env if s not in env and (s != "HF_TOKEN" or hf_token_present)]
    health_timeout_s = int(svc.get("health_timeout_s") or settings.health_timeout_s)
    stop_timeout_s = int(svc.get("stop_timeout_s") or settings.stop_timeout_s)
    container = own["container_name"]
    probe_url = base_url_for(settings.bind_address, port)
    unit = {
        # What makes the unit and the env file sparkfleet's (contracts.OWNED_MARKER); the unit's also says where the
        # version it runs answers, so a later rollback probes and restores it at its own address.
        "marker": owned_marker(name, image=svc["image"], probe_url=probe_url, health_paths=list(svc["health_paths"])),
        "env_marker": owned_marker(name),
        "description": f"sparkfleet {engine.name} service {name} ({svc['model'] or svc['image']}) on port {port}"
        + (multihost_describe(piece) if piece is not None else ""),
        "exec_start_pre": f"-{settings.docker_bin} rm -f {container}",
        "exec_start": systemd_join(argv),
        "exec_stop": f"{settings.docker_bin} stop -t {stop_timeout_s} {container}",
        "timeout_stop_s": stop_timeout_s + 30,
        "restart_sec": settings.restart_sec,
        # Exponential back-off needs systemd 254 (RestartSteps); older systemd restarts at a fixed RestartSec.
        "restart_steps": settings.restart_steps if settings.systemd_version >= 254 else 0,
        "restart_max_delay_s": settings.restart_max_delay_s if settings.systemd_version >= 254 else 0,
        # The head of a service across hosts exits while a worker is away (llama.cpp's RPC client aborts, NCCL
        # times out) and must come back whenever the worker does, however long it was gone: no start limit (0), it
        # keeps retrying at RestartSec (with back-off on systemd 254+). A release that never starts is still caught
        # by the health gate (fail_after_exits) and rolled back.
        "start_limit_interval_s": 0
        if piece is not None and piece.get("role") == "head"
        else settings.start_limit_interval_s,
        "start_limit_burst": settings.start_limit_burst,
    }
    return Rendered(
        name=name,
        engine=engine.name,
        image=svc["image"],
        image_archive=svc["image_archive"] or "",
        model=svc["model"],
        port=port,
        container_port=cport,
        gpu="none" if not gpu_flags else gpu_flags[1].strip('"'),
        unit_name=own["unit_name"],
        container_name=container,
        unit_path=own["unit_path"],
        env_file=own["env_file"],
        docker_argv=argv,
        env=env,
        secret_env=secret_env,
        directories=directories,
        health_paths=list(svc["health_paths"]),
        health_timeout_s=health_timeout_s,
        stop_timeout_s=stop_timeout_s,
        probe_url=probe_url,
        api_key_env=svc.get("api_key_env") or "",
        api_key_var=svc.get("api_key_var") or "",
        unit=unit,
        host_network=host_network,
        multihost=dict(piece) if piece is not None else {},
    )


def _plan_refusal(plan: Mapping[str, Any] | None, profiles: Mapping[str, Any]) -> str:
    """Why a plan cannot be rendered at all ("" when it can)."""
    if not isinstance(plan, Mapping) or not isinstance(plan.get("services"), list):
        return (
            "no serving plan for this host (ansible_facts.sparkfleet_plan.services): the preflight role makes "
            "it; run playbooks/preflight.yml or site.yml, which run it first"
        )
    if plan.get("errors"):
        return "the preflight plan of this host has problems: nothing is rendered (see the preflight stage)"
    profile_name = str(plan.get("profile") or "none")
    if profile_name not in profiles:
        return f"profile {profile_name!r} of the plan is not in sparkfleet_profiles: add it to profiles.yml"
    return ""


def render_plan(
    plan: Mapping[str, Any] | None,
    *,
    profiles: Mapping[str, Any],
    settings: Settings | None = None,
    listening: str = "",
    own_containers: str = "",
    hf_token_present: bool = False,
    units: Sequence[str] = (),
    worker_sources: Sequence[str] | None = None,
    etcd_sources: Sequence[str] | None = None,
    host: str = "",
) -> dict[str, Any]:
    """Render every service of a host's plan.

    ``worker_sources`` / ``etcd_sources``: who may reach a worker (behind a keyed gateway) / an etcd, IPv4 addresses
    or CIDRs; None: anyone (serving/exposure.py). The result's ``exposure`` says it per port, ``firewall`` holds
    the rules that enforce it.

    Returns {present, absent, skipped: [{name, reason}], images, orphans, errors: [str]}; errors are what only the
    host can tell (a port already taken by another process), each naming the variable. ``units`` are the paths of
    sparkfleet's service units found on the host; those the plan does not name are ``orphans``.
    """
    settings = settings or Settings()
    refusal = _plan_refusal(plan, profiles)
    if refusal:
        return {"present": [], "absent": [], "skipped": [], "images": [], "orphans": [], "exposure": [],
                "firewall": firewall_rules([], host), "errors": [refusal]}  # fmt: skip
    if plan is None:  # _plan_refusal checked it
        raise AssertionError("render_plan: no plan after _plan_refusal")
    profile_name = str(plan.get("profile") or "none")
    profile = profiles[profile_name]
    services: list[Mapping[str, Any]] = plan["services"]
    errors: list[str] = []
    present: list[dict[str, Any]] = []
    listening_ports = parse_listening_ports(listening)
    owned = parse_own_containers(own_containers)
    # Services being removed in this run free their ports before the present ones start.
    removed = {s["name"] for s in services if s["status"] == ABSENT}
    for svc in services:
        if svc["status"] != DEPLOY:
            continue
        r = render_service(svc, profile=profile, settings=settings, hf_token_present=hf_token_present)
        host_network_own = r.host_network and r.name in own_service_names(own_containers)
        if r.port in listening_ports and owned.get(r.port) not in (r.name, *removed) and not host_network_own:
            holder = f"the container of sparkfleet service {owned[r.port]}" if r.port in owned else "another process"
            errors.append(
                f"{svc.get('where') or SERVICES_VAR}.port {r.port} is already listening on this host ({holder}; see "
                "`ss -ltnp`): choose a free port or stop what holds it"
            )
            continue
        present.append(r.as_dict())
    sources: dict[str, list[str] | None] = {}
    for variable, given in (("llm_serving_worker_sources", worker_sources), ("llm_serving_etcd_sources", etcd_sources)):
        if given is None:
            sources[variable] = None
            continue
        sources[variable], bad = normalize_sources(given, variable)
        errors += bad
    exposure = [
        entry
        for p in present
        for entry in (
            service_exposure(p, bind_address=settings.bind_address,
                             worker_sources=sources["llm_serving_worker_sources"],
                             etcd_sources=sources["llm_serving_etcd_sources"]),
            *piece_exposure(p),  # a piece of a service across hosts: its rendezvous port
        )
    ]  # fmt: skip
    images: dict[tuple[str, str], dict[str, Any]] = {}
    for p in present:
        key = (p["image"], p["image_archive"])
        images.setdefault(key, {"image": p["image"], "image_archive": p["image_archive"], "services": []})
        images[key]["services"].append(p["name"])
    return {
        "present": present,
        "absent": [names_of(s["name"], settings) for s in services if s["status"] == ABSENT],
        "skipped": [{"name": s["name"], "reason": s["reason"]} for s in services if s["status"] == SKIPPED],
        "images": list(images.values()),
        "orphans": [names_of(n, settings) for n in orphan_names(units, {s["name"] for s in services})],
        "exposure": exposure,
        "firewall": firewall_rules(exposure, host),
        "errors": errors,
    }


def orphan_names(units: Sequence[str], planned: set[str]) -> list[str]:
    """Service names of sparkfleet units on the host (``.../sparkfleet-<name>.service``) the plan does not name."""
    return sorted({name for name in map(unit_service_name, units) if name and name not in planned})
