"""Inference services as systemd units: validation, docker run argv, unit inputs, health probes.

Pure functions (stdlib only) used by the modules `llm_service_spec`, `llm_service_archive` and
`llm_service_health`, and tested directly by tests/unit/test_serving*.py.

A service (see docs/development.md) + the host's platform profile (group_vars/all/profiles.yml) + the GPU
facts (`ansible_facts.nvidia_gpu`) -> the `docker run` argv of its unit, the unit's settings, the directories
and secret names its env file needs, and the health endpoints that gate it.
"""

from __future__ import annotations

import json
import re
import shlex
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .service_schema import ENGINES, STATES
from .service_schema import SERVICE_KEYS as _SCHEMA_KEYS

UNIT_PREFIX = "sparkfleet-"
LABEL = "org.sparkfleet.service"

# Per engine: default host port, port inside the container, health endpoints in gate order.
ENGINE_PORTS = {"sglang": 30000, "nim": 8000, "vllm": 8000, "openai": 8000}
NIM_CONTAINER_PORT = 8000
HEALTH_PATHS = {
    # /health and /health_generate answer 503 while starting on current SGLang builds, 200 at once on old ones:
    # /health_generate runs a real one-token generation, /v1/models proves the OpenAI API is mounted.
    "sglang": ["/health_generate", "/v1/models"],
    "nim": ["/v1/health/ready"],
    "vllm": ["/health", "/v1/models"],
    "openai": ["/v1/models"],
}
HF_CACHE_IN_CONTAINER = "/root/.cache/huggingface"
NIM_CACHE_IN_CONTAINER = "/opt/nim/.cache"
# Inside the container the server listens everywhere; the host side is --publish (llm_serving_bind_address).
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside the container only
SGLANG_LAUNCHER = ["python3", "-m", "sglang.launch_server"]

# Keys of a service: one list for every stage (service_schema.py).
SERVICE_KEYS = set(_SCHEMA_KEYS)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHM_RE = re.compile(r"^[0-9]+(\.[0-9]+)?([bkmg]|kb|mb|gb)?$", re.IGNORECASE)
# Docker's reference grammar (distribution/reference), simplified to what a tag or digest may hold.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_SECRET_ENV = {"nim": ["NGC_API_KEY"], "sglang": ["HF_TOKEN"], "vllm": ["HF_TOKEN"], "openai": []}


class ServingError(ValueError):
    """Bad input; the message names the variable and the fix."""


@dataclass
class Settings:
    """Role-wide settings (role defaults) that shape every unit."""

    hf_cache_dir: str = "/var/lib/sparkfleet/huggingface"
    nim_cache_dir: str = "/opt/nim/.cache"
    nim_uid: int = 1000
    env_dir: str = "/etc/sparkfleet/serving"
    unit_dir: str = "/etc/systemd/system"
    docker_bin: str = "/usr/bin/docker"
    bind_address: str = ""
    restart_sec: int = 15
    restart_max_delay_s: int = 300
    restart_steps: int = 5
    start_limit_interval_s: int = 1800
    start_limit_burst: int = 10
    stop_timeout_s: int = 60
    health_timeout_s: int = 2700
    systemd_version: int = 0
    var: str = "llm_serving_services"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Settings:
        data = dict(data or {})
        known = {f for f in cls.__dataclass_fields__}
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


@dataclass
class ImageRef:
    domain: str | None
    path: str
    tag: str | None
    digest: str | None


