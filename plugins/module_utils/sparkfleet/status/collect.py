"""The host side of playbooks/status.yml (module sparkfleet_status): everything about a host's services, read at once.

One module call per host, so one SSH round trip: the inventory's ``llm_serving_services`` planned by the plan's own
code (``service/plan.py``, which runs the one parser, with the GPU detection of ``gpu.py``), each planned service
rendered by ``serving/render.py`` the way the serving role would render it now, and then, per service, with one
``systemctl show``, one ``docker inspect`` of the containers and one of the planned images for the whole host:

- the unit's state (ActiveState, SubState, restarts, time since the main process started: ``serving/health.py``);
- the running container's image ID against the ID of the image the plan names;
- health now (``serving/health.py``'s probe_once on the address the unit's ownership marker records);
- drift from the inventory: ``missing`` (planned, no unit), ``extra`` (a unit with sparkfleet's ownership marker
  the inventory does not plan), ``different`` (the unit's lines differ from what render.py renders now);
- GPU memory in use (nvidia-smi's memory.used; unified memory (GB10): MemTotal - MemAvailable of /proc/meminfo).

Reads only. Never returns a file's content, an environment or a command line: only names, states and IDs.
The controller adds the last verification from the run history (``status/report.py``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..contracts import (
    OWNED_MARKER,
    RESERVED_SERVICE_NAMES,
    STATUS_SCHEMA,
    UNIT_PREFIX,
    read_owned_file,
    unit_own_name,
    unit_service_name,
)
from ..gpu import GpuDetectionError, Probe, Runner, detect, subprocess_runner, system_probe
from ..netenv import http_get
from ..service.model import ENGINES
from ..service.plan import ABSENT, DEPLOY, SKIPPED, PlanInputs, check_plan
from ..serving.health import UNIT_PROPERTIES, Fetch, parse_unit_status, probe_once
from ..serving.render import Settings, names_of, render_service
from ..serving.state import own_units

# Bounds of one host's document (docs/status.md): lists are cut to these lengths and strings to MAX_TEXT
# characters, and the document says so (truncated: true).
MAX_SERVICES = 64
MAX_GPUS = 16
MAX_PROBLEMS = 10
MAX_TEXT = 300

# Service states and host verdicts, worst first (the table and the exit status read them).
UNHEALTHY, DRIFTED, OK, SKIPPED_STATE = "unhealthy", "drifted", "ok", "skipped"

# What a unit line is compared by (render.py's unit inputs -> the template's line); the marker line is compared
# whole. RestartSteps is left out: it depends on the systemd version, which the role reads separately.
UNIT_LINES: dict[str, str] = {
    "Description": "description",
    "ExecStartPre": "exec_start_pre",
    "ExecStart": "exec_start",
    "ExecStop": "exec_stop",
    "TimeoutStopSec": "timeout_stop_s",
    "RestartSec": "restart_sec",
    "StartLimitIntervalSec": "start_limit_interval_s",
    "StartLimitBurst": "start_limit_burst",
}
SHOW_PROPERTIES = "Id,LoadState,UnitFileState," + UNIT_PROPERTIES


# ------------------------------------------------------------------------------------------------ parsers (pure)


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show -p ... -- unit...`` -> {unit Id: its block of KEY=value lines}; blocks are separated by a
    blank line, in the order asked, and each names its unit (Id), so a unit systemd does not know still has one
    (LoadState=not-found)."""
    blocks: dict[str, str] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            blocks[props["Id"]] = block
    return blocks


def unit_summary(block: str, now_monotonic: float) -> dict[str, Any]:
    """One unit's block of ``systemctl show`` -> what the status reports of it."""
    props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    unit = parse_unit_status(block, now_monotonic)
    return {
        "load": props.get("LoadState") or "unknown",
        "active": unit.state,
        "sub": props.get("SubState") or "",
        "enabled": props.get("UnitFileState") or "",
        "uptime_s": round(unit.since_start_s) if unit.since_start_s is not None and unit.state == "active" else None,
        "restarts": unit.restarts,
        "last_exit": unit.exit_status,
    }


