"""The GPU collector (plugins/module_utils/sparkfleet/metrics/gpu.py) against the machine's real nvidia-smi.

Saves what it read and what it wrote to $SPARKFLEET_GPU_OUT (reports/gpu): gpu-metrics-raw.txt and gpu-metrics.prom,
to be kept as fixtures (tests/fixtures/metrics/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.gpu.conftest import ON_CPU

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(ON_CPU, reason="SPARKFLEET_GPU_DEVICE=cpu: no GPU to read"),
    pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no nvidia-smi on this machine"),
]
COLLECTOR = ROOT / "plugins" / "module_utils" / "sparkfleet" / "metrics" / "gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(COLLECTOR), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_collector_reads_every_gpu_and_writes_the_textfile(out_dir: Path, tmp_path: Path) -> None:
    raw = _run("--raw")
    assert raw.returncode == 0, raw.stdout + raw.stderr
    (out_dir / "gpu-metrics-raw.txt").write_text(raw.stdout)

    proc = _run("--textfile-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "sparkfleet_gpu.prom").read_text()
    (out_dir / "gpu-metrics.prom").write_text(text)
    lines = text.splitlines()
    assert "sparkfleet_gpu_collector_success 1" in lines
    gpus = [line for line in lines if line.startswith("sparkfleet_gpu_info{")]
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    assert len(gpus) == len([line for line in listed.splitlines() if line.startswith("GPU ")])
    assert any(line.startswith("sparkfleet_gpu_temperature_celsius{") for line in lines)
    # Memory: from NVML on a discrete GPU, from /proc/meminfo where the framebuffer is not supported (GB10).
    assert any(line.startswith("sparkfleet_gpu_memory_total_bytes{") for line in lines)
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