def parse_image(ref: str) -> ImageRef:
    """Parse a docker image reference (registry/path:tag or @sha256:<64 hex>); ServingError when malformed."""
    if not isinstance(ref, str) or not ref or len(ref) > 255:
        raise ServingError(f"{ref!r} is not an image reference")
    m = _IMAGE_RE.match(ref)
    if not m:
        raise ServingError(
            f"{ref!r} is not an image reference: expected [registry[:port]/]path[:tag][@sha256:<64 hex>] "
            "in lower case, e.g. lmsysorg/sglang:latest-cu130"
        )
    domain = m.group("domain")
    # Docker reads a first component without '.' or ':' as part of the (lower-case) path, not a registry.
    registry = domain and ("." in domain or ":" in domain or domain == "localhost")
    if domain and not registry and not re.fullmatch(_COMPONENT, domain):
        raise ServingError(f"{ref!r} is not an image reference: repository names must be lower case")
    return ImageRef(domain, m.group("path"), m.group("tag"), m.group("digest"))


# --------------------------------------------------------------------------------------------- probes


def parse_listening_ports(ss_output: str) -> set[int]:
    """TCP ports in LISTEN state from `ss -ltnH` (local address column: 0.0.0.0:22, [::]:22, *:22, ...)."""
    ports: set[int] = set()
    for line in ss_output.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        local = cols[3]
        _, sep, port = local.rpartition(":")
        if sep and port.isdigit():
            ports.add(int(port))
    return ports


def parse_own_containers(docker_ps_output: str) -> dict[int, str]:
    """Host ports published by our containers, from
    `docker ps --filter label=org.sparkfleet.service --format '{{.Label "org.sparkfleet.service"}}\\t{{.Ports}}'`.

    Ports look like `0.0.0.0:8080->8080/tcp, :::8080->8080/tcp`. Returns {host port: service name}.
    """
    owned: dict[int, str] = {}
    for line in docker_ps_output.splitlines():
        name, _, ports = line.partition("\t")
        for part in ports.split(","):
            host, arrow, _ = part.strip().partition("->")
            if not arrow:
                continue
            _, sep, port = host.rpartition(":")
            if sep and port.isdigit():
                owned[int(port)] = name.strip()
    return owned


def skipped_by_plan(plan: Mapping[str, Any] | None) -> dict[str, str]:
    """{service name: reason} from `ansible_facts.sparkfleet_plan.skipped` (absent plan: nothing skipped)."""
    out: dict[str, str] = {}
    for item in (plan or {}).get("skipped") or []:
        if isinstance(item, Mapping) and item.get("name"):
            out[str(item["name"])] = str(item.get("reason") or "skipped by the preflight plan")
    return out


# --------------------------------------------------------------------------------------------- rendering


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
    unit: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["docker_run"] = shlex.join(self.docker_argv)
        return d


def _resolve_gpu(gpu: Any, gpu_facts: Mapping[str, Any] | None, where: str) -> list[str]:
    """The --gpus flag for a service's `gpu` setting; [] for CPU services."""
    value = "auto" if gpu is None else str(gpu).strip()
    if value.lower() == "none":
        return []
    if value.lower() == "all":
        return ["--gpus", "all"]
    facts = gpu_facts or {}
    gpus = [g for g in facts.get("gpus") or [] if isinstance(g, Mapping)]
    if value.lower() == "auto":
        serving = facts.get("serving_gpu")
        if not isinstance(serving, Mapping) or serving.get("index") is None:
            raise ServingError(
                f"{where}.gpu is 'auto' but GPU detection chose no serving GPU on this host "
                "(ansible_facts.nvidia_gpu.serving_gpu is missing): run playbooks/preflight.yml first, "
                "or set gpu to an index, a name such as GB300, or none for a CPU service"
            )
        return ["--gpus", f'"device={int(serving["index"])}"']
    if value.isdigit():
        if gpus and int(value) not in {int(g.get("index", -1)) for g in gpus}:
            found = ", ".join(f"{g.get('index')}: {g.get('name')}" for g in gpus)
            raise ServingError(f"{where}.gpu is {value} but this host has GPUs [{found}]: use one of those indexes")
        return ["--gpus", f'"device={int(value)}"']
    matches = [g for g in gpus if value.lower() in str(g.get("name", "")).lower()]
    if not matches:
        found = ", ".join(f"{g.get('index')}: {g.get('name')}" for g in gpus) or "none detected"
        raise ServingError(
            f"{where}.gpu is {value!r} but no GPU on this host has that in its name (GPUs: {found}): "
            "use a part of one of those names, an index, auto or none"
        )
    return ["--gpus", f'"device={int(matches[0]["index"])}"']