def parse_inspect(text: str) -> list[dict[str, Any]]:
    """``docker inspect`` / ``docker image inspect`` JSON (a list of objects; those not found are left out and
    named on stderr) -> the objects; [] when stdout is not that JSON."""
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def container_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One container of ``docker inspect``: state, image ID, the reference it was started from, restarts."""
    state: Mapping[str, Any] = obj["State"] if isinstance(obj.get("State"), Mapping) else {}
    config: Mapping[str, Any] = obj["Config"] if isinstance(obj.get("Config"), Mapping) else {}
    return {
        "status": str(state.get("Status") or "unknown"),
        "running": bool(state.get("Running")),
        "started_at": str(state.get("StartedAt") or ""),
        "image_id": str(obj.get("Image") or ""),
        "image_ref": str(config.get("Image") or ""),
    }


def image_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One image of ``docker image inspect``: its ID, its tags and its registry digests (none for a loaded
    archive that never came from a registry)."""
    return {
        "id": str(obj.get("Id") or ""),
        "tags": [str(t) for t in obj.get("RepoTags") or []],
        "digests": [str(d) for d in obj.get("RepoDigests") or []],
    }


def gpu_memory(facts: Mapping[str, Any]) -> dict[str, Any]:
    """GPU memory in use from the detection facts (gpu.py): per GPU nvidia-smi's memory.used / memory.total; on
    unified memory (GB10, whose framebuffer fields are [N/A]) the system's MemTotal - MemAvailable."""
    gpus = [g for g in facts.get("gpus") or [] if isinstance(g, Mapping)]
    devices = []
    for g in gpus[:MAX_GPUS]:
        unified = bool(g.get("unified_memory"))
        used, total = g.get("memory_used_mib"), g.get("memory_total_mib")
        if unified:
            total = facts.get("system_memory_total_mib")
            available = facts.get("system_memory_available_mib")
            used = total - available if isinstance(total, int) and isinstance(available, int) else None
        devices.append({
            "index": g.get("index"),
            "name": str(g.get("name") or ""),
            "used_mib": used,
            "total_mib": total,
            "source": "/proc/meminfo" if unified else "nvidia-smi",
        })  # fmt: skip
    return {
        "source": "nvidia-smi" if gpus else "none",
        "unified_memory": any(g.get("unified_memory") for g in gpus),
        "devices": devices,
    }


