"""The plan of one host: what it serves, on which GPU, or why not; the only thing later stages read about services.

``check_plan`` runs the one parser (``service/parse.py``) on the host's ``llm_serving_services`` and adds what
needs the host: the platform profile, the GPU each service runs on, the driver, memory and disk, the secrets a
service needs. It returns the plan recorded as ``ansible_facts['sparkfleet_plan']``::

    {profile, serving_gpu, services: [normalized service + status/reason/gpu_device], deploy, skipped,
     absent, expected, errors, warnings, summary}

It never raises on bad input: every problem becomes one line in ``errors`` naming the variable and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import DTYPE_BYTES, unit_service_name
from ..gpu import find_gpu, subprocess_runner
from ..netenv import base_url_for
from ..paths import UNIT_DIR
from .model import ENGINES, NGC_KEY_RE, NGC_REGISTRY, SERVICES_VAR
from .multihost import member, plan_piece, port_clashes, spans_hosts
from .parse import image_registry, is_number, parse_services, secret_problem, type_name

# Plan status of a service.
DEPLOY, SKIPPED, ABSENT = "deploy", "skipped", "absent"
NO_GPU_PROFILE = "none"


@dataclass
class PlanInputs:
    """One host's inputs, taken raw and checked here."""

    services: Any
    profiles: Any
    gpu: Mapping[str, Any] | None
    gpu_error: str = ""
    profile_override: Any = None
    ngc_api_key: Any = None
    hf_token: Any = None
    # Does this host need a GPU (it is in a GPU group such as dgx_spark)? None: not known, no check.
    gpu_expected: bool | None = None
    gpu_expected_why: str = ""
    skip_gpu_services_without_gpu: bool = False
    # Where the services are published on the host (llm_serving_bind_address): gives each planned service its URL.
    bind_address: str = ""
    # Services across hosts (service/multihost.py): this host's inventory name, the inventory's groups (Ansible's
    # `groups`) and every host's fabric endpoint {interface, address, hca, facts} (host vars, fabric facts).
    host: str = ""
    groups: Mapping[str, Any] | None = None
    fabric: Mapping[str, Any] | None = None
    memory_overhead: float = 1.2
    min_free_disk_gb_per_service: float = 20.0
    disk_paths: Sequence[str] = ("/var/lib/docker",)
    free_disk_gb: Callable[[str], float | None] | None = None
    # What an earlier run already put on the disk, so a rerun does not ask for that space again: the services whose
    # sparkfleet unit exists (their model cache is there) and the images the host holds (repository:tag).
    installed: Collection[str] = ()
    local_images: Collection[str] = ()
    # Resolve a docker_args host path's links (the host's own os.path.realpath when preflight runs on the host).
    realpath: Callable[[str], str] | None = None
    # False for a read-only reader of the plan (the status collector): it is given no secrets, so a missing key is
    # not a problem of its plan.
    check_secrets: bool = True


@dataclass
class Plan:
    profile: str
    serving_gpu: Mapping[str, Any] | None
    services: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""
    installed: list[str] = field(default_factory=list)

    def names(self, status: str) -> list[str]:
        return [s["name"] for s in self.services if s["status"] == status]

    def as_fact(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "serving_gpu": dict(self.serving_gpu) if self.serving_gpu is not None else None,
            "services": self.services,
            "deploy": self.names(DEPLOY),
            "skipped": [{"name": s["name"], "reason": s["reason"]} for s in self.services if s["status"] == SKIPPED],
            "absent": self.names(ABSENT),
            # Services the inventory plans to serve on this host (skipped ones included: the report shows why).
            "expected": len([s for s in self.services if s["status"] != ABSENT]),
            "errors": self.errors,
            "warnings": self.warnings,
            "summary": self.summary,
            # Services an earlier run deployed here (their units exist): preflight's topology reads it.
            "installed": self.installed,
        }


# ------------------------------------------------------------------ helpers


def version_tuple(version: str) -> tuple[int, ...]:
    """'580.95.05' -> (580, 95, 5); non-numeric parts end the tuple."""
    parts: list[int] = []
    for part in str(version).split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def ngc_key_problem(key: Any) -> str | None:
    """Why an NGC API key is unusable (never echoing the key), or None."""
    if key is None or (isinstance(key, str) and not key.strip()):
        return "is not set"
    problem = secret_problem(key, "sparkfleet_ngc_api_key")
    if problem:
        return problem.removeprefix("sparkfleet_ngc_api_key ")
    if not NGC_KEY_RE.fullmatch(key):
        return (
            f"does not look like an NGC API key ({len(key)} characters; expected 'nvapi-' followed by "
            "letters, digits, '-' or '_', or a legacy key of 86 letters and digits ending in '==')"
        )
    return None


