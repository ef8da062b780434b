"""NVIDIA GPU detection for sparkfleet: parse nvidia-smi, pick the platform profile and the serving GPU.

Used by the ``nvidia_gpu_facts`` module and runnable on its own (standard library only, no relative
imports) so it can be run where Ansible is not installed::

    python3 plugins/module_utils/sparkfleet/gpu.py            # facts JSON for this machine
    python3 plugins/module_utils/sparkfleet/gpu.py --raw      # plus the raw nvidia-smi outputs (a fixture)

Sources, in order of trust:

* ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits``: one line per GPU. Older drivers
  lack ``compute_cap`` (and very old ones ``mig.mode.current``): the query is retried with smaller field sets.
* ``nvidia-smi -x -q``: the CUDA version (the driver's highest supported CUDA) and each GPU's architecture.
  When the XML cannot be had, the CUDA version is read from the banner of plain ``nvidia-smi``.
* ``/proc/meminfo``: usable memory on unified-memory GPUs (GB10), whose framebuffer fields print ``[N/A]``.
* ``/etc/dgx-release``, ``nvidia-ctk --version``, ``/etc/docker/daemon.json``: host facts.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PRIMARY_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "memory.total",
    "memory.used",
    "driver_version",
    "compute_cap",
    "pci.bus_id",
    "mig.mode.current",
)
# Tried in order when the driver rejects a field (compute_cap needs driver 510+, MIG fields 450+).
FALLBACK_FIELDS: tuple[tuple[str, ...], ...] = (
    PRIMARY_FIELDS,
    tuple(f for f in PRIMARY_FIELDS if f != "compute_cap"),
    ("index", "name", "uuid", "memory.total", "memory.used", "driver_version", "pci.bus_id"),
)

# Profile name -> GPU name patterns, in priority order. The role passes the patterns from
# sparkfleet_profiles (group_vars/all/profiles.yml); these are the same values, for the CLI.
DEFAULT_NAME_PATTERNS: dict[str, list[str]] = {
    "dgx_spark": ["GB10"],
    "dgx_station": ["GB300"],
    "hopper": ["H100", "H200", "GH200"],
    "generic_nvidia": [],
    "none": [],
}
GENERIC_PROFILE = "generic_nvidia"
NO_GPU_PROFILE = "none"
# Docker's configuration, read for the nvidia runtime. paths.DOCKER_DAEMON_JSON's value: this file imports nothing of
# the package (it runs on its own, above); tests/unit/test_host_paths.py holds the two equal.
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"

_NOT_AVAILABLE = {"", "n/a", "[n/a]", "not supported", "[not supported]", "unknown error", "[unknown error]"}

NVML_MISMATCH = "driver/library version mismatch"
NO_DRIVER = "couldn't communicate with the nvidia driver"
NO_DEVICES = "no devices were found"
INVALID_FIELD = ("is not a valid field", "invalid combination of input arguments")

Runner = Callable[[Sequence[str]], tuple[int, str, str]]


class GpuDetectionError(Exception):
    """nvidia-smi is present but cannot report: the message says what it means and what to do."""


@dataclass
class Probe:
    """What detection reads from the machine. Tests replace it with fixtures."""

    run: Runner
    which: Callable[[str], str | None]
    read_text: Callable[[str], str | None]
    machine: Callable[[], str] = platform.machine


def subprocess_runner(timeout: float) -> Runner:
    """Real subprocesses in the C locale, each given ``timeout`` s (rc 124), rc 127 when one cannot start.

    Defined here because this file runs standalone (no relative imports); the rest of module_utils imports it.
    """

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        env = dict(os.environ, LC_ALL="C", LANG="C")
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            return 124, "", f"{argv[0]} did not answer within {timeout:g} s"
        except OSError as exc:
            return 127, "", str(exc)
        return proc.returncode, proc.stdout, proc.stderr

    return run


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def system_probe(timeout: float = 30.0, path: str | None = None) -> Probe:
    """A probe of this machine: subprocesses with a timeout, real files."""
    return Probe(
        run=subprocess_runner(timeout),
        which=lambda name: shutil.which(name, path=path),
        read_text=_read_text,
    )


# ---------------------------------------------------------------- parsers (pure)


def clean_value(raw: str) -> str | None:
    """A CSV cell without padding; None for the driver's 'not available' spellings ([N/A], Not Supported)."""
    value = raw.strip()
    return None if value.lower() in _NOT_AVAILABLE else value


