"""The GPU collector (module_utils/sparkfleet/metrics/gpu.py) on nvidia-smi and /proc/meminfo fixtures."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.metrics import gpu

from tests.conftest import FIXTURES, ROOT
from tests.unit.metrics_helpers import promtool_path


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_path()


HERE = FIXTURES / "metrics"
GB10_CSV = (HERE / "gb10.query.csv").read_text()
H200_CSV = (HERE / "h200.query.csv").read_text()
GB10_MEMINFO = (HERE / "gb10.meminfo").read_text()
COLLECTOR = ROOT / "plugins" / "module_utils" / "sparkfleet" / "metrics" / "gpu.py"


def _same(answer: tuple[bool, str]) -> tuple[bool, str]:
    return answer


def lines_of(text: str) -> set[str]:
    return {line for line in text.splitlines() if not line.startswith("#")}


def test_h200_reads_the_framebuffer_from_nvml() -> None:
    text = gpu.collect(lambda: (True, H200_CSV), lambda: GB10_MEMINFO, 1796600000.0)
    assert lines_of(text) == {
        'sparkfleet_gpu_info{gpu="0",name="NVIDIA H200",uuid="GPU-3856f337-f2e9-b6c4-8542-5d8aac99d756"} 1',
        'sparkfleet_gpu_temperature_celsius{gpu="0"} 31',
        'sparkfleet_gpu_power_watts{gpu="0"} 76.54',
        'sparkfleet_gpu_utilization_ratio{gpu="0"} 0',
        'sparkfleet_gpu_sm_clock_hertz{gpu="0"} 1980000000',
        'sparkfleet_gpu_memory_total_bytes{gpu="0",source="nvml"} 150754820096',
        'sparkfleet_gpu_memory_used_bytes{gpu="0",source="nvml"} 0',
        "sparkfleet_gpu_collector_success 1",
        "sparkfleet_gpu_collector_timestamp_seconds 1796600000",
    }


def test_gb10_reads_unified_memory_from_meminfo() -> None:
    text = gpu.collect(lambda: (True, GB10_CSV), lambda: GB10_MEMINFO, 0.0)
    lines = lines_of(text)
    # [N/A] framebuffer fields are left out, never read as 0; the pool is the host's memory.
    assert 'sparkfleet_gpu_memory_total_bytes{gpu="0",source="meminfo"} 130663165952' in lines
    assert f'sparkfleet_gpu_memory_used_bytes{{gpu="0",source="meminfo"}} {(127600748 - 101234560) * 1024}' in lines
    assert not [line for line in lines if 'source="nvml"' in line]
    assert 'sparkfleet_gpu_temperature_celsius{gpu="0"} 47' in lines
    assert 'sparkfleet_gpu_utilization_ratio{gpu="0"} 0.03' in lines


@pytest.mark.parametrize(
    ("answer", "why"),
    [((False, ""), "nvidia-smi failed"), ((True, "0, GPU-x, broken\n"), "a line of the wrong shape")],
)
def test_a_failing_nvidia_smi_says_so_and_nothing_else(answer: tuple[bool, str], why: str) -> None:
    text = gpu.collect(lambda: answer, lambda: GB10_MEMINFO, 5.0)
    assert lines_of(text) == {"sparkfleet_gpu_collector_success 0", "sparkfleet_gpu_collector_timestamp_seconds 5"}, why


def test_missing_values_are_left_out() -> None:
    row = gpu.parse_query_csv("1, GPU-y, NVIDIA X, [Not Supported], N/A, [N/A], 100, 50, [Unknown Error]\n")
    names = {name for name, _labels, _value in gpu.samples(row, None)}
    assert names == {"sparkfleet_gpu_info", "sparkfleet_gpu_memory_total_bytes", "sparkfleet_gpu_memory_used_bytes"}


def test_textfile_is_written_whole(tmp_path: Path) -> None:
    path = gpu.write_textfile(str(tmp_path), "a 1\n")
    assert Path(path).read_text() == "a 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [gpu.TEXTFILE]


def test_promtool_lints_the_exposition(promtool: Path) -> None:
    for csv_text in (GB10_CSV, H200_CSV):
        answer: tuple[bool, str] = (True, csv_text)
        text = gpu.collect(functools.partial(_same, answer), lambda: GB10_MEMINFO, 1.0)
        res = subprocess.run(
            [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert res.returncode == 0, res.stdout + res.stderr


def test_cli_writes_the_textfile_with_a_fake_nvidia_smi(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat {HERE / 'gb10.query.csv'}\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, str(COLLECTOR), "--nvidia-smi", str(fake), "--meminfo", str(HERE / "gb10.meminfo"),
         "--textfile-dir", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / gpu.TEXTFILE).read_text()
    assert "sparkfleet_gpu_collector_success 1" in text
    assert 'source="meminfo"' in text


# ------------------------------------------------------------------ a real capture (an H100, the device machine)
H100_RAW = (HERE / "h100-gpu-metrics-raw.txt").read_text()
H100_PROM = (HERE / "h100-gpu-metrics.prom").read_text()


def _raw_sections(raw: str) -> tuple[str, str]:
    """The query's answer and /proc/meminfo from ``gpu.py --raw``'s output (two sections, each under a # line)."""
    query, meminfo = raw.split("# /proc/meminfo\n", 1)
    return "\n".join(line for line in query.splitlines() if not line.startswith("#")) + "\n", meminfo


def test_a_real_h100_capture_gives_what_the_collector_wrote_on_that_machine() -> None:
    query, meminfo = _raw_sections(H100_RAW)
    text = gpu.collect(lambda: (True, query), lambda: meminfo, 1796607999.0)
    ours = {line.split(" ")[0] for line in lines_of(text)}
    # The same series the collector wrote there (a second nvidia-smi call, so power may differ; the rest is fixed).
    assert ours == {line.split(" ")[0] for line in lines_of(H100_PROM)}
    assert (
        'sparkfleet_gpu_info{gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-02bd1d89-1766-1a43-2134-d1d26aa821cb"} 1'
        in (lines_of(text) & lines_of(H100_PROM))
    )
    # A discrete GPU: memory from NVML (81559 MiB), not from the host's /proc/meminfo.
    assert 'sparkfleet_gpu_memory_total_bytes{gpu="0",source="nvml"} 85520809984' in lines_of(H100_PROM)
    assert 'sparkfleet_gpu_memory_total_bytes{gpu="0",source="nvml"} 85520809984' in lines_of(text)


def test_the_real_capture_is_valid_exposition(promtool: Path) -> None:
    proc = subprocess.run([str(promtool), "check", "metrics"], input=H100_PROM, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
