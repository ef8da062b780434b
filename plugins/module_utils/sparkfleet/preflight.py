"""Preflight validation for sparkfleet: the inventory's services, secrets, driver and the serving plan.

``check_plan`` takes one host's inputs (``llm_serving_services``, ``sparkfleet_profiles``, the GPU facts of
``nvidia_gpu_facts``...) and returns the plan the serving role reads as ``ansible_facts['sparkfleet_plan']``:
``{profile, serving_gpu, deploy, skipped, errors, warnings, summary}``. It never raises on bad input: every
problem becomes one line in ``errors`` naming the variable and the fix, so one run lists them all.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from .gpu import find_gpu
from .service_schema import ENGINES, REQUIRED_KEYS, SERVICE_KEYS, STATES

SERVICES_VAR = "llm_serving_services"
# Bytes per parameter for the memory estimate.
DTYPE_BYTES: dict[str, float] = {"f32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5, "int4": 0.5}
# Names that were renamed or are easy to guess wrong: key -> what to write instead.
RENAMED_KEYS: dict[str, str] = {
    "mem_fraction_static": "mem_fraction",
    "mem-fraction-static": "mem_fraction",
    "gpus": "gpu",
    "gpu_index": "gpu",
    "device": "gpu",
    "image_tar": "image_archive",
    "args": "extra_args",
    "environment": "env",
    "context_len": "context_length",
    "max_model_len": "context_length",
    "dtype": "model_dtype",
    "params_b": "model_params_b",
}
# Engine flags that sparkfleet sets from service keys: setting them in extra_args fights the plan.
FLAG_KEYS: dict[str, str] = {
    "--mem-fraction-static": "mem_fraction",
    "--port": "port",
    "--context-length": "context_length",
    "--gpu-memory-utilization": "mem_fraction",
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker image reference (distribution/reference grammar): [registry[:port]/]path[:tag][@sha256:<64 hex>].
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
NGC_KEY_RE = re.compile(r"^(?:[A-Za-z0-9]{86}==|nvapi-[A-Za-z0-9_-]{20,})$")
NGC_REGISTRY = "nvcr.io"


@dataclass
class PlanInputs:
    """One host's inputs. ``services`` and ``profile_override`` are taken raw and type-checked here."""

    services: Any
    profiles: Any
    gpu: Mapping[str, Any] | None
    gpu_error: str = ""
    profile_override: Any = None
    ngc_api_key: Any = None
    skip_gpu_services_without_gpu: bool = True
    memory_overhead: float = 1.2
    min_free_disk_gb_per_service: float = 20.0
    disk_paths: Sequence[str] = ("/var/lib/docker",)
    free_disk_gb: Callable[[str], float | None] | None = None


@dataclass
class Plan:
    profile: str
    serving_gpu: Mapping[str, Any] | None
    deploy: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""

    def as_fact(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "serving_gpu": dict(self.serving_gpu) if self.serving_gpu is not None else None,
            "deploy": self.deploy,
            "skipped": self.skipped,
            "errors": self.errors,
            "warnings": self.warnings,
            "summary": self.summary,
        }


# ------------------------------------------------------------------ helpers


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def version_tuple(version: str) -> tuple[int, ...]:
    """'580.95.05' -> (580, 95, 5); non-numeric parts end the tuple."""
    parts: list[int] = []
    for part in str(version).split("."):
        match = re.match(r"^\d+", part)
        if not match:
            break
        parts.append(int(match.group(0)))
    return tuple(parts)


def parse_image(ref: str) -> dict[str, str | None] | None:
    """A docker image reference split into name, domain, tag, digest; None when malformed."""
    match = IMAGE_RE.match(ref)
    if not match:
        return None
    return {k: match.group(k) for k in ("name", "domain", "tag", "digest")}


def image_registry(ref: str) -> str:
    """The registry an image is pulled from: the first path part when it looks like a host, else docker.io."""
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return first.split(":", 1)[0].lower()
    return "docker.io"