def image_ref(image: str) -> str:
    """``repository:tag`` as ``docker images`` lists it (``:latest`` when no tag; a digest reference as given)."""
    if "@" in image or ":" in image.rsplit("/", 1)[-1]:
        return image
    return f"{image}:latest"


def installed_services(unit_dir: str) -> set[str]:
    """Names of the services with a sparkfleet unit in ``unit_dir`` (deployed by an earlier run)."""
    try:
        names = os.listdir(unit_dir)
    except OSError:
        return set()
    return {name for name in map(unit_service_name, names) if name}


def local_images(run: Callable[[list[str]], tuple[int, str, str]]) -> set[str]:
    """The images the host's Docker holds, as repository:tag and repository@digest; none when Docker is absent."""
    rc, out, _err = run(["docker", "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"])
    if rc != 0:
        return set()
    refs: set[str] = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[0] == "<none>":
            continue
        repo, tag, digest = parts
        if tag != "<none>":
            refs.add(f"{repo}:{tag}")
        if digest != "<none>":
            refs.add(f"{repo}@{digest}")
    return refs


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
    if is_number(service.get("memory_gb")):
        return float(service["memory_gb"])
    params = service.get("model_params_b")
    if is_number(params):
        dtype = service.get("model_dtype") or "bf16"
        return float(params) * DTYPE_BYTES.get(str(dtype), 2.0) * overhead
    return None


def _profile(inputs: PlanInputs, errors: list[str]) -> tuple[str, Mapping[str, Any]]:
    detected = str((inputs.gpu or {}).get("profile") or NO_GPU_PROFILE)
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


def _check_driver(profile_name: str, profile: Mapping[str, Any], gpu: Mapping[str, Any], errors: list[str]) -> None:
    minimum = profile.get("min_driver_version")
    if not minimum:
        return
    driver = gpu.get("driver_version")
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


def _no_gpu_reason(inputs: PlanInputs) -> str:
    """Detection's own reason for finding no usable GPU."""
    if inputs.gpu_error:
        return f"GPU detection failed: {inputs.gpu_error}"
    facts = inputs.gpu or {}
    reason = facts.get("no_gpu_reason")
    if reason:
        return str(reason)
    if not facts.get("nvidia_smi"):
        return "nvidia-smi is not on the PATH (no NVIDIA driver installed, or not in PATH)"
    return "nvidia-smi lists no GPU"


def _secrets_of(inputs: PlanInputs) -> list[str]:
    return [s for s in (inputs.ngc_api_key, inputs.hf_token) if isinstance(s, str) and s.strip()]


def _check_secrets(plan: Plan, inputs: PlanInputs) -> None:
    hf = secret_problem(inputs.hf_token, "sparkfleet_hf_token")
    if hf:
        plan.errors.append(hf)
    needs = []
    for svc in plan.services:
        if svc["status"] != DEPLOY:
            continue
        engine = ENGINES[svc["engine"]]
        if engine.requires_ngc_key:
            needs.append(f"{svc['where']} (engine {engine.name})")
        elif image_registry(svc["image"]) == NGC_REGISTRY and not svc["image_archive"]:
            needs.append(f"{svc['where']} (image from {NGC_REGISTRY})")
    key = inputs.ngc_api_key
    if not needs:
        # Nothing here needs NGC, but a key that is set must still be usable: ngc_login would use it.
        if isinstance(key, str) and key != "":
            problem = ngc_key_problem(key)
            if problem:
                plan.errors.append(
                    f"sparkfleet_ngc_api_key {problem}. Fix: put the whole key from "
                    "https://org.ngc.nvidia.com/setup/api-key in the inventory (ansible-vault encrypt_string), "
                    "or leave it unset where no service needs NGC"
                )
        elif key not in (None, "") and not isinstance(key, str):
            plan.errors.append(f"sparkfleet_ngc_api_key must be a string, got {type_name(key)}")
        return
    problem = ngc_key_problem(key)
    if problem:
        plan.errors.append(
            f"sparkfleet_ngc_api_key {problem}, but {', '.join(needs)} needs it. Fix: put the key from "
            "https://org.ngc.nvidia.com/setup/api-key in the inventory, encrypted with ansible-vault encrypt_string"
        )


