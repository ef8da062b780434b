"""nvidia_gpu_facts: parsers on real nvidia-smi captures, profile choice, failures, the module entry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import gpu
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.gpu import (
    DEFAULT_NAME_PATTERNS,
    FALLBACK_FIELDS,
    PRIMARY_FIELDS,
    GpuDetectionError,
    Probe,
    detect,
)

from tests.conftest import FIXTURES, ROOT
from tests.unit.module_fakes import ExitJson, FailJson

SMI = FIXTURES / "nvidia-smi"


@dataclass
class RecordingProbe(Probe):
    """A probe that also keeps the commands it was asked to run."""

    calls: list[tuple[str, ...]] = field(default_factory=list)


H100_CSV = (SMI / "h100-80gb-hbm3.query.csv").read_text()
H100_XML = (SMI / "h100-80gb-hbm3.xml").read_text()
GB10_CSV = (SMI / "gb10-dgx-spark.query.csv").read_text()
GB10_FIELDS = ("index", "name", "memory.total", "memory.used", "memory.free")
PRIMARY = ",".join(PRIMARY_FIELDS)
NO_COMPUTE_CAP = ",".join(FALLBACK_FIELDS[1])

# Built to the facts published in tests/fixtures/nvidia-smi/README.md (no capture of these machines exists).
GB10_FULL = (
    "0, NVIDIA GB10, GPU-0b10ab10-0000-0000-0000-000000000010, [N/A], [N/A], 580.95.05, 12.1, 0000000F:01:00.0, [N/A]\n"
)
GB10_MEMINFO = "MemTotal:       127600748 kB\nMemFree:        90000000 kB\nMemAvailable:   119537664 kB\n"
STATION_CSV = (
    "0, NVIDIA RTX PRO 6000 Blackwell Workstation Edition, GPU-11111111-2222-3333-4444-555555555555, 97887, 512,"
    " 580.82.07, 12.0, 00000000:01:00.0, [N/A]\n"
    "1, NVIDIA GB300, GPU-66666666-7777-8888-9999-000000000000, 284208, 0, 580.82.07, 10.3, 00000009:01:00.0,"
    " Disabled\n"
)
H100_MIG_CSV = H100_CSV.replace("Disabled", "Enabled")
NVML_MISMATCH = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.95\n"
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
    "NVIDIA driver is installed and running.\n"
)
BANNER = (
    "+-----------------------------------------------------------------------------------------+\n"
    "| NVIDIA-SMI 580.95.05              Driver Version: 580.95.05      CUDA Version: 13.0     |\n"
)


def fake_probe(
    *,
    query: Mapping[str, tuple[int, str, str]] | None = None,
    xml: tuple[int, str, str] = (0, "", ""),
    banner: tuple[int, str, str] = (0, BANNER, ""),
    files: Mapping[str, str] | None = None,
    smi: str | None = "/usr/bin/nvidia-smi",
    ctk: tuple[int, str, str] | None = None,
    machine: str = "x86_64",
) -> RecordingProbe:
    """A probe answering from fixtures: query maps the --query-gpu field list to (rc, stdout, stderr)."""
    calls: list[tuple[str, ...]] = []
    files = dict(files or {})

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        calls.append(tuple(argv))
        args = list(argv[1:])
        if argv[0].endswith("nvidia-ctk"):
            assert ctk is not None
            return ctk
        if args and args[0].startswith("--query-gpu="):
            fields = args[0].split("=", 1)[1]
            return (query or {}).get(fields, (2, f'Field "{fields}" is not a valid field to query.\n', ""))
        if args == ["-x", "-q"]:
            return xml
        if args == []:
            return banner
        raise AssertionError(f"unexpected command {argv}")

    def which(name: str) -> str | None:
        if name == "nvidia-smi":
            return smi
        return "/usr/bin/nvidia-ctk" if name == "nvidia-ctk" and ctk is not None else None

    return RecordingProbe(run=run, which=which, read_text=files.get, machine=lambda: machine, calls=calls)


# ----------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("81559", "81559"),
        (" [N/A]", None),
        ("N/A", None),
        ("Not Supported", None),
        ("[Not Supported]", None),
        ("", None),
    ],
)
def test_clean_value(raw: str, expected: str | None) -> None:
    assert gpu.clean_value(raw) == expected


@pytest.mark.parametrize(
    ("raw", "mib"), [("81559", 81559), ("81559 MiB", 81559), ("1024.0", 1024), (None, None), ("x", None)]
)
def test_parse_mib(raw: str | None, mib: int | None) -> None:
    assert gpu.parse_mib(raw) == mib


def test_parse_real_h100_capture() -> None:
    rows = gpu.parse_query_csv(H100_CSV, PRIMARY_FIELDS)
    assert len(rows) == 1
    g = gpu.gpu_from_row(rows[0])
    assert g == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-a7e8dfef-db19-65d5-4e9e-199c732d320a",
        "pci_bus_id": "00000000:00:06.0",
        "compute_capability": "9.0",
        "memory_total_mib": 81559,
        "memory_used_mib": 0,
        "mig_mode": "Disabled",
        "unified_memory": False,
        "architecture": None,
    }


def test_parse_real_gb10_capture_memory_is_null() -> None:
    rows = gpu.parse_query_csv(GB10_CSV, GB10_FIELDS)
    g = gpu.gpu_from_row(rows[0])
    assert g["name"] == "NVIDIA GB10"
    assert g["memory_total_mib"] is None
    assert g["memory_used_mib"] is None
    assert rows[0]["memory.free"] is None
    assert g["unified_memory"] is True


def test_parse_query_csv_rejects_wrong_column_count() -> None:
    with pytest.raises(ValueError, match="9 were asked for"):
        gpu.parse_query_csv(GB10_CSV, PRIMARY_FIELDS)


def test_parse_real_xml() -> None:
    facts = gpu.parse_smi_xml(H100_XML)
    assert facts["driver_version"] == "580.159.04"
    assert facts["cuda_version"] == "13.0"
    assert facts["architectures"] == {"00000000:00:06.0": "Hopper"}


def test_parse_banner() -> None:
    assert gpu.parse_smi_banner(BANNER) == {"driver_version": "580.95.05", "cuda_version": "13.0"}
    assert gpu.parse_smi_banner("garbage") == {"driver_version": None, "cuda_version": None}


def test_parse_meminfo_and_release_and_ctk() -> None:
    assert gpu.parse_meminfo(GB10_MEMINFO)["MemTotal"] == 127600748
    release = gpu.parse_dgx_release(
        'DGX_NAME="DGX Spark"\nDGX_PRETTY_NAME="NVIDIA DGX Spark"\nDGX_SWBUILD_VERSION="7.2.3"\n'
    )
    assert release == {"DGX_NAME": "DGX Spark", "DGX_PRETTY_NAME": "NVIDIA DGX Spark", "DGX_SWBUILD_VERSION": "7.2.3"}
    assert gpu.parse_ctk_version("NVIDIA Container Toolkit CLI version 1.17.8\ncommit: abc\n") == "1.17.8"
    assert gpu.parse_ctk_version("nothing") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, False),
        ("", False),
        ('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}', True),
        ('{"log-driver": "json-file"}', False),
        ('{"runtimes": ["nvidia"]}', False),
        ("{not json", None),
    ],
)
def test_daemon_json_nvidia_runtime(text: str | None, expected: bool | None) -> None:
    assert gpu.daemon_json_has_nvidia_runtime(text) is expected


@pytest.mark.parametrize(
    ("name", "pattern", "hit"),
    [
        ("NVIDIA H100 80GB HBM3", "H100", True),
        ("NVIDIA H100 PCIe", "h100", True),
        ("NVIDIA GH200 480GB", "H200", False),
        ("NVIDIA GH200 480GB", "GH200", True),
        ("NVIDIA GB10", "GB10", True),
        ("NVIDIA GB100", "GB10", False),
        ("NVIDIA GB300", "GB300", True),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "GB300", False),
    ],
)
def test_name_matches_whole_words(name: str, pattern: str, hit: bool) -> None:
    assert gpu.name_matches(name, pattern) is hit


# ---------------------------------------------------------------- detection


def test_detect_h100_real_capture() -> None:
    probe = fake_probe(query={PRIMARY: (0, H100_CSV, "")}, xml=(0, H100_XML, ""), files={"/proc/meminfo": GB10_MEMINFO})
    facts = detect(probe).facts
    assert facts["profile"] == "hopper"
    assert facts["profile_source"] == "detected"
    assert facts["driver_version"] == "580.159.04"
    assert facts["cuda_version"] == "13.0"
    assert facts["serving_gpu"]["index"] == 0
    assert facts["serving_gpu"]["architecture"] == "Hopper"
    assert facts["usable_memory_mib"] == 81559
    assert facts["unified_memory"] is False
    assert facts["dgx_release"] is None
    assert facts["container_toolkit_version"] is None
    assert facts["docker_nvidia_runtime"] is False
    assert facts["warnings"] == []


def test_detect_gb10_uses_meminfo_available() -> None:
    probe = fake_probe(
        query={PRIMARY: (0, GB10_FULL, "")},
        xml=(1, "", "boom"),
        files={
            "/proc/meminfo": GB10_MEMINFO,
            "/etc/dgx-release": 'DGX_NAME="DGX Spark"\n',
            "/etc/docker/daemon.json": '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}',
        },
        ctk=(0, "NVIDIA Container Toolkit CLI version 1.17.8\n", ""),
        machine="aarch64",
    )
    facts = detect(probe).facts
    assert facts["profile"] == "dgx_spark"
    assert facts["unified_memory"] is True
    assert facts["usable_memory_mib"] == 119537664 // 1024
    assert "MemAvailable" in facts["usable_memory_source"]
    assert facts["system_memory_total_mib"] == 127600748 // 1024
    assert facts["serving_gpu"]["compute_capability"] == "12.1"
    assert facts["serving_gpu"]["memory_total_mib"] is None
    assert facts["cuda_version"] == "13.0"  # from the banner, the XML failed
    assert facts["architecture"] == "aarch64"
    assert facts["dgx_release"] == {"DGX_NAME": "DGX Spark"}
    assert facts["container_toolkit_version"] == "1.17.8"
    assert facts["docker_nvidia_runtime"] is True


def test_detect_station_chooses_gb300_at_index_1() -> None:
    facts = detect(fake_probe(query={PRIMARY: (0, STATION_CSV, "")}, banner=(0, BANNER, ""))).facts
    assert facts["profile"] == "dgx_station"
    assert facts["gpu_count"] == 2
    assert facts["serving_gpu"]["index"] == 1
    assert facts["serving_gpu"]["name"] == "NVIDIA GB300"
    assert facts["usable_memory_mib"] == 284208
    assert facts["gpus"][0]["mig_mode"] is None


def test_detect_mig_enabled_is_reported() -> None:
    facts = detect(fake_probe(query={PRIMARY: (0, H100_MIG_CSV, "")}, xml=(0, H100_XML, ""))).facts
    assert facts["serving_gpu"]["mig_mode"] == "Enabled"


def test_detect_generic_gpu_picks_largest_memory() -> None:
    csv = (
        "0, NVIDIA GeForce RTX 4060, GPU-a, 8188, 1, 550.54.14, 8.9, 00000000:01:00.0, [N/A]\n"
        "1, NVIDIA L40S, GPU-b, 46068, 1, 550.54.14, 8.9, 00000000:02:00.0, Disabled\n"
    )
    facts = detect(fake_probe(query={PRIMARY: (0, csv, "")})).facts
    assert facts["profile"] == "generic_nvidia"
    assert facts["serving_gpu"]["name"] == "NVIDIA L40S"


def test_detect_old_driver_falls_back_without_compute_cap() -> None:
    row = "0, Tesla V100-SXM2-16GB, GPU-c, 16160, 0, 470.57.02, 00000000:00:1E.0, [N/A]\n"
    probe = fake_probe(query={NO_COMPUTE_CAP: (0, row, "")})
    facts = detect(probe).facts
    assert facts["gpus"][0]["compute_capability"] is None
    assert facts["gpus"][0]["memory_total_mib"] == 16160
    assert facts["driver_version"] == "470.57.02"
    queried = [c[1] for c in probe.calls if len(c) > 1 and c[1].startswith("--query-gpu")]
    assert queried == [f"--query-gpu={PRIMARY}", f"--query-gpu={NO_COMPUTE_CAP}"]


@pytest.mark.parametrize(
    ("smi", "query", "gpus"),
    [
        (None, {}, 0),  # nvidia-smi not installed
        ("/usr/bin/nvidia-smi", {PRIMARY: (6, "No devices were found\n", "")}, 0),
    ],
)
def test_detect_no_gpu_is_profile_none(smi: str | None, query: dict[str, Any], gpus: int) -> None:
    facts = detect(fake_probe(smi=smi, query=query, files={"/proc/meminfo": GB10_MEMINFO})).facts
    assert facts["profile"] == "none"
    assert facts["gpus"] == []
    assert facts["gpu_count"] == gpus
    assert facts["serving_gpu"] is None
    assert facts["usable_memory_mib"] is None
    assert facts["no_gpu_reason"] == (
        "nvidia-smi is not on the PATH (no NVIDIA driver installed)"
        if smi is None
        else "nvidia-smi reports 'No devices were found' (the driver is loaded but sees no GPU)"
    )


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("0, NVIDIA H100\n", ["cannot read", "2 columns where", "driver/library mismatch or a wrapper"]),
        ("", ["exited 0 but listed no GPU", "nvidia-smi -L"]),
        ("\n\n", ["exited 0 but listed no GPU"]),
    ],
)
def test_unexpected_nvidia_smi_output_is_a_clear_message_not_a_traceback(output: str, words: list[str]) -> None:
    with pytest.raises(GpuDetectionError) as caught:
        detect(fake_probe(query={PRIMARY: (0, output, "")}))
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("output", "words"),
    [
        (NVML_MISMATCH, ["version mismatch", "reboot", "never installs"]),
        (NO_DRIVER, ["kernel driver is not loaded", "lsmod", "dmesg"]),
        ("Unable to determine the device handle for GPU0000:01:00.0: Unknown Error\n", ["rc=15", "Unknown Error"]),
    ],
)
def test_detect_broken_driver_fails_with_meaning_and_fix(output: str, words: list[str]) -> None:
    rc = 15 if "Unknown" in output else 18
    with pytest.raises(GpuDetectionError) as caught:
        detect(fake_probe(query={PRIMARY: (rc, output, "")}))
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("override", "serving", "profile", "index"),
    [
        ("hopper", None, "hopper", 1),  # override keeps the GPU its patterns choose (none match: detected)
        ("none", None, "none", None),
        (None, "0", "dgx_station", 0),
        (None, "RTX", "dgx_station", 0),
        (None, "GPU-66666666-7777-8888-9999-000000000000", "dgx_station", 1),
        ("generic_nvidia", "1", "generic_nvidia", 1),
    ],
)
def test_overrides(override: str | None, serving: str | None, profile: str, index: int | None) -> None:
    facts = detect(
        fake_probe(query={PRIMARY: (0, STATION_CSV, "")}), profile_override=override, serving_gpu=serving
    ).facts
    assert facts["profile"] == profile
    assert (facts["serving_gpu"] or {}).get("index") == index
    if override:
        assert facts["profile_source"].startswith("override")


def test_serving_gpu_that_does_not_exist_fails() -> None:
    with pytest.raises(GpuDetectionError, match="matches no GPU"):
        detect(fake_probe(query={PRIMARY: (0, STATION_CSV, "")}), serving_gpu="7")


def test_custom_name_patterns_in_priority_order() -> None:
    patterns = {"workstation": ["RTX"], "dgx_station": ["GB300"]}
    facts = detect(fake_probe(query={PRIMARY: (0, STATION_CSV, "")}), name_patterns=patterns).facts
    assert facts["profile"] == "workstation"
    assert facts["serving_gpu"]["index"] == 0


def test_default_patterns_match_group_vars_profiles() -> None:
    import yaml

    profiles = yaml.safe_load((ROOT / "group_vars" / "all" / "profiles.yml").read_text())["sparkfleet_profiles"]
    assert {k: v["gpu_name_patterns"] for k, v in profiles.items()} == DEFAULT_NAME_PATTERNS


# ------------------------------------------------------------- module entry


class FakeModule:
    def __init__(self, **params: Any) -> None:
        self.params = {"required": False, "name_patterns": DEFAULT_NAME_PATTERNS, "timeout": 30, **params}
        self.warnings: list[str] = []

    def exit_json(self, **kwargs: Any) -> None:
        raise ExitJson(kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> None:
        raise FailJson({"msg": msg, **kwargs})

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)


FAKE_SMI = """#!{python}
import sys
from pathlib import Path
fixtures = Path({fixtures!r})
args = sys.argv[1:]
mode = {mode!r}
if mode == "mismatch":
    sys.stdout.write("Failed to initialize NVML: Driver/library version mismatch\\n")
    sys.exit(18)