def parse_mib(raw: str | None) -> int | None:
    """'81559', '81559 MiB' or '81559.0' -> 81559; None stays None."""
    if raw is None:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(?:MiB)?\s*$", raw)
    return int(float(match.group(1))) if match else None


def parse_query_csv(text: str, fields: Sequence[str]) -> list[dict[str, str | None]]:
    """Rows of ``--query-gpu ... --format=csv,noheader,nounits`` keyed by field name."""
    rows: list[dict[str, str | None]] = []
    for cells in csv.reader((line for line in text.splitlines() if line.strip()), skipinitialspace=True):
        if len(cells) != len(fields):
            raise ValueError(f"nvidia-smi printed {len(cells)} columns where {len(fields)} were asked for: {cells!r}")
        rows.append({name: clean_value(cell) for name, cell in zip(fields, cells, strict=True)})
    return rows


def gpu_from_row(row: Mapping[str, str | None]) -> dict[str, Any]:
    """One GPU's facts from a parsed query row; missing or unsupported fields are None."""
    index = row.get("index")
    memory_total = parse_mib(row.get("memory.total"))
    name = row.get("name") or ""
    return {
        "index": int(index) if index is not None and index.isdigit() else None,
        "name": name,
        "uuid": row.get("uuid"),
        "pci_bus_id": row.get("pci.bus_id"),
        "compute_capability": row.get("compute_cap"),
        "memory_total_mib": memory_total,
        "memory_used_mib": parse_mib(row.get("memory.used")),
        "mig_mode": row.get("mig.mode.current"),
        # GB10 shares LPDDR5X with the CPU: NVML has no framebuffer to report (NOT_SUPPORTED).
        "unified_memory": bool(name) and memory_total is None,
        "architecture": None,
    }


def parse_smi_xml(text: str) -> dict[str, Any]:
    """``nvidia-smi -x -q``: driver and CUDA versions, and per PCI bus id the product architecture."""
    root = ET.fromstring(text)  # noqa: S314 - the local nvidia-smi's own output
    architectures: dict[str, str | None] = {}
    for gpu in root.findall("gpu"):
        bus_id = gpu.get("id") or gpu.findtext("pci/pci_bus_id") or ""
        architectures[bus_id.lower()] = clean_value(gpu.findtext("product_architecture") or "")
    return {
        "driver_version": clean_value(root.findtext("driver_version") or ""),
        "cuda_version": clean_value(root.findtext("cuda_version") or ""),
        "architectures": architectures,
    }