def _usable_mib(gpu: Mapping[str, Any], facts: Mapping[str, Any], serving: Mapping[str, Any] | None) -> int | None:
    if gpu.get("unified_memory"):
        same = serving is not None and serving.get("index") == gpu.get("index")
        usable = facts.get("usable_memory_mib") if same else facts.get("system_memory_available_mib")
        return int(usable) if is_number(usable) else None
    total = gpu.get("memory_total_mib")
    return int(total) if is_number(total) else None


# --------------------------------------------------------------------- plan


class _Planner:
    def __init__(self, inputs: PlanInputs) -> None:
        self.inputs = inputs
        self.errors: list[str] = []
        self.warnings: list[str] = []
        if inputs.gpu_error:
            self.errors.append(f"GPU detection failed: {inputs.gpu_error}")
        self.facts: Mapping[str, Any] = inputs.gpu or {}
        self.profile_name, self.profile = _profile(inputs, self.errors)
        serving = self.facts.get("serving_gpu")
        self.serving = serving if isinstance(serving, Mapping) and self.profile_name != NO_GPU_PROFILE else None
        self.gpus = [g for g in self.facts.get("gpus") or [] if isinstance(g, Mapping)]
        self.per_gpu: dict[int, list[tuple[str, float]]] = {}
        self.disk_need = 0.0
        self.images_counted: set[str] = set()

    def host_checks(self) -> None:
        if not self.inputs.gpu_error:
            _check_driver(self.profile_name, self.profile, self.facts, self.errors)
        if self.inputs.gpu_expected and (self.profile_name == NO_GPU_PROFILE or not self.gpus):
            why = self.inputs.gpu_expected_why or "it is in a GPU group"
            self.errors.append(
                f"this host should have a GPU ({why}) but detection found no usable one: {_no_gpu_reason(self.inputs)}."
                " Fix: check the driver (`nvidia-smi` must list the GPU; DGX OS ships the driver; reboot once "
                "after a driver upgrade), or, for a host that has no GPU on purpose, set preflight_gpu_expected: false"
            )

    def place(self, svc: dict[str, Any]) -> None:
        """Decide one present service: deploy (GPU resolved, memory checked), skipped, or an error."""
        selector = svc["gpu"]
        svc["gpu_device"] = None
        if selector == "none":
            self._deploy(svc, None)
            return
        if self.profile_name == NO_GPU_PROFILE or not self.gpus:
            reason = (
                f"GPU service (gpu: {selector}) on a host with profile {self.profile_name} and "
                f"{len(self.gpus)} GPU(s): {_no_gpu_reason(self.inputs)}"
            )
            if self.inputs.skip_gpu_services_without_gpu:
                svc.update(status=SKIPPED, reason=f"skipped by choice (preflight_skip_gpu_services_without_gpu): "
                           f"{reason}")  # fmt: skip
            else:
                self.errors.append(
                    f"{svc['where']} is a {reason}. Fix: set gpu: none for a CPU service, remove it from this "
                    "host, or set preflight_skip_gpu_services_without_gpu: true to skip it on purpose"
                )
            return
        if selector == "all":
            self._deploy(svc, "all")
            return
        if selector == "auto":
            target = self.serving
            if target is None:
                self.errors.append(
                    f"{svc['where']}.gpu is auto but detection chose no serving GPU; set gpu to an index or name"
                )
                return
        else:
            target = find_gpu(self.gpus, selector)
            if target is None:
                listing = ", ".join(f"{g.get('index')}: {g.get('name')}" for g in self.gpus)
                self.errors.append(f"{svc['where']}.gpu {selector!r} matches no GPU on this host (GPUs: {listing})")
                return
        self._check_memory(svc, target)
        self._deploy(svc, int(target.get("index") or 0))

    def _deploy(self, svc: dict[str, Any], device: int | str | None) -> None:
        svc["gpu_device"] = device
        if device is not None and svc["mem_fraction"] is None:
            svc["mem_fraction"] = float(self.profile.get("default_mem_fraction") or 0.8)
        # Space already taken (a rerun, a rolling update) is not asked for again: an image the host holds, or that
        # another service here already counted, and the weights of a service an earlier run deployed (its model
        # cache is there).
        weights = estimate_memory_gb({**svc, "memory_gb": None}, 1.0) or 0.0
        if svc["name"] in self.inputs.installed:
            weights = 0.0
        ref = image_ref(str(svc["image"]))
        image = (
            0.0
            if ref in self.inputs.local_images or ref in self.images_counted
            else self.inputs.min_free_disk_gb_per_service
        )
        self.images_counted.add(ref)
        self.disk_need += image + weights
        svc.update(status=DEPLOY, reason="")

    def _check_memory(self, svc: dict[str, Any], target: Mapping[str, Any]) -> None:
        index = int(target.get("index") or 0)
        where = svc["where"]
        if target.get("mig_mode") == "Enabled":
            self.warnings.append(
                f"{where}: GPU {index} ({target.get('name')}) has MIG enabled; a whole-GPU container sees only "
                f"configured MIG instances. Disable MIG (nvidia-smi -i {index} -mig 0) or serve on another GPU"
            )
        fraction = svc["mem_fraction"]
        if fraction is None:
            fraction = float(self.profile.get("default_mem_fraction") or 0.8)
        self.per_gpu.setdefault(index, []).append((svc["name"], float(fraction)))
        usable = _usable_mib(target, self.facts, self.serving)
        overhead = self.inputs.memory_overhead
        need_gb = estimate_memory_gb(svc, overhead)
        if need_gb is None:
            self.warnings.append(f"{where}: memory not checked (set model_params_b and model_dtype, or memory_gb)")
            return
        piece = svc.get("multihost")
        nnodes = int(piece["nnodes"]) if isinstance(piece, Mapping) else 1
        if nnodes > 1:  # one model across hosts: each holds its share of the weights
            group_need, need_gb = need_gb, need_gb / nnodes
        if usable is None:
            self.warnings.append(f"{where}: memory not checked (the driver reports no memory size for GPU {index})")
            return
        budget_gb = usable * fraction * 1.048576 / 1000  # MiB -> GB (1e9 bytes)
        if need_gb > budget_gb:
            how = (
                "memory_gb"
                if is_number(svc.get("memory_gb"))
                else f"model_params_b {svc['model_params_b']} x {svc['model_dtype'] or 'bf16'} x overhead {overhead:g}"
            )
            if nnodes > 1:
                how += f"; {group_need:.1f} GB for the group of {nnodes} hosts, this host's share"
                self.errors.append(
                    f"{where} needs about {need_gb:.1f} GB on {self.inputs.host} ({how}) but GPU {index} "
                    f"({target.get('name')}) offers {budget_gb:.1f} GB ({usable} MiB usable x mem_fraction "
                    f"{fraction:g}): the weights do not fit the group's memory. Fix: more hosts (hosts, or nodes of "
                    "group), a more quantized model (model_dtype fp8/fp4), or a larger mem_fraction"
                )
                return
            self.errors.append(
                f"{where} needs about {need_gb:.1f} GB ({how}) but GPU {index} ({target.get('name')}) offers "
                f"{budget_gb:.1f} GB ({usable} MiB usable x mem_fraction {fraction:g}). Fix: a smaller or more "
                "quantized model (model_dtype fp8/fp4), a larger mem_fraction, or another host"
            )

    def fleet_checks(self, deployed: int) -> None:
        max_fraction = self.profile.get("max_mem_fraction", 1.0)
        for index, shares in self.per_gpu.items():
            total = sum(f for _name, f in shares)
            if is_number(max_fraction) and total > float(max_fraction) + 1e-9:
                parts = " + ".join(f"{n} {f:g}" for n, f in shares)
                self.errors.append(
                    f"mem_fraction of the services on GPU {index} sums to {total:g} ({parts}), above "
                    f"{max_fraction:g}, the profile {self.profile_name}'s max_mem_fraction. Fix: lower their "
                    "mem_fraction or move a service to another GPU or host"
                )
        if not deployed or self.inputs.free_disk_gb is None:
            return
        for path in self.inputs.disk_paths:
            free = self.inputs.free_disk_gb(path)
            if free is None:
                self.warnings.append(f"free disk space at {path} could not be read")
            elif free < self.disk_need:
                self.errors.append(
                    f"{path} has {free:.1f} GB free but the {deployed} planned service(s) need about "
                    f"{self.disk_need:.1f} GB more for images and model cache (preflight_min_free_disk_gb_per_service "
                    f"{self.inputs.min_free_disk_gb_per_service:g} per image the host does not hold yet, plus the "
                    "weights of services not deployed before). Fix: free space, or lower "
                    "preflight_min_free_disk_gb_per_service"
                )