def unit_lines(text: str) -> dict[str, str]:
    """A unit file's ownership marker line (key "marker") and its first KEY=value line of each UNIT_LINES key."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(OWNED_MARKER):
            found.setdefault("marker", line)
            continue
        key, sep, value = line.partition("=")
        if sep and key in UNIT_LINES:
            found.setdefault(key, value)
    return found


def unit_differences(text: str, unit: Mapping[str, Any]) -> list[str]:
    """The lines of a unit file that differ from what render.py renders now (``unit``: Rendered.unit): their
    names only (``ExecStart``, ``marker``), never their values."""
    have = unit_lines(text)
    want = {key: str(unit.get(attr, "")) for key, attr in UNIT_LINES.items()}
    want["marker"] = str(unit.get("marker", ""))
    return [key for key in ["marker", *UNIT_LINES] if have.get(key) != want[key]]


def clip(value: Any, state: dict[str, bool]) -> Any:
    """``value`` with every string cut to MAX_TEXT characters and every list to MAX_SERVICES items (MAX_PROBLEMS
    for lists of strings); ``state["truncated"]`` set when anything was cut."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            state["truncated"] = True
            return value[: MAX_TEXT - 3] + "..."
        return value
    if isinstance(value, Mapping):
        return {str(k)[:MAX_TEXT]: clip(v, state) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        limit = MAX_PROBLEMS if value and all(isinstance(v, str) for v in value) else MAX_SERVICES
        if len(value) > limit:
            state["truncated"] = True
        return [clip(v, state) for v in list(value)[:limit]]
    return value


# -------------------------------------------------------------------------------------------------- collection


@dataclass
class Host:
    """What the collector reads from the machine; tests replace each with fixtures."""

    run: Runner
    probe: Probe
    read_text: Callable[[str], str | None]
    fetch: Fetch = http_get
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time
    realpath: Callable[[str], str] = os.path.realpath
    units_in: Callable[[str], list[str]] = own_units


def system_host(timeout: float = 20.0) -> Host:
    def read_text(path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read(1 << 20)
        except OSError:
            return None

    return Host(run=subprocess_runner(timeout), probe=system_probe(timeout), read_text=read_text)


@dataclass
class Inputs:
    """The module's parameters (the playbook passes the inventory's variables)."""

    services: Any
    profiles: Any
    profile_override: Any = None
    serving_gpu: str = ""
    skip_gpu_services_without_gpu: bool = False
    memory_overhead: float | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    health_timeout_s: float = 3.0
    # Services across hosts (service/multihost.py): this host's inventory name, the inventory's groups, every
    # host's fabric endpoint, as preflight passes them.
    host: str = ""
    groups: Mapping[str, Any] | None = None
    fabric: Mapping[str, Any] | None = None


def _name_patterns(profiles: Any) -> dict[str, list[str]]:
    """Profile -> GPU name patterns, from sparkfleet_profiles (what preflight gives detection)."""
    if not isinstance(profiles, Mapping):
        return {}
    return {str(k): list(v.get("gpu_name_patterns") or []) for k, v in profiles.items() if isinstance(v, Mapping)}


def _plan(inputs: Inputs, host: Host, problems: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(detection facts, the plan fact) of this host, made the way preflight makes them (secrets not checked)."""
    facts: dict[str, Any] = {}
    gpu_error = ""
    # An override that names no profile is the plan's problem to report (as in preflight), not detection's.
    given = inputs.profile_override
    override = given if isinstance(given, str) and given in _name_patterns(inputs.profiles) else None
    try:
        facts = detect(host.probe, _name_patterns(inputs.profiles) or None, override, inputs.serving_gpu or None).facts
    except GpuDetectionError as exc:
        gpu_error = str(exc)
        problems.append(f"GPU detection: {exc}")
    plan_inputs = PlanInputs(
        services=inputs.services,
        profiles=inputs.profiles,
        gpu=facts or None,
        gpu_error=gpu_error,
        profile_override=inputs.profile_override,
        skip_gpu_services_without_gpu=inputs.skip_gpu_services_without_gpu,
        bind_address=str(inputs.settings.get("bind_address") or ""),
        realpath=host.realpath,
        check_secrets=False,
        host=inputs.host,
        groups=inputs.groups,
        fabric=inputs.fabric,
    )
    if inputs.memory_overhead is not None:  # else the plan's own default
        plan_inputs.memory_overhead = float(inputs.memory_overhead)
    plan = check_plan(plan_inputs)
    return facts, plan.as_fact()


def _probe(url: str, paths: Sequence[str], host: Host, timeout: float) -> dict[str, Any]:
    result = probe_once(url, paths, host.fetch, timeout)
    last = result["probes"][-1] if result["probes"] else {"path": "", "status": 0, "body": ""}
    if result["healthy"]:
        detail = ", ".join(f"{p['path']} 200" for p in result["probes"])
    else:
        detail = f"{last['path']} -> {last['status'] or str(last['body']).strip() or 'no answer'}"
    return {"checked": True, "healthy": bool(result["healthy"]), "url": url, "detail": detail}


def _group(svc: Mapping[str, Any], dynamo_role: str) -> str:
    """The multi-host service a planned piece belongs to: a service across hosts (its own name: every host lists
    it), or a Dynamo component (its deployment); "" for a service of one host."""
    if isinstance(svc.get("multihost"), Mapping):
        return str(svc["name"])
    return f"dynamo:{svc.get('dynamo_deployment') or ''}" if dynamo_role else ""


def _entry(name: str, svc: Mapping[str, Any] | None, planned: str) -> dict[str, Any]:
    engine = ENGINES.get(str((svc or {}).get("engine") or ""))
    return {
        "name": name,
        "planned": planned,
        "reason": str((svc or {}).get("reason") or ""),
        "engine": engine.name if engine else "",
        "model": str((svc or {}).get("model") or ""),
        "port": (svc or {}).get("port"),
        # A service whose parts run on several hosts: the controller gathers the parts by this name.
        "group": _group(svc or {}, engine.dynamo_role if engine else ""),
        # The hosts of a service across hosts (head first): the controller judges the service as one.
        "group_hosts": [str(h) for h in ((svc or {}).get("multihost") or {}).get("hosts") or []],
        "unit": None,
        "container": None,
        "image": None,
        "health": {"checked": False, "healthy": False, "url": "", "detail": ""},
        "drift": [],
        "problems": [],
        "state": OK,
    }


def _read_units(units: Sequence[str], host: Host, problems: list[str]) -> dict[str, str]:
    """Every unit's block of one ``systemctl show``."""
    if not units:
        return {}
    rc, out, err = host.run(["systemctl", "show", f"--property={SHOW_PROPERTIES}", "--", *units])
    if rc != 0:
        problems.append(f"systemctl show failed (rc {rc}): {err.strip()}")
    return parse_show(out)


def _inspect(argv: Sequence[str], host: Host, problems: list[str]) -> list[dict[str, Any]]:
    """The objects of one ``docker inspect`` (rc 1 and "No such ..." on stderr when some are absent: not a
    problem; docker not answering is)."""
    rc, out, err = host.run(argv)
    found = parse_inspect(out)
    if rc != 0 and not found and "no such" not in err.lower():
        problems.append(f"{' '.join(argv[:3])} failed (rc {rc}): {err.strip()}")
    return found


def _read_images(refs: Sequence[str], docker_bin: str, host: Host, problems: list[str]) -> dict[str, dict[str, Any]]:
    """Planned image reference -> its image on the host (ID, tags, digests), from one ``docker image inspect``."""
    images: dict[str, dict[str, Any]] = {}
    if not refs:
        return images
    # docker prints the images found, skipping the others: match them to the references by tag, digest or ID.
    for obj in _inspect([docker_bin, "image", "inspect", *refs], host, problems):
        summary = image_summary(obj)
        for ref in refs:
            if ref in summary["tags"] or ref in summary["digests"] or ref == summary["id"]:
                images[ref] = summary
    return images


def _planned_detail(entry: dict[str, Any], r: Mapping[str, Any], unit_text: str | None, owned: bool,
                    images: Mapping[str, Mapping[str, Any]]) -> None:  # fmt: skip
    """A planned service's drift (missing, different unit lines, another image) and image state."""
    if unit_text is None or not owned:
        entry["drift"].append("missing")
    else:
        entry["drift"] += [f"different: {k}" for k in unit_differences(unit_text, r["unit"])]
    img = images.get(str(r["image"]))
    running = str((entry["container"] or {}).get("image_id") or "")
    entry["image"] = {
        "planned": str(r["image"]),
        "planned_id": img["id"] if img else "",
        "running_id": running,
        "digest": img["digests"][0] if img and img["digests"] else "",
        "state": _image_state(img, running),
    }
    if entry["image"]["state"] == "other":
        entry["drift"].append("image")


def _entries(plan: Mapping[str, Any], found: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """One entry per service of the plan, then one per unit with sparkfleet's marker the plan does not name."""
    entries = {str(svc["name"]): _entry(str(svc["name"]), svc, str(svc["status"])) for svc in plan["services"]}
    for name in found:
        entries.setdefault(name, _entry(name, None, "extra"))
    return entries


def _probe_targets(
    names: Sequence[str], entries: Mapping[str, dict[str, Any]], rendered: Mapping[str, Mapping[str, Any]],
    found: Mapping[str, str], own: Mapping[str, Mapping[str, str]],
) -> dict[str, tuple[str, list[str]]]:  # fmt: skip
    """Where each service answers: a planned one where the render says, an extra one where its unit's marker
    records the version it runs answers."""
    probes: dict[str, tuple[str, list[str]]] = {}
    for name in names:
        # A worker of a service across hosts may have no health path (its unit running is its health).
        if name in rendered and rendered[name]["health_paths"]:
            probes[name] = (str(rendered[name]["probe_url"]), list(rendered[name]["health_paths"]))
        elif name not in rendered and name in found and entries[name]["planned"] in ("extra", ABSENT):
            marker = read_owned_file(own[name]["unit_path"], name) or {}
            if marker.get("probe_url") and marker.get("health_paths"):
                probes[name] = (str(marker["probe_url"]), [str(p) for p in marker["health_paths"]])
    return probes


def _read_containers(names: Sequence[str], docker_bin: str, host: Host, problems: list[str]) -> dict[str, Any]:
    """Container name -> its summary, from one ``docker inspect`` of every service's container."""
    if not names:
        return {}
    argv = [docker_bin, "inspect", "--type", "container", *names]
    return {str(obj.get("Name") or "").lstrip("/"): container_summary(obj) for obj in _inspect(argv, host, problems)}


def collect(inputs: Inputs, host: Host) -> dict[str, Any]:
    """One host's status document (schema STATUS_SCHEMA, docs/status.md), bounded."""
    problems: list[str] = []
    try:
        settings = Settings.from_mapping(inputs.settings)
    except ValueError as exc:
        problems.append(str(exc))
        settings = Settings()
    facts, plan = _plan(inputs, host, problems)
    profiles = inputs.profiles if isinstance(inputs.profiles, Mapping) else {}
    profile = profiles.get(plan["profile"])
    rendered = {
        str(svc["name"]): render_service(svc, profile=profile, settings=settings).as_dict()
        for svc in plan["services"]
        if svc["status"] == DEPLOY and isinstance(profile, Mapping)
    }
    # Units with sparkfleet's ownership marker, planned or not (those the plan does not name are extra).
    found = {unit_service_name(path): path for path in host.units_in(settings.unit_dir)}
    entries = _entries(plan, found)
    names = list(entries)[:MAX_SERVICES]
    own = {name: names_of(name, settings) for name in names}
    own_unit_files = own_unit_names(settings.unit_dir)
    probes = _probe_targets(names, entries, rendered, found, own)
    # One wave, in parallel: systemctl show, docker inspect of the containers and of the planned images, and every
    # health probe (a probe of a service whose container turns out not to run is not counted).
    refs = sorted({str(r["image"]) for r in rendered.values()})
    with ThreadPoolExecutor(max_workers=min(16, 3 + len(probes))) as pool:
        units = [*(own[n]["unit_name"] for n in names), *own_unit_files]
        f_units = pool.submit(_read_units, units, host, problems)
        f_containers = pool.submit(_read_containers, [own[n]["container_name"] for n in names], settings.docker_bin,
                                   host, problems)  # fmt: skip
        f_images = pool.submit(_read_images, refs, settings.docker_bin, host, problems)
        f_health = {
            n: pool.submit(_probe, url, paths, host, inputs.health_timeout_s) for n, (url, paths) in probes.items()
        }
        blocks, containers, images = f_units.result(), f_containers.result(), f_images.result()
        health = {n: f.result() for n, f in f_health.items()}

    now_mono = host.monotonic()
    for name in names:
        entry, paths = entries[name], own[name]
        entry["unit"] = unit_summary(blocks.get(paths["unit_name"], ""), now_mono)
        entry["container"] = containers.get(paths["container_name"])
        if name in health and (entry["container"] or {}).get("running"):
            entry["health"] = health[name]
        if name in rendered:
            _planned_detail(entry, rendered[name], host.read_text(paths["unit_path"]), name in found, images)
        elif name in found and entry["planned"] in ("extra", ABSENT):
            entry["drift"].append("extra")
        elif entry["planned"] == SKIPPED and plan.get("errors"):
            entry["problems"].append("not planned: the inventory of this host has problems (plan_errors)")
    for name in names:
        _judge(entries[name], name in probes)

    services = [entries[n] for n in names]
    own_units = [{"name": unit_own_name(u), **unit_summary(blocks.get(u, ""), now_mono)} for u in own_unit_files]
    # The gateway is the lab's endpoint: its unit not active is the host's problem (the firewall's too).
    problems += [f"sparkfleet-{u['name']}.service {u['active']}" for u in own_units if u["active"] != "active"]
    if len(entries) > MAX_SERVICES:
        problems.append(f"{len(entries)} services: only the first {MAX_SERVICES} are reported")
    doc = {
        "schema": STATUS_SCHEMA,
        "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(host.now())),
        "profile": plan["profile"],
        "gpu": gpu_memory(facts),
        "services": services,
        "own_units": own_units,
        "plan_errors": list(plan.get("errors") or []),
        "problems": problems,
        "verdict": _verdict(services, problems, plan),
    }
    state = {"truncated": len(entries) > MAX_SERVICES}
    doc = clip(doc, state)
    doc["truncated"] = state["truncated"]
    return doc


def _image_state(image: Mapping[str, Any] | None, running_id: str) -> str:
    """current: the container runs the image the plan names; other: it runs another image ID (a moved tag, a new
    archive loaded but not restarted); absent: the planned image is not on the host; none: no container."""
    if not running_id:
        return "none"
    if image is None:
        return "absent"
    return "current" if image["id"] == running_id else "other"


def _judge(entry: dict[str, Any], probed: bool) -> None:
    """The service's state, and its problems in words (what the table shows)."""
    unit, container, health = entry["unit"] or {}, entry["container"], entry["health"]
    problems: list[str] = entry["problems"]
    if entry["planned"] == SKIPPED:
        entry["state"] = SKIPPED_STATE if not problems else UNHEALTHY
        return
    if entry["planned"] == DEPLOY and "missing" not in entry["drift"]:
        if unit.get("active") != "active":
            last = f" (last exit: {unit['last_exit']})" if unit.get("last_exit") else ""
            problems.append(f"unit {unit.get('active', 'unknown')}{last}")
        if not (container or {}).get("running"):
            problems.append("container " + (container["status"] if container else "absent"))
        elif probed and not health["healthy"]:
            problems.append(f"not healthy: {health['detail']}")
    if entry["drift"]:
        problems.append("drift: " + ", ".join(entry["drift"]))
    unhealthy = any(not p.startswith("drift:") for p in problems)
    entry["state"] = UNHEALTHY if unhealthy else DRIFTED if entry["drift"] else OK


def _verdict(services: Sequence[Mapping[str, Any]], problems: Sequence[str], plan: Mapping[str, Any]) -> str:
    states = {s["state"] for s in services}
    if problems or UNHEALTHY in states:
        return UNHEALTHY
    if DRIFTED in states or plan.get("errors"):
        return DRIFTED
    return OK


def own_unit_names(unit_dir: str) -> list[str]:
    """sparkfleet's own units that other roles install (contracts.RESERVED_SERVICE_NAMES: the gateway, the
    firewall) present in unit_dir. Found by name: only their state is read (the gateway's unit carries no
    ownership marker, and nothing here acts on what it finds)."""
    names = [f"{UNIT_PREFIX}{name}.service" for name in RESERVED_SERVICE_NAMES]
    return [n for n in names if os.path.isfile(os.path.join(unit_dir, n))]


def run_module(module: Any) -> None:
    """The body of the sparkfleet_status module (module: an AnsibleModule or a test fake)."""
    p = module.params
    inputs = Inputs(
        services=p.get("services"),
        profiles=p.get("profiles"),
        profile_override=p.get("profile_override"),
        serving_gpu=str(p.get("serving_gpu") or ""),
        skip_gpu_services_without_gpu=bool(p.get("skip_gpu_services_without_gpu")),
        memory_overhead=p.get("memory_overhead"),
        settings={k: v for k, v in (p.get("settings") or {}).items() if v is not None},
        health_timeout_s=float(p.get("health_timeout_s") or 3),
        host=str(p.get("host") or ""),
        groups=p.get("groups"),
        fabric=p.get("fabric"),
    )
    module.exit_json(changed=False, status=collect(inputs, system_host()))


__all__ = ["collect", "run_module"]