def _as_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ServingError(f"{where} must be a list of strings, e.g. ['--flag', 'value'], not {value!r}")
    return [str(v) for v in value]


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ServingError(f"{where} must be an integer from {lo} to {hi}, not {value!r}")
    try:
        n = int(str(value))
    except ValueError:
        raise ServingError(f"{where} must be an integer from {lo} to {hi}, not {value!r}") from None
    if not lo <= n <= hi:
        raise ServingError(f"{where} is {n}: use an integer from {lo} to {hi}")
    return n


def render_service(
    svc: Mapping[str, Any],
    *,
    profile_name: str,
    profiles: Mapping[str, Any],
    gpu_facts: Mapping[str, Any] | None,
    settings: Settings,
    ngc_api_key_present: bool = False,
    hf_token_present: bool = False,
    index: int = 0,
) -> Rendered:
    """One present service -> its docker run argv and unit inputs. Raises ServingError naming the variable."""
    name = str(svc.get("name") or "")
    where = f"{settings.var}[{index}] ({name or 'unnamed'})"
    if not _NAME_RE.match(name):
        raise ServingError(
            f"{settings.var}[{index}].name {name!r} is not usable as a unit and container name: "
            "use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (at most 63)"
        )
    unknown = sorted(set(svc) - SERVICE_KEYS)
    if unknown:
        hint = " (use mem_fraction)" if "mem_fraction_static" in unknown else ""
        raise ServingError(f"{where} has unknown keys {unknown}{hint}: known keys are {sorted(SERVICE_KEYS)}")
    engine = str(svc.get("engine") or "")
    if engine not in ENGINES:
        raise ServingError(f"{where}.engine is {engine!r}: use one of {', '.join(ENGINES)}")
    if profile_name not in profiles:
        raise ServingError(
            f"profile {profile_name!r} (ansible_facts.nvidia_gpu.profile) is not in sparkfleet_profiles "
            f"({', '.join(sorted(profiles))}): add it to group_vars/all/profiles.yml"
        )
    profile = profiles[profile_name]
    image = str(svc.get("image") or "")
    try:
        parse_image(image)
    except ServingError as exc:
        raise ServingError(f"{where}.image: {exc}") from None

    port = _int(svc.get("port") or ENGINE_PORTS[engine], f"{where}.port", 1, 65535)
    default_cport = NIM_CONTAINER_PORT if engine == "nim" else port
    cport = _int(svc.get("container_port") or default_cport, f"{where}.container_port", 1, 65535)
    extra_args = _as_list(svc.get("extra_args"), f"{where}.extra_args")
    command = _as_list(svc.get("command"), f"{where}.command")
    docker_extra = _as_list(svc.get("docker_args"), f"{where}.docker_args")
    model = str(svc.get("model") or "")
    if engine in ("sglang", "vllm") and not model:
        raise ServingError(f"{where}.model is empty: {engine} needs the model to serve, e.g. Qwen/Qwen3-8B")
    if engine == "nim" and command:
        raise ServingError(f"{where}.command is set, but a NIM image runs its own server: configure it with env")
    if engine == "nim" and not ngc_api_key_present:
        raise ServingError(
            f"{where} is a NIM service but sparkfleet_ngc_api_key is empty: put the NGC API key "
            "(nvapi-... or the legacy 86 characters + ==) in an Ansible Vault file of the inventory"
        )

    max_fraction = float(profile.get("max_mem_fraction") or 1.0)
    raw_fraction = svc.get("mem_fraction")
    fraction = float(profile.get("default_mem_fraction") or 0.8) if raw_fraction is None else raw_fraction
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ServingError(f"{where}.mem_fraction must be a number, not {raw_fraction!r}") from None
    if isinstance(raw_fraction, bool) or not 0.0 < fraction <= max_fraction:
        raise ServingError(
            f"{where}.mem_fraction is {raw_fraction}: use a number above 0 and at most {max_fraction} "
            f"(max_mem_fraction of profile {profile_name}), or leave it unset for the profile's "
            f"default {profile.get('default_mem_fraction')}"
        )
    context_length = svc.get("context_length")
    if context_length is not None:
        context_length = _int(context_length, f"{where}.context_length", 1, 10_000_000)

    env_in = svc.get("env") or {}
    if not isinstance(env_in, Mapping):
        raise ServingError(f"{where}.env must be a mapping of NAME: value, not {type(env_in).__name__}")
    env: dict[str, str] = {}
    for k, v in env_in.items():
        if not _ENV_NAME_RE.match(str(k)):
            raise ServingError(f"{where}.env key {k!r} is not a valid environment variable name")
        sv = str(v)
        if "\n" in sv or "\r" in sv:
            raise ServingError(f"{where}.env.{k} contains a newline, which docker's --env-file cannot carry")
        env[str(k)] = sv
    secret_env = [s for s in _SECRET_ENV[engine] if s not in env]
    if "HF_TOKEN" in secret_env and not hf_token_present:
        secret_env.remove("HF_TOKEN")

    shm_size = svc.get("shm_size")
    if shm_size is not None and not _SHM_RE.match(str(shm_size)):
        raise ServingError(f"{where}.shm_size is {shm_size!r}: use a docker size such as 16g or 16GB")
    gpu_flags = _resolve_gpu(svc.get("gpu", "auto"), gpu_facts, where)
    health_paths = _as_list(svc.get("health_paths"), f"{where}.health_paths") or list(HEALTH_PATHS[engine])
    for p in health_paths:
        if not p.startswith("/"):
            raise ServingError(f"{where}.health_paths entry {p!r} must start with /")
    health_timeout_s = _int(
        svc.get("health_timeout_s") or settings.health_timeout_s, f"{where}.health_timeout_s", 1, 86400
    )
    stop_timeout_s = _int(svc.get("stop_timeout_s") or settings.stop_timeout_s, f"{where}.stop_timeout_s", 1, 3600)

    unit_name = f"{UNIT_PREFIX}{name}.service"
    container = f"{UNIT_PREFIX}{name}"
    env_file = f"{settings.env_dir}/{name}.env"
    publish = f"{settings.bind_address}:{port}:{cport}" if settings.bind_address else f"{port}:{cport}"

    argv = [settings.docker_bin, "run", "--rm", "--name", container, "--pull", "never"]
    argv += ["--label", f"{LABEL}={name}", "--label", f"org.sparkfleet.engine={engine}"]
    argv += ["--publish", publish, "--env-file", env_file]
    directories: list[dict[str, Any]] = []
    if gpu_flags:
        argv += gpu_flags
        argv += [str(a) for a in profile.get("docker_args") or []]
        size = shm_size or profile.get("shm_size")
        if size:
            argv += ["--shm-size", str(size)]
    elif shm_size:
        argv += ["--shm-size", str(shm_size)]
    if engine in ("sglang", "vllm"):
        argv += ["--volume", f"{settings.hf_cache_dir}:{HF_CACHE_IN_CONTAINER}"]
        directories.append({"path": settings.hf_cache_dir, "owner": "root", "group": "root", "mode": "0755"})
    elif engine == "nim":
        argv += ["--volume", f"{settings.nim_cache_dir}:{NIM_CACHE_IN_CONTAINER}"]
        uid = str(settings.nim_uid)
        directories.append({"path": settings.nim_cache_dir, "owner": uid, "group": uid, "mode": "0755"})
    argv += docker_extra
    argv.append(image)

    if engine == "sglang":
        defaults = ["--host", ALL_INTERFACES, "--port", str(cport), "--mem-fraction-static", _fmt_fraction(fraction)]
        if context_length:
            defaults += ["--context-length", str(context_length)]
        defaults += [str(a) for a in profile.get("sglang_args") or []]
        argv += (command or SGLANG_LAUNCHER) + ["--model-path", model] + merge_args(defaults, extra_args)
    elif engine == "vllm":
        defaults = ["--host", ALL_INTERFACES, "--port", str(cport), "--gpu-memory-utilization", _fmt_fraction(fraction)]
        if context_length:
            defaults += ["--max-model-len", str(context_length)]
        argv += [*command, "--model", model, *merge_args(defaults, extra_args)]
    else:  # nim (configured by env) and openai (the image's own arguments)
        argv += command + extra_args

    unit = {
        "description": f"sparkfleet {engine} service {name} ({model or image}) on port {port}",
        "exec_start_pre": f"-{settings.docker_bin} rm -f {container}",
        "exec_start": systemd_join(argv),
        "exec_stop": f"{settings.docker_bin} stop -t {stop_timeout_s} {container}",
        "timeout_stop_s": stop_timeout_s + 30,
        "restart_sec": settings.restart_sec,
        # Exponential back-off needs systemd 254 (RestartSteps); older systemd restarts at a fixed RestartSec.
        "restart_steps": settings.restart_steps if settings.systemd_version >= 254 else 0,
        "restart_max_delay_s": settings.restart_max_delay_s if settings.systemd_version >= 254 else 0,
        "start_limit_interval_s": settings.start_limit_interval_s,
        "start_limit_burst": settings.start_limit_burst,
    }
    return Rendered(
        name=name,
        engine=engine,
        image=image,
        image_archive=str(svc.get("image_archive") or ""),
        model=model,
        port=port,
        container_port=cport,
        gpu="none" if not gpu_flags else gpu_flags[1].strip('"'),
        unit_name=unit_name,
        container_name=container,
        unit_path=f"{settings.unit_dir}/{unit_name}",
        env_file=env_file,
        docker_argv=argv,
        env=env,
        secret_env=secret_env,
        directories=directories,
        health_paths=health_paths,
        health_timeout_s=health_timeout_s,
        stop_timeout_s=stop_timeout_s,
        unit=unit,
    )