def parse_smi_banner(text: str) -> dict[str, str | None]:
    """The banner of plain ``nvidia-smi``: '| NVIDIA-SMI 580.95.05  Driver Version: 580.95.05  CUDA Version: 13.0 |'."""
    driver = re.search(r"Driver Version:\s*([0-9][0-9.]*)", text)
    cuda = re.search(r"CUDA Version:\s*([0-9][0-9.]*)", text)
    return {"driver_version": driver.group(1) if driver else None, "cuda_version": cuda.group(1) if cuda else None}


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {'MemTotal': kB, 'MemAvailable': kB, ...}."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)", line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def parse_dgx_release(text: str) -> dict[str, str]:
    """/etc/dgx-release (KEY="value" lines, e.g. DGX_NAME, DGX_PRETTY_NAME, DGX_SWBUILD_VERSION)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", line)
        if match:
            values[match.group(1)] = match.group(2).strip().strip("\"'")
    return values


def parse_ctk_version(text: str) -> str | None:
    """'NVIDIA Container Toolkit CLI version 1.17.8' -> '1.17.8'."""
    match = re.search(r"version\s+v?([0-9][0-9A-Za-z.~+-]*)", text)
    return match.group(1) if match else None


def daemon_json_has_nvidia_runtime(text: str | None) -> bool | None:
    """True when /etc/docker/daemon.json declares the 'nvidia' runtime; False when not; None when unreadable JSON."""
    if text is None or not text.strip():
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return None
    runtimes = data.get("runtimes") if isinstance(data, dict) else None
    return isinstance(runtimes, dict) and "nvidia" in runtimes


def explain_smi_failure(rc: int, output: str) -> str:
    """A message for a broken nvidia-smi that says what it means and what to do."""
    low = output.lower()
    first = " ".join(output.strip().splitlines()[:2]) or "(no output)"
    if NVML_MISMATCH in low:
        return (
            "nvidia-smi failed: 'Failed to initialize NVML: Driver/library version mismatch'. The NVIDIA kernel "
            "module that is loaded is a different version from the driver's user-space libraries, which happens "
            "after a driver package upgrade without a reboot. Fix: reboot the host (or unload and reload the nvidia "
            "kernel modules), then run again. sparkfleet never installs or upgrades drivers."
        )
    if NO_DRIVER in low or "failed to initialize nvml" in low:
        return (
            f"nvidia-smi failed: '{first}'. nvidia-smi is installed but the NVIDIA kernel driver is not loaded "
            "(a kernel upgrade without a rebuilt DKMS module, Secure Boot rejecting the module, or a half-installed "
            "driver). Fix: check 'lsmod | grep nvidia' and 'dmesg | grep -i nvidia', reinstall or rebuild the driver "
            "for the running kernel (on DGX OS: apt-get install --reinstall of the DGX driver packages) and reboot. "
            "sparkfleet never installs or upgrades drivers."
        )
    return f"nvidia-smi exited with rc={rc}: '{first}'. Run 'nvidia-smi' on the host to see what the driver reports."


# ------------------------------------------------------------- profile selection


def name_matches(name: str, pattern: str) -> bool:
    """A pattern matches a whole word of the GPU name, case-insensitively ('H100' matches 'NVIDIA H100 80GB HBM3',
    'H200' does not match 'NVIDIA GH200')."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(pattern)}(?![A-Za-z0-9])", name, re.IGNORECASE) is not None


def profile_for_gpu(name: str, name_patterns: Mapping[str, Sequence[str]]) -> str | None:
    for profile, patterns in name_patterns.items():
        if any(name_matches(name, p) for p in patterns or ()):
            return profile
    return None


def find_gpu(gpus: Sequence[Mapping[str, Any]], selector: str | int) -> Mapping[str, Any] | None:
    """A GPU by index (int or digits), UUID, or name pattern (whole words, case-insensitive)."""
    text = str(selector).strip()
    if text.isdigit():
        return next((g for g in gpus if g.get("index") == int(text)), None)
    for gpu in gpus:
        if gpu.get("uuid") and str(gpu["uuid"]).lower() == text.lower():
            return gpu
    return next((g for g in gpus if name_matches(str(g.get("name", "")), text)), None)