if args and args[0].startswith("--query-gpu="):
    sys.stdout.write((fixtures / "h100-80gb-hbm3.query.csv").read_text())
elif args == ["-x", "-q"]:
    sys.stdout.write((fixtures / "h100-80gb-hbm3.xml").read_text())
else:
    sys.exit(2)
"""


@pytest.fixture
def fake_smi_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A directory with an executable nvidia-smi answering from the H100 capture, first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(python=sys.executable, fixtures=str(SMI), mode=getattr(request, "param", "h100")))
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


def test_module_exit_with_fake_nvidia_smi(fake_smi_path: Path) -> None:
    with pytest.raises(ExitJson) as caught:
        gpu.run_module(FakeModule())
    result = caught.value.args[0]
    assert result["changed"] is False
    facts = result["ansible_facts"]["nvidia_gpu"]
    assert facts["nvidia_smi"] == str(fake_smi_path / "nvidia-smi")
    assert facts["profile"] == "hopper"
    assert facts["cuda_version"] == "13.0"
    assert facts["gpus"][0]["architecture"] == "Hopper"


@pytest.mark.parametrize("fake_smi_path", ["mismatch"], indirect=True)
def test_module_fails_on_nvml_mismatch(fake_smi_path: Path) -> None:
    with pytest.raises(FailJson, match="reboot the host"):
        gpu.run_module(FakeModule())


def test_module_required_without_gpu_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    with pytest.raises(FailJson, match="required=true but no NVIDIA GPU"):
        gpu.run_module(FakeModule(required=True))
    with pytest.raises(ExitJson) as caught:
        gpu.run_module(FakeModule())
    assert caught.value.args[0]["ansible_facts"]["nvidia_gpu"]["profile"] == "none"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"profile_override": "dgx_sparkk"}, "profile_override 'dgx_sparkk' is not a known profile"),
        ({"name_patterns": {"dgx_spark": "GB10"}}, "name_patterns.dgx_spark must be a list"),
    ],
)
def test_module_rejects_bad_params(
    params: dict[str, Any], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FailJson, match=message):
        gpu.run_module(FakeModule(**params))


def test_module_file_runs_as_ansible_runs_it(fake_smi_path: Path, tmp_path: Path) -> None:
    """The real module file, in a subprocess with an args file, as Ansible would start it."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"serving_gpu": "H100", "_ansible_check_mode": True}}))
    boot = (
        "import runpy, sys; sys.path.insert(0, {root!r}); import tests.conftest; "
        "runpy.run_path({module!r}, run_name='__main__')"
    ).format(root=str(ROOT), module=str(ROOT / "plugins" / "modules" / "nvidia_gpu_facts.py"))
    proc = subprocess.run(
        [sys.executable, "-c", boot, str(args)], capture_output=True, text=True, timeout=60, check=False
    )
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert result["changed"] is False
    assert result["ansible_facts"]["nvidia_gpu"]["serving_gpu"]["uuid"] == "GPU-a7e8dfef-db19-65d5-4e9e-199c732d320a"