def check_plan(inputs: PlanInputs) -> Plan:
    """Validate one host and plan what it serves. Never raises on bad input."""
    planner = _Planner(inputs)
    planner.host_checks()
    parsed = parse_services(
        inputs.services,
        profile=planner.profile,
        secrets=_secrets_of(inputs),
        realpath=inputs.realpath,
        keep=lambda raw: member(raw, inputs.host, inputs.groups),
    )
    planner.errors.extend(parsed.errors)
    for svc in parsed.services:
        if spans_hosts(svc) and svc["state"] == "present":
            gpus = None if svc["gpu"] == "none" else len(planner.gpus) if svc["gpu"] == "all" else 1
            planner.errors.extend(plan_piece(svc, inputs.host, inputs.groups, inputs.fabric, gpus))
    planner.errors.extend(port_clashes(parsed.services, inputs.host))
    plan = Plan(
        profile=planner.profile_name,
        serving_gpu=planner.serving,
        errors=planner.errors,
        installed=sorted(inputs.installed),
    )
    for svc in parsed.services:
        svc["url"] = base_url_for(inputs.bind_address, svc["port"])
        if svc["state"] != "present":
            svc.update(status=ABSENT, reason="state: absent", gpu_device=None)
        else:
            planner.place(svc)
        if "status" in svc:
            plan.services.append(svc)
    plan.errors = planner.errors
    if inputs.check_secrets:
        _check_secrets(plan, inputs)
    planner.fleet_checks(len(plan.names(DEPLOY)))
    plan.warnings = planner.warnings
    if plan.errors:
        # A host with problems deploys nothing: the run stops before any host changes.
        for svc in plan.services:
            if svc["status"] == DEPLOY:
                svc.update(status=SKIPPED, reason="not planned: this host's inventory has problems")
    plan.summary = summarize(plan, planner.facts)
    return plan