def select_profile(
    gpus: Sequence[Mapping[str, Any]],
    name_patterns: Mapping[str, Sequence[str]],
    profile_override: str | None = None,
    serving_gpu: str | int | None = None,
) -> tuple[str, Mapping[str, Any] | None, str]:
    """(profile, serving GPU, how it was chosen).

    The first profile (in name_patterns order) whose patterns match a GPU wins, and the lowest-index GPU it
    matches serves: on a DGX Station with a workstation GPU at index 0 the GB300 is chosen. GPUs that match no
    pattern give ``generic_nvidia`` with the GPU of most memory serving; no GPU gives ``none``.
    """
    chosen: Mapping[str, Any] | None = None
    profile = NO_GPU_PROFILE
    for candidate, patterns in name_patterns.items():
        matching = [g for g in gpus if any(name_matches(str(g.get("name", "")), p) for p in patterns or ())]
        if matching:
            profile, chosen = candidate, min(matching, key=lambda g: g.get("index") or 0)
            break
    else:
        if gpus:
            profile = GENERIC_PROFILE
            chosen = sorted(gpus, key=lambda g: (-(g.get("memory_total_mib") or 0), g.get("index") or 0))[0]
    source = "detected"
    if profile_override:
        profile, source = profile_override, "override"
        if profile == NO_GPU_PROFILE:
            chosen = None
        else:
            patterns = name_patterns.get(profile) or []
            chosen = next((g for g in gpus if any(name_matches(str(g.get("name", "")), p) for p in patterns)), chosen)
    if serving_gpu is not None and str(serving_gpu).strip() != "":
        found = find_gpu(gpus, serving_gpu)
        if found is None:
            listing = ", ".join(f"{g.get('index')}: {g.get('name')}" for g in gpus) or "none"
            raise GpuDetectionError(
                f"serving_gpu '{serving_gpu}' matches no GPU on this host (GPUs: {listing}). "
                "Fix: give an index, a UUID or a word of the GPU name, or leave it empty to choose automatically."
            )
        chosen = found
        source = f"{source}, serving GPU chosen by serving_gpu"
    return profile, chosen, source


# ----------------------------------------------------------------- collection


@dataclass
class Detection:
    """Everything detection found, plus the raw outputs (for fixtures)."""

    facts: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)


def _query_gpus(probe: Probe, smi: str, raw: dict[str, Any]) -> list[dict[str, Any]]:
    last = ""
    for fields in FALLBACK_FIELDS:
        argv = [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]
        rc, out, err = probe.run(argv)
        combined = f"{out}\n{err}"
        if rc == 0:
            raw["query_fields"], raw["query_csv"] = list(fields), out
            try:
                rows = parse_query_csv(out, fields)
            except ValueError as exc:
                raise GpuDetectionError(
                    f"nvidia-smi --query-gpu printed output sparkfleet cannot read ({exc}). Fix: check `nvidia-smi "
                    "--query-gpu=index,name --format=csv` by hand; a driver/library mismatch or a wrapper script "
                    "on the PATH prints such output"
                ) from None
            if not rows:
                raise GpuDetectionError(
                    "nvidia-smi exited 0 but listed no GPU (empty --query-gpu output). Fix: run `nvidia-smi -L`; "
                    "if it lists nothing, the driver sees no device (check `lspci | grep -i nvidia`, then reboot "
                    "or reinstall the driver through DGX OS updates)"
                )
            return [gpu_from_row(row) for row in rows]
        if NO_DEVICES in combined.lower():
            raw["query_fields"], raw["query_csv"] = list(fields), combined
            return []
        if any(marker in combined.lower() for marker in INVALID_FIELD):
            last = combined
            continue
        raise GpuDetectionError(explain_smi_failure(rc, combined))
    raise GpuDetectionError(f"nvidia-smi accepted none of sparkfleet's query field sets; last answer: {last.strip()!r}")