def ngc_key_problem(key: Any) -> str | None:
    """Why an NGC API key is unusable (never echoing the key), or None."""
    if key is None or (isinstance(key, str) and not key.strip()):
        return "is not set"
    if not isinstance(key, str):
        return f"must be a string, got {_type_name(key)}"
    if not NGC_KEY_RE.match(key.strip()):
        return (
            f"does not look like an NGC API key ({len(key.strip())} characters; expected 'nvapi-' followed by "
            "letters, digits, '-' or '_', or a legacy key of 86 letters and digits ending in '==')"
        )
    return None


def free_disk_gb(path: str) -> float | None:
    """Free space in GB (1e9 bytes) for an unprivileged writer at path, or its nearest existing parent."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    try:
        stat = os.statvfs(probe)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize / 1e9


def estimate_memory_gb(service: Mapping[str, Any], overhead: float) -> float | None:
    """memory_gb when given, else model_params_b x bytes per dtype x overhead; None when neither is known."""
    if _is_number(service.get("memory_gb")):
        return float(service["memory_gb"])
    params = service.get("model_params_b")
    if _is_number(params):
        dtype = service.get("model_dtype") or "bf16"
        return float(params) * DTYPE_BYTES.get(str(dtype), 2.0) * overhead
    return None


# --------------------------------------------------------------- validation


def _check_key_names(where: str, service: Mapping[str, Any], errors: list[str]) -> None:
    for key in service:
        if key in SERVICE_KEYS:
            continue
        if key in RENAMED_KEYS:
            errors.append(f"{where}.{key} is not a service key: use {RENAMED_KEYS[key]} instead")
            continue
        close = difflib.get_close_matches(str(key), SERVICE_KEYS, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(SERVICE_KEYS)}"
        errors.append(f"{where}.{key} is not a service key ({hint}); remove or rename it")


def _check_port(where: str, key: str, value: Any, errors: list[str]) -> None:
    if not _is_int(value) or not 1 <= value <= 65535:
        errors.append(f"{where}.{key} must be an integer 1-65535, got {value!r} ({_type_name(value)})")


def _check_str_list(where: str, key: str, value: Any, errors: list[str]) -> None:
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        errors.append(f"{where}.{key} must be a list of strings, got {value!r} ({_type_name(value)})")


def validate_service(where: str, service: Any, errors: list[str]) -> bool:
    """Type and value checks of one service; False when it is too broken to plan with."""
    if not isinstance(service, Mapping):
        errors.append(f"{where} must be a dict with at least {', '.join(REQUIRED_KEYS)}, got {_type_name(service)}")
        return False
    before = len(errors)
    _check_key_names(where, service, errors)
    for key in REQUIRED_KEYS:
        if service.get(key) in (None, ""):
            errors.append(f"{where}.{key} is required (see the service schema in docs/development.md)")
    name = service.get("name")
    if name not in (None, "") and (not isinstance(name, str) or not NAME_RE.match(name)):
        errors.append(
            f"{where}.name {name!r} must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit "
            "(it names the container and the systemd unit)"
        )
    engine = service.get("engine")
    if engine not in (None, "") and engine not in ENGINES:
        errors.append(f"{where}.engine {engine!r} must be one of {', '.join(ENGINES)}")
    image = service.get("image")
    if image not in (None, ""):
        parsed = parse_image(image) if isinstance(image, str) else None
        if parsed is None:
            errors.append(
                f"{where}.image {image!r} is not a docker image reference: write registry/path:tag or "
                "registry/path@sha256:<64 hex> (lowercase path, e.g. lmsysorg/sglang:latest-cu130)"
            )
        elif not parsed["tag"] and not parsed["digest"]:
            errors.append(
                f"{where}.image {image!r} has no tag or digest: pin one (e.g. {image}:<tag> or @sha256:<digest>), "
                "tags like latest move under you"
            )
    for key in ("model", "image_archive"):
        value = service.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(f"{where}.{key} must be a string, got {_type_name(value)}")
    if "port" in service and service.get("port") is not None:
        _check_port(where, "port", service["port"], errors)
    if service.get("container_port") is not None:
        _check_port(where, "container_port", service["container_port"], errors)
    gpu = service.get("gpu", "auto")
    if (
        gpu is None
        or isinstance(gpu, bool)
        or not ((_is_int(gpu) and gpu >= 0) or (isinstance(gpu, str) and gpu.strip()))
    ):
        errors.append(f"{where}.gpu must be auto, none, a GPU index (0, 1, ...) or a GPU name word, got {gpu!r}")
    fraction = service.get("mem_fraction")
    if fraction is not None and (not _is_number(fraction) or not 0 < fraction <= 1):
        errors.append(
            f"{where}.mem_fraction must be a number in (0, 1] (a share of the GPU's memory), got {fraction!r}"
        )
    context = service.get("context_length")
    if context is not None and (not _is_int(context) or context <= 0):
        errors.append(f"{where}.context_length must be a positive integer (tokens), got {context!r}")
    for key in ("model_params_b", "memory_gb"):
        value = service.get(key)
        if value is not None and (not _is_number(value) or value <= 0):
            unit = "billions of parameters" if key == "model_params_b" else "GB"
            errors.append(f"{where}.{key} must be a positive number ({unit}) or null, got {value!r}")
    dtype = service.get("model_dtype")
    if dtype is not None and dtype not in DTYPE_BYTES:
        errors.append(f"{where}.model_dtype {dtype!r} must be one of {', '.join(DTYPE_BYTES)}")
    for key in ("extra_args", "command"):
        if service.get(key) is not None:
            _check_str_list(where, key, service[key], errors)
    extra = service.get("extra_args")
    if isinstance(extra, list):
        for arg in extra:
            flag = str(arg).split("=", 1)[0]
            if flag in FLAG_KEYS:
                errors.append(
                    f"{where}.extra_args sets {flag}: use the service key {FLAG_KEYS[flag]} instead "
                    "(the preflight plan and the serving role read it)"
                )
    env = service.get("env")
    if env is not None:
        if not isinstance(env, Mapping):
            errors.append(f"{where}.env must be a dict of NAME: value, got {_type_name(env)}")
        else:
            for key, value in env.items():
                if not isinstance(key, str) or not ENV_NAME_RE.match(key):
                    errors.append(f"{where}.env key {key!r} is not a valid environment variable name")
                if isinstance(value, (Mapping, list)) or value is None:
                    errors.append(f"{where}.env.{key} must be a string or number, got {_type_name(value)}")
    state = service.get("state", "present")
    if state not in STATES:
        errors.append(f"{where}.state must be present or absent, got {state!r}")
    return len(errors) == before


def _check_unique(services: Sequence[tuple[str, Mapping[str, Any]]], errors: list[str]) -> None:
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for where, service in services:
        name = service.get("name")
        if isinstance(name, str) and name:
            if name in names:
                errors.append(f"{where}.name {name!r} is also used by {names[name]}: service names must be unique")
            else:
                names[name] = where
        port = service.get("port")
        if _is_int(port) and service.get("state", "present") == "present":
            if port in ports:
                errors.append(
                    f"{where}.port {port} is also used by {ports[port]} ({SERVICES_VAR} on one host): "
                    "give each present service its own port"
                )
            else:
                ports[port] = where


def _check_secrets(services: Sequence[tuple[str, Mapping[str, Any]]], ngc_api_key: Any, errors: list[str]) -> None:
    needs: list[str] = []
    for where, service in services:
        if service.get("state", "present") != "present":
            continue
        image = service.get("image")
        pulls_from_ngc = (
            isinstance(image, str) and image_registry(image) == NGC_REGISTRY and not service.get("image_archive")
        )
        if service.get("engine") == "nim":
            needs.append(f"{where} (engine nim)")
        elif pulls_from_ngc:
            needs.append(f"{where} (image from {NGC_REGISTRY})")
    if not needs:
        # Nothing here needs NGC, but a key that is set must still be usable: ngc_login would use it.
        if isinstance(ngc_api_key, str) and ngc_api_key.strip():
            problem = ngc_key_problem(ngc_api_key)
            if problem:
                errors.append(
                    f"sparkfleet_ngc_api_key {problem}. Fix: put the whole key from "
                    "https://org.ngc.nvidia.com/setup/api-key in the inventory (ansible-vault encrypt_string), "
                    "or leave it unset where no service needs NGC"
                )
        return
    problem = ngc_key_problem(ngc_api_key)
    if problem:
        errors.append(
            f"sparkfleet_ngc_api_key {problem}, but {', '.join(needs)} needs it. Fix: put the key from "
            "https://org.ngc.nvidia.com/setup/api-key in the inventory, encrypted with ansible-vault encrypt_string"
        )


def _profile(inputs: PlanInputs, errors: list[str]) -> tuple[str, Mapping[str, Any]]:
    detected = str((inputs.gpu or {}).get("profile") or "none")
    profiles = inputs.profiles if isinstance(inputs.profiles, Mapping) else {}
    if not profiles:
        errors.append(
            "sparkfleet_profiles is missing or not a dict: it comes from group_vars/all/profiles.yml; run the "
            "playbook from the project (playbooks/group_vars links it) or define it in your inventory"
        )
    override = inputs.profile_override
    name = detected
    if override not in (None, ""):
        if not isinstance(override, str) or override not in profiles:
            errors.append(
                f"sparkfleet_profile_override {override!r} is not a profile. Fix: use one of "
                f"{', '.join(map(str, profiles)) or '(none defined)'} or remove the variable"
            )
        else:
            name = override
    profile = profiles.get(name)
    if profiles and not isinstance(profile, Mapping):
        errors.append(f"sparkfleet_profiles has no profile {name!r}: add it to group_vars/all/profiles.yml")
        profile = {}
    return name, profile or {}


def _check_driver(
    profile_name: str, profile: Mapping[str, Any], gpu: Mapping[str, Any] | None, errors: list[str]
) -> None:
    minimum = profile.get("min_driver_version")
    if not minimum:
        return
    driver = (gpu or {}).get("driver_version")
    if not driver:
        errors.append(
            f"profile {profile_name} needs NVIDIA driver >= {minimum} (sparkfleet_profiles.{profile_name}."
            "min_driver_version) but no driver was detected. Fix: install the driver (DGX OS ships it), or "
            "remove sparkfleet_profile_override if it forces a GPU profile on a host without a GPU"
        )
    elif version_tuple(str(driver)) < version_tuple(str(minimum)):
        errors.append(
            f"NVIDIA driver {driver} is older than {minimum}, the minimum for profile {profile_name} "
            f"(sparkfleet_profiles.{profile_name}.min_driver_version). Fix: upgrade the driver through DGX OS "
            "updates (sparkfleet asserts, never installs drivers)"
        )


def _gpu_usable_mib(gpu: Mapping[str, Any], facts: Mapping[str, Any], serving: Mapping[str, Any] | None) -> int | None:
    if gpu.get("unified_memory"):
        same = serving is not None and serving.get("index") == gpu.get("index")
        usable = facts.get("usable_memory_mib") if same else facts.get("system_memory_available_mib")
        return int(usable) if _is_number(usable) else None
    total = gpu.get("memory_total_mib")
    return int(total) if _is_number(total) else None


# --------------------------------------------------------------------- plan


def check_plan(inputs: PlanInputs) -> Plan:
    """Validate one host and plan which services deploy. Never raises on bad input."""
    errors: list[str] = []
    warnings: list[str] = []
    if inputs.gpu_error:
        errors.append(f"GPU detection failed: {inputs.gpu_error}")
    facts: Mapping[str, Any] = inputs.gpu or {}
    profile_name, profile = _profile(inputs, errors)
    serving = facts.get("serving_gpu") if isinstance(facts.get("serving_gpu"), Mapping) else None
    if profile_name == "none":
        serving = None
    plan = Plan(profile=profile_name, serving_gpu=serving, errors=errors, warnings=warnings)
    gpus: list[Mapping[str, Any]] = [g for g in facts.get("gpus") or [] if isinstance(g, Mapping)]
    if not inputs.gpu_error:
        _check_driver(profile_name, profile, facts, errors)

    raw = inputs.services
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        errors.append(
            f"{SERVICES_VAR} must be a list of service dicts (see docs/development.md), got {_type_name(raw)}"
        )
        raw = []
    services: list[tuple[str, Mapping[str, Any]]] = []
    valid: list[tuple[str, Mapping[str, Any]]] = []
    for i, service in enumerate(raw):
        label = service.get("name") if isinstance(service, Mapping) and isinstance(service.get("name"), str) else ""
        where = f"{SERVICES_VAR}[{i}]" + (f" ({label})" if label else "")
        ok = validate_service(where, service, errors)
        if isinstance(service, Mapping):
            services.append((where, service))
            if ok:
                valid.append((where, service))
    _check_unique(services, errors)
    _check_secrets(services, inputs.ngc_api_key, errors)

    default_fraction = profile.get("default_mem_fraction", 0.8)
    max_fraction = profile.get("max_mem_fraction", 1.0)
    per_gpu: dict[int, list[tuple[str, float]]] = {}
    disk_need = 0.0
    # Services with their own errors are not planned: their problems are already listed.
    for where, service in valid:
        name = str(service.get("name"))
        if service.get("state", "present") != "present":
            continue
        selector = service.get("gpu", "auto")
        if selector == "none":
            plan.deploy.append(name)
            disk_need += inputs.min_free_disk_gb_per_service
            continue
        if profile_name == "none" or not gpus:
            reason = (
                f"GPU service (gpu: {selector}) on a host with profile {profile_name} and {len(gpus)} GPU(s) detected"
            )
            if inputs.skip_gpu_services_without_gpu:
                plan.skipped.append({"name": name, "reason": reason})
            else:
                errors.append(
                    f"{where} is a {reason}. Fix: set gpu: none for a CPU service, remove it from this host, or "
                    "set preflight_skip_gpu_services_without_gpu: true to skip it"
                )
            continue
        target: Mapping[str, Any] | None
        if selector == "auto":
            target = serving
            if target is None:
                errors.append(f"{where}.gpu is auto but detection chose no serving GPU; set gpu to an index or name")
                continue
        else:
            target = find_gpu(gpus, selector)
            if target is None:
                listing = ", ".join(f"{g.get('index')}: {g.get('name')}" for g in gpus)
                errors.append(f"{where}.gpu {selector!r} matches no GPU on this host (GPUs: {listing})")
                continue
        if target.get("mig_mode") == "Enabled":
            warnings.append(
                f"{where}: GPU {target.get('index')} ({target.get('name')}) has MIG enabled; a whole-GPU container "
                f"sees only configured MIG instances. Disable MIG (nvidia-smi -i {target.get('index')} -mig 0) "
                "or serve on another GPU"
            )
        fraction_raw = service.get("mem_fraction", default_fraction)
        fraction = float(fraction_raw) if _is_number(fraction_raw) else float(default_fraction)
        index = int(target.get("index") or 0)
        per_gpu.setdefault(index, []).append((name, fraction))
        usable = _gpu_usable_mib(target, facts, serving)
        need_gb = estimate_memory_gb(service, inputs.memory_overhead)
        if need_gb is None:
            warnings.append(f"{where}: memory not checked (set model_params_b and model_dtype, or memory_gb)")
        elif usable is None:
            warnings.append(f"{where}: memory not checked (the driver reports no memory size for GPU {index})")
        else:
            budget_gb = usable * fraction * 1.048576 / 1000  # MiB -> GB (1e9 bytes)
            if need_gb > budget_gb:
                how = (
                    "memory_gb"
                    if _is_number(service.get("memory_gb"))
                    else (
                        f"model_params_b {service.get('model_params_b')} x {service.get('model_dtype') or 'bf16'} "
                        f"x overhead {inputs.memory_overhead:g}"
                    )
                )
                errors.append(
                    f"{where} needs about {need_gb:.1f} GB ({how}) but GPU {index} ({target.get('name')}) offers "
                    f"{budget_gb:.1f} GB ({usable} MiB usable x mem_fraction {fraction:g}). Fix: a smaller or more "
                    "quantized model (model_dtype fp8/fp4), a larger mem_fraction, or another host"
                )
        weights = estimate_memory_gb({**service, "memory_gb": None}, 1.0) or 0.0
        disk_need += inputs.min_free_disk_gb_per_service + weights
        plan.deploy.append(name)

    for index, shares in per_gpu.items():
        total = sum(f for _, f in shares)
        if _is_number(max_fraction) and total > float(max_fraction) + 1e-9:
            parts = " + ".join(f"{n} {f:g}" for n, f in shares)
            errors.append(
                f"mem_fraction of the services on GPU {index} sums to {total:g} ({parts}), above "
                f"{max_fraction:g}, the profile {profile_name}'s max_mem_fraction. Fix: lower their mem_fraction "
                "or move a service to another GPU or host"
            )

    if plan.deploy and inputs.free_disk_gb is not None:
        for path in inputs.disk_paths:
            free = inputs.free_disk_gb(path)
            if free is None:
                warnings.append(f"free disk space at {path} could not be read")
            elif free < disk_need:
                errors.append(
                    f"{path} has {free:.1f} GB free but the {len(plan.deploy)} planned service(s) need about "
                    f"{disk_need:.1f} GB for images and model cache (preflight_min_free_disk_gb_per_service "
                    f"{inputs.min_free_disk_gb_per_service:g} per service plus model weights). Fix: free space, "
                    "or lower preflight_min_free_disk_gb_per_service"
                )
    plan.summary = summarize(plan, facts)
    return plan


def summarize(plan: Plan, facts: Mapping[str, Any]) -> str:
    """One readable line: profile, serving GPU, services planned/skipped, problems."""
    gpu = plan.serving_gpu
    gpu_text = f"GPU {gpu.get('index')} {gpu.get('name')}" if gpu else "no serving GPU"
    driver = facts.get("driver_version") or "none"
    skipped = ", ".join(f"{s['name']} ({s['reason']})" for s in plan.skipped) or "none"
    deploy = ", ".join(plan.deploy) or "none"
    line = f"profile {plan.profile}; {gpu_text}; driver {driver}; deploy: {deploy}; skipped: {skipped}"
    if plan.errors:
        line += f"; {len(plan.errors)} problem(s)"
    return line


def run_module(module: Any) -> None:
    """The body of the sparkfleet_plan_check module (module: an AnsibleModule or a test fake)."""
    params = module.params
    plan = check_plan(
        PlanInputs(
            services=params.get("services"),
            profiles=params.get("profiles"),
            gpu=params.get("gpu_facts"),
            gpu_error=params.get("gpu_error") or "",
            profile_override=params.get("profile_override"),
            ngc_api_key=params.get("ngc_api_key"),
            skip_gpu_services_without_gpu=bool(params.get("skip_gpu_services_without_gpu", True)),
            memory_overhead=float(params.get("memory_overhead") or 1.2),
            min_free_disk_gb_per_service=float(params.get("min_free_disk_gb_per_service") or 0),
            disk_paths=list(params.get("disk_paths") or []),
            free_disk_gb=free_disk_gb,
        )
    )
    for warning in plan.warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"sparkfleet_plan": plan.as_fact()})