def plan_services(
    services: Sequence[Mapping[str, Any]] | None,
    *,
    profile_name: str,
    profiles: Mapping[str, Any],
    gpu_facts: Mapping[str, Any] | None = None,
    plan: Mapping[str, Any] | None = None,
    listening: str = "",
    own_containers: str = "",
    settings: Settings | None = None,
    ngc_api_key_present: bool = False,
    hf_token_present: bool = False,
) -> dict[str, Any]:
    """Validate and render every service of a host.

    Returns {present: [...], absent: [...], skipped: [{name, reason}], images: [...], errors: [str]}.
    All errors are collected so one run lists every problem of the host.
    """
    settings = settings or Settings()
    var = settings.var
    errors: list[str] = []
    present: list[dict[str, Any]] = []
    absent: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    if services is None:
        services = []
    if isinstance(services, (str, Mapping)) or not isinstance(services, Sequence):
        return {
            "present": [],
            "absent": [],
            "skipped": [],
            "images": [],
            "errors": [f"{var} must be a list of services"],
        }
    plan_skips = skipped_by_plan(plan)
    names: dict[str, int] = {}
    ports: dict[int, str] = {}
    listening_ports = parse_listening_ports(listening)
    owned = parse_own_containers(own_containers)
    # Services being removed in this run free their ports before the present ones start.
    removed = {str(s.get("name")) for s in services if isinstance(s, Mapping) and s.get("state") == "absent"}
    for i, svc in enumerate(services):
        if not isinstance(svc, Mapping):
            errors.append(f"{var}[{i}] must be a mapping with at least name, engine and image, not {svc!r}")
            continue
        name = str(svc.get("name") or "")
        if name in names:
            errors.append(f"{var}[{i}].name {name!r} is also the name of {var}[{names[name]}]: names must be unique")
            continue
        names[name] = i
        state = svc.get("state") or "present"
        if state not in STATES:
            errors.append(f"{var}[{i}] ({name}).state is {state!r}: use present or absent")
            continue
        if state == "absent":
            if not _NAME_RE.match(name):
                errors.append(f"{var}[{i}].name {name!r} is not a valid service name")
                continue
            absent.append(
                {
                    "name": name,
                    "unit_name": f"{UNIT_PREFIX}{name}.service",
                    "unit_path": f"{settings.unit_dir}/{UNIT_PREFIX}{name}.service",
                    "container_name": f"{UNIT_PREFIX}{name}",
                    "env_file": f"{settings.env_dir}/{name}.env",
                }
            )
            continue
        if name in plan_skips:
            skipped.append({"name": name, "reason": plan_skips[name]})
            continue
        try:
            r = render_service(
                svc,
                profile_name=profile_name,
                profiles=profiles,
                gpu_facts=gpu_facts,
                settings=settings,
                ngc_api_key_present=ngc_api_key_present,
                hf_token_present=hf_token_present,
                index=i,
            )
        except ServingError as exc:
            errors.append(str(exc))
            continue
        where = f"{var}[{i}] ({name}).port"
        if r.port in ports:
            errors.append(
                f"{where} {r.port} is also the port of service {ports[r.port]}: give each service its own port"
            )
            continue
        ports[r.port] = name
        if r.port in listening_ports and owned.get(r.port) not in (name, *removed):
            holder = f"the container of sparkfleet service {owned[r.port]}" if r.port in owned else "another process"
            errors.append(
                f"{where} {r.port} is already listening on this host ({holder}; see `ss -ltnp`): "
                "choose a free port or stop what holds it"
            )
            continue
        present.append(r.as_dict())
    images: dict[tuple[str, str], dict[str, Any]] = {}
    for p in present:
        key = (p["image"], p["image_archive"])
        images.setdefault(key, {"image": p["image"], "image_archive": p["image_archive"], "services": []})
        images[key]["services"].append(p["name"])
    return {"present": present, "absent": absent, "skipped": skipped, "images": list(images.values()), "errors": errors}