def test_cli_runs_standalone_without_ansible(fake_smi_path: Path) -> None:
    """gpu.py as a script, with -I (no site-packages, no ansible): what the lead runs on a GPU machine."""
    script = ROOT / "plugins" / "module_utils" / "sparkfleet" / "gpu.py"
    proc = subprocess.run(
        [sys.executable, "-I", str(script), "--raw"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["nvidia_gpu"]["profile"] == "hopper"
    assert out["raw"]["query_csv"] == H100_CSV


# ----------------------------------------------- captures from real GPU machines


def _replay(raw: Mapping[str, Any], facts: Mapping[str, Any]) -> Probe:
    query = {",".join(raw["query_fields"]): (0, raw["query_csv"], "")}
    files = {
        "/proc/meminfo": raw.get("meminfo", ""),
        **({"/etc/dgx-release": raw["dgx_release"]} if "dgx_release" in raw else {}),
    }
    return fake_probe(
        query=query,
        xml=(0, raw["xml"], "") if "xml" in raw else (1, "", ""),
        banner=(0, raw.get("banner", ""), ""),
        files=files,
        smi=facts["nvidia_smi"],
        machine=facts["architecture"],
    )


DEVICE_RUNS = sorted(SMI.glob("*-device-run.json"))


@pytest.mark.parametrize("path", DEVICE_RUNS, ids=[p.name for p in DEVICE_RUNS])
def test_device_run_captures_parse_the_same(path: Path) -> None:
    """`gpu.py --raw` output saved from a real GPU machine: re-parsing its raw outputs gives its facts."""
    saved = json.loads(path.read_text())
    facts = saved["nvidia_gpu"]
    replayed = detect(_replay(saved["raw"], facts)).facts
    for key in (
        "profile",
        "gpus",
        "serving_gpu",
        "driver_version",
        "cuda_version",
        "usable_memory_mib",
        "unified_memory",
    ):
        assert replayed[key] == facts[key], key
    assert facts["gpus"], "a device run must have found a GPU"


# ------------------------------------------------------------------ real GPU


@pytest.mark.gpu
def test_real_nvidia_smi_parse_is_sane() -> None:
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no nvidia-smi on this machine")
    facts = detect(gpu.system_probe()).facts
    if not facts["gpus"]:
        pytest.skip("nvidia-smi finds no GPU")
    assert facts["profile"] in DEFAULT_NAME_PATTERNS
    assert facts["driver_version"] and facts["driver_version"][0].isdigit()
    assert facts["cuda_version"] and facts["cuda_version"][0].isdigit()
    for g in facts["gpus"]:
        assert isinstance(g["index"], int)
        assert g["name"].startswith("NVIDIA") or g["name"].startswith("Tesla")
        assert g["uuid"].startswith("GPU-")
        assert g["unified_memory"] or g["memory_total_mib"] > 1000
    assert facts["serving_gpu"] in facts["gpus"]
    assert facts["usable_memory_mib"] > 1000