def detect(
    probe: Probe,
    name_patterns: Mapping[str, Sequence[str]] | None = None,
    profile_override: str | None = None,
    serving_gpu: str | int | None = None,
    nvidia_smi: str | None = None,
) -> Detection:
    """Detect this host's NVIDIA GPUs. Raises GpuDetectionError when nvidia-smi exists but cannot report."""
    patterns = dict(name_patterns) if name_patterns is not None else dict(DEFAULT_NAME_PATTERNS)
    raw: dict[str, Any] = {}
    warnings: list[str] = []
    smi = nvidia_smi or probe.which("nvidia-smi")
    gpus: list[dict[str, Any]] = []
    driver_version: str | None = None
    cuda_version: str | None = None
    if smi:
        gpus = _query_gpus(probe, smi, raw)
        driver_version = gpu_driver(raw)
        if gpus:
            rc, out, err = probe.run([smi, "-x", "-q"])
            xml_facts: dict[str, Any] | None = None
            if rc == 0:
                raw["xml"] = out
                try:
                    xml_facts = parse_smi_xml(out)
                except ET.ParseError as exc:
                    warnings.append(f"nvidia-smi -x -q printed XML that does not parse ({exc}); used the banner")
            if xml_facts is None:
                rc, out, err = probe.run([smi])
                raw["banner"] = out
                xml_facts = {**parse_smi_banner(out), "architectures": {}}
            cuda_version = xml_facts.get("cuda_version")
            driver_version = driver_version or xml_facts.get("driver_version")
            for gpu in gpus:
                gpu["architecture"] = xml_facts["architectures"].get(str(gpu.get("pci_bus_id") or "").lower())

    profile, chosen, source = select_profile(gpus, patterns, profile_override, serving_gpu)

    meminfo_text = probe.read_text("/proc/meminfo")
    meminfo = parse_meminfo(meminfo_text) if meminfo_text else {}
    if meminfo_text:
        raw["meminfo"] = meminfo_text
    mem_total = meminfo["MemTotal"] // 1024 if "MemTotal" in meminfo else None
    mem_available = meminfo["MemAvailable"] // 1024 if "MemAvailable" in meminfo else None
    unified = bool(chosen and chosen.get("unified_memory"))
    if chosen is None:
        usable, usable_source = None, "no serving GPU"
    elif unified:
        usable, usable_source = mem_available, "/proc/meminfo MemAvailable (unified memory shared with the OS)"
        if usable is None:
            warnings.append("unified-memory GPU but /proc/meminfo has no MemAvailable: usable memory unknown")
    else:
        usable, usable_source = chosen.get("memory_total_mib"), "nvidia-smi memory.total of the serving GPU"

    release_text = probe.read_text("/etc/dgx-release")
    dgx_release = parse_dgx_release(release_text) if release_text is not None else None
    if release_text is not None:
        raw["dgx_release"] = release_text

    toolkit_version: str | None = None
    ctk = probe.which("nvidia-ctk")
    if ctk:
        rc, out, err = probe.run([ctk, "--version"])
        raw["nvidia_ctk_version"] = out + err
        toolkit_version = parse_ctk_version(out + err) if rc == 0 else None
    daemon_text = probe.read_text(DOCKER_DAEMON_JSON)
    nvidia_runtime = daemon_json_has_nvidia_runtime(daemon_text)
    if nvidia_runtime is None:
        warnings.append(f"{DOCKER_DAEMON_JSON} is not valid JSON: dockerd will refuse to start with it")

    no_gpu_reason = None
    if not gpus:
        no_gpu_reason = (
            "nvidia-smi is not on the PATH (no NVIDIA driver installed)"
            if not smi
            else "nvidia-smi reports 'No devices were found' (the driver is loaded but sees no GPU)"
        )
    facts: dict[str, Any] = {
        "profile": profile,
        "no_gpu_reason": no_gpu_reason,
        "profile_source": source,
        "serving_gpu": dict(chosen) if chosen is not None else None,
        "gpus": gpus,
        "gpu_count": len(gpus),
        "driver_version": driver_version,
        "cuda_version": cuda_version,
        "architecture": probe.machine(),
        "dgx_release": dgx_release,
        "unified_memory": unified,
        "usable_memory_mib": usable,
        "usable_memory_source": usable_source,
        "system_memory_total_mib": mem_total,
        "system_memory_available_mib": mem_available,
        "container_toolkit_version": toolkit_version,
        "docker_nvidia_runtime": bool(nvidia_runtime),
        "nvidia_smi": smi,
        "warnings": warnings,
    }
    return Detection(facts=facts, raw=raw)