# --------------------------------------------------------------------------------------------- image archives


def archive_info(path: str | Path) -> dict[str, Any]:
    """Image ID and tags of a `docker save` archive (legacy layout and OCI layout both name the config)."""
    p = Path(path)
    try:
        with tarfile.open(p, "r:*") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise ServingError(f"{p} has no manifest.json: it is not a `docker save` archive")
            manifest = json.loads(member.read().decode())
    except KeyError:
        raise ServingError(f"{p} has no manifest.json: it is not a `docker save` archive") from None
    except (OSError, tarfile.TarError) as exc:
        raise ServingError(f"{p} cannot be read as a tar archive: {exc}") from None
    if not isinstance(manifest, list) or not manifest:
        raise ServingError(f"{p}: manifest.json lists no image")
    images = []
    for entry in manifest:
        config = str(entry.get("Config", ""))
        digest = Path(config).name.removesuffix(".json")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ServingError(f"{p}: manifest.json names config {config!r}, not a sha256 digest")
        images.append({"id": f"sha256:{digest}", "tags": list(entry.get("RepoTags") or [])})
    return {"path": str(p), "images": images, "size_bytes": p.stat().st_size}


def resolve_archive(path: str, search_dirs: Sequence[str]) -> Path:
    """An absolute path as it is; a relative one against the first search dir holding it."""
    p = Path(path).expanduser()
    if p.is_absolute():
        if not p.is_file():
            raise ServingError(f"image_archive {path} does not exist on the controller")
        return p
    tried = []
    for d in search_dirs:
        if not d:
            continue
        cand = (Path(d).expanduser() / p).resolve()
        tried.append(str(cand))
        if cand.is_file():
            return cand
    raise ServingError(
        f"image_archive {path} was not found on the controller (tried {', '.join(tried)}): "
        "give an absolute path or one relative to the repository"
    )


