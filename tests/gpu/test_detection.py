"""GPU detection (plugins/module_utils/sparkfleet/gpu.py) against the real nvidia-smi of the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import gpu
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.gpu import DEFAULT_NAME_PATTERNS, detect

from tests.conftest import ROOT
from tests.gpu.conftest import ON_CPU

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(ON_CPU, reason="SPARKFLEET_GPU_DEVICE=cpu: no GPU to detect"),
]


def test_detection_finds_the_gpu_and_its_profile() -> None:
    facts = detect(gpu.system_probe()).facts
    assert facts["gpus"], "nvidia-smi lists a GPU, detection must too"
    assert facts["profile"] in DEFAULT_NAME_PATTERNS
    assert facts["driver_version"] and facts["driver_version"][0].isdigit()
    assert facts["cuda_version"] and facts["cuda_version"][0].isdigit()
    serving = facts["serving_gpu"]
    assert serving in facts["gpus"]
    assert serving["uuid"].startswith("GPU-")
    assert serving["compute_capability"] and serving["compute_capability"][0].isdigit()
    assert serving["architecture"], "nvidia-smi -x -q names the architecture"
    assert facts["usable_memory_mib"] > 1000
    if any(w in serving["name"] for w in ("H100", "H200")):
        assert facts["profile"] == "hopper"
        assert serving["architecture"] == "Hopper"
        assert serving["compute_capability"] == "9.0"


def test_cli_capture_replays_to_the_same_facts(out_dir: Path) -> None:
    """`gpu.py --raw` (what a fixture is made of) re-parses to the facts it printed; saved for the fixtures."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "plugins/module_utils/sparkfleet/gpu.py"), "--raw", "--required"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = json.loads(proc.stdout)
    (out_dir / "gpu-device-run.json").write_text(proc.stdout)
    raw, facts = saved["raw"], saved["nvidia_gpu"]
    rows = gpu.parse_query_csv(raw["query_csv"], raw["query_fields"])
    assert [gpu.gpu_from_row(r)["uuid"] for r in rows] == [g["uuid"] for g in facts["gpus"]]
    assert gpu.parse_smi_xml(raw["xml"])["cuda_version"] == facts["cuda_version"]