def summarize(plan: Plan, facts: Mapping[str, Any]) -> str:
    """One readable line: profile, serving GPU, services planned/skipped, problems."""
    gpu = plan.serving_gpu
    gpu_text = f"GPU {gpu.get('index')} {gpu.get('name')}" if gpu else "no serving GPU"
    driver = facts.get("driver_version") or "none"
    fact = plan.as_fact()
    skipped = ", ".join(f"{s['name']} ({s['reason']})" for s in fact["skipped"]) or "none"
    deploy = ", ".join(fact["deploy"]) or "none"
    line = f"profile {plan.profile}; {gpu_text}; driver {driver}; deploy: {deploy}; skipped: {skipped}"
    if plan.errors:
        line += f"; {len(plan.errors)} problem(s)"
    return line


def run_module(module: Any) -> None:
    """The body of the sparkfleet_plan_check module (module: an AnsibleModule or a test fake)."""
    params = module.params
    expected = params.get("gpu_expected")
    plan = check_plan(
        PlanInputs(
            services=params.get("services"),
            profiles=params.get("profiles"),
            gpu=params.get("gpu_facts"),
            gpu_error=params.get("gpu_error") or "",
            profile_override=params.get("profile_override"),
            ngc_api_key=params.get("ngc_api_key"),
            hf_token=params.get("hf_token"),
            gpu_expected=None if expected is None else bool(expected),
            gpu_expected_why=params.get("gpu_expected_why") or "",
            skip_gpu_services_without_gpu=bool(params.get("skip_gpu_services_without_gpu", False)),
            bind_address=str(params.get("bind_address") or ""),
            memory_overhead=float(params.get("memory_overhead") or 1.2),
            min_free_disk_gb_per_service=float(params.get("min_free_disk_gb_per_service") or 0),
            disk_paths=list(params.get("disk_paths") or []),
            free_disk_gb=free_disk_gb,
            installed=installed_services(str(params.get("unit_dir") or UNIT_DIR)),
            local_images=local_images(subprocess_runner(30)),
            realpath=os.path.realpath,
            host=str(params.get("host") or ""),
            groups=params.get("groups") or {},
            fabric=params.get("fabric") or {},
        )
    )
    for warning in plan.warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"sparkfleet_plan": plan.as_fact()})


__all__ = ["SERVICES_VAR", "Plan", "PlanInputs", "check_plan", "run_module"]