def archive_for_image(path: str, search_dirs: Sequence[str], image: str) -> dict[str, Any]:
    """Resolve an archive and pick the image in it that carries `image`'s tag."""
    resolved = resolve_archive(path, search_dirs)
    info = archive_info(resolved)
    ref = parse_image(image)
    for entry in info["images"]:
        if image in entry["tags"] or (ref.digest and entry["id"] == ref.digest):
            return {
                "path": str(resolved),
                "image_id": entry["id"],
                "tags": entry["tags"],
                "size_bytes": info["size_bytes"],
            }
    tags = [t for e in info["images"] for t in e["tags"]]
    raise ServingError(
        f"image_archive {resolved} holds {tags or 'untagged images'}, not {image}: "
        "set image to one of those tags, or save the archive with `docker save IMAGE -o FILE`"
    )


# --------------------------------------------------------------------------------------------- health


Fetch = Callable[[str, float], tuple[int, str]]


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """GET url -> (status, first 2 KiB of the body); status 0 with the reason when nothing answered."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - the URL is http://127.0.0.1 built by us
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - same
            return int(resp.status), resp.read(2048).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(2048).decode(errors="replace") if exc.fp else ""
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason)


def probe_once(base_url: str, paths: Sequence[str], fetch: Fetch = http_get, timeout: float = 10.0) -> dict[str, Any]:
    """Probe paths in order; healthy when every one answers 200. Stops at the first that does not."""
    results = []
    for path in paths:
        status, body = fetch(base_url.rstrip("/") + path, timeout)
        results.append({"path": path, "status": status, "body": body[:300]})
        if status != 200:
            return {"healthy": False, "probes": results}
    models: list[str] = []
    for r in results:
        if str(r["path"]).endswith("/v1/models"):
            models = _model_ids(str(r["body"]))
    return {"healthy": True, "probes": results, "models": models}


def _model_ids(body: str) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    items = data.get("data") if isinstance(data, dict) else None
    return [str(m.get("id")) for m in items or [] if isinstance(m, dict)]


def fmt_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60}m{s % 60:02d}s"


def wait_healthy(
    base_url: str,
    paths: Sequence[str],
    *,
    step_s: float,
    interval_s: float = 5.0,
    fetch: Fetch = http_get,
    unit_state: Callable[[], tuple[str, float | None]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Probe until healthy or `step_s` passes. `unit_state()` -> (ActiveState, seconds since the main process
    started); a unit in state `failed` (start limit hit) ends the wait at once with give_up."""
    start = clock()
    last: dict[str, Any] = {"healthy": False, "probes": []}
    state, since = ("unknown", None)
    while True:
        if unit_state is not None:
            state, since = unit_state()
            if state == "failed":
                last.update(give_up=True, unit_state=state, since_start_s=since)
                last["msg"] = "the unit is in state failed (it exited too often: systemd's start limit was hit)"
                return last
        last = probe_once(base_url, paths, fetch)
        last.update(give_up=False, unit_state=state, since_start_s=since)
        if last["healthy"]:
            break
        if clock() - start + interval_s > step_s:
            break
        sleep(interval_s)
    probe = last["probes"][-1] if last["probes"] else {"path": "?", "status": 0, "body": ""}
    age = f" {fmt_duration(since)} after the start" if since is not None else ""
    if last["healthy"]:
        last["msg"] = f"healthy{age}: " + ", ".join(f"{p['path']} 200" for p in last["probes"])
    else:
        last["msg"] = f"not healthy yet{age}: {probe['path']} -> {probe['status'] or probe['body']}"
    return last