def gpu_driver(raw: Mapping[str, Any]) -> str | None:
    """The driver version from the query output (the same on every row)."""
    fields = raw.get("query_fields") or []
    if "driver_version" not in fields or not raw.get("query_csv"):
        return None
    try:
        rows = parse_query_csv(str(raw["query_csv"]), fields)
    except ValueError:
        return None
    return next((r["driver_version"] for r in rows if r.get("driver_version")), None)


class ModuleLike(Protocol):
    """The parts of AnsibleModule that run_module uses (tests pass a fake whose exit/fail raise)."""

    params: dict[str, Any]

    def exit_json(self, **kwargs: Any) -> None: ...

    def fail_json(self, msg: str, **kwargs: Any) -> None: ...

    def warn(self, warning: str) -> None: ...


def check_name_patterns(value: Any) -> dict[str, list[str]]:
    """name_patterns must map profile names to lists of strings."""
    if not isinstance(value, Mapping):
        raise GpuDetectionError("name_patterns must be a dict of profile name -> list of GPU name patterns")
    patterns: dict[str, list[str]] = {}
    for profile, given in value.items():
        items = [] if given is None else given
        if isinstance(items, str) or not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
            raise GpuDetectionError(
                f"name_patterns.{profile} must be a list of strings (GPU name words such as 'GB10'), got {items!r}"
            )
        patterns[str(profile)] = [i for i in items if i.strip()]
    return patterns


def run_module(module: ModuleLike) -> None:
    """The body of the nvidia_gpu_facts module."""
    params = module.params
    try:
        patterns = check_name_patterns(params.get("name_patterns") or DEFAULT_NAME_PATTERNS)
        override = params.get("profile_override") or None
        known = [*patterns, *(p for p in (GENERIC_PROFILE, NO_GPU_PROFILE) if p not in patterns)]
        if override is not None and override not in known:
            raise GpuDetectionError(
                f"profile_override '{override}' is not a known profile. Fix: use one of {', '.join(known)}."
            )
        detection = detect(
            system_probe(float(params.get("timeout") or 30)),
            name_patterns=patterns,
            profile_override=override,
            serving_gpu=params.get("serving_gpu"),
            nvidia_smi=params.get("nvidia_smi"),
        )
    except GpuDetectionError as exc:
        module.fail_json(msg=str(exc))
        return
    facts = detection.facts
    for warning in facts["warnings"]:
        module.warn(warning)
    if params.get("required") and not facts["gpus"]:
        where = facts["nvidia_smi"] or "not on PATH"
        module.fail_json(
            msg=f"required=true but no NVIDIA GPU was found (nvidia-smi: {where}). Fix: check that the host has "
            "an NVIDIA GPU and driver ('nvidia-smi' lists it), or set required=false to continue with profile none.",
        )
        return
    module.exit_json(changed=False, ansible_facts={"nvidia_gpu": facts})


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print this machine's facts as JSON (``--raw`` adds nvidia-smi's outputs, for a fixture)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Print sparkfleet's NVIDIA GPU facts for this machine as JSON.")
    parser.add_argument("--raw", action="store_true", help="include nvidia-smi's raw outputs (to save as a fixture)")
    parser.add_argument("--profile-override", default=None)
    parser.add_argument("--serving-gpu", default=None, help="index, UUID or name word")
    parser.add_argument("--required", action="store_true", help="exit 1 when no GPU is found")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        detection = detect(
            system_probe(args.timeout), profile_override=args.profile_override, serving_gpu=args.serving_gpu
        )
    except GpuDetectionError as exc:
        sys.stdout.write(json.dumps({"failed": True, "msg": str(exc)}, indent=2) + "\n")
        return 2
    out: dict[str, Any] = {"nvidia_gpu": detection.facts}
    if args.raw:
        out["raw"] = detection.raw
    sys.stdout.write(json.dumps(out, indent=2, sort_keys=True) + "\n")
    if args.required and not detection.facts["gpus"]:
        sys.stderr.write("no NVIDIA GPU found\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
