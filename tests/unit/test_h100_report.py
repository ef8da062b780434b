"""The fleet report (module_utils/sparkfleet/report/) on a REAL benchmark report measured on an H100.

tests/fixtures/reports/h100-transformers-serve.json was written by bin/sparkfleet-bench against transformers serve
on one NVIDIA H100 (see tests/fixtures/reports/README.md): a Qwen3-8B-shaped bf16 model, 8.19e9 parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import contracts
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import model as rep_model

from tests.conftest import FIXTURES, ROOT

REPORT = FIXTURES / "reports" / "h100-transformers-serve.json"
PROFILES: dict[str, Any] = yaml.safe_load((ROOT / "group_vars/all/profiles.yml").read_text())["sparkfleet_profiles"]
META = {"host": "h100-device", "service": "transformers-serve", "model_params_b": 8.19, "model_dtype": "bf16"}


@pytest.fixture
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REPORT.read_text())
    return data


def test_is_a_valid_benchmark_report(report: dict[str, Any]) -> None:
    assert report["schema"] == "sparkfleet.benchmark/v1" == contracts.BENCHMARK_SCHEMA
    assert rep_model.validate_report(report) == []
    assert rep_model.load_report(Path(REPORT))["profile"] == "hopper"


def test_measured_numbers_are_positive(report: dict[str, Any]) -> None:
    loads = {int(e["concurrency"]): e for e in report["load"]}
    assert sorted(loads) == [1, 4]
    for entry in loads.values():
        assert entry["completed"] == entry["num_requests"] > 0
        assert entry["errors"] == 0
        assert entry["output_throughput"] > 0
        assert entry["e2e_ms"]["p50"] > 0
    assert loads[1]["ttft_ms"]["p50"] > 0
    assert loads[1]["tpot_ms"]["p50"] > 0


def test_fleet_report_puts_decode_under_the_hopper_ceiling() -> None:
    assert PROFILES["hopper"]["memory_bandwidth_gbps"] == 3350
    fleet = rep_model.build_fleet([REPORT], [META], profiles=PROFILES)
    assert fleet.warnings == []
    (row,) = fleet.rows
    assert row.status == "FAIL"  # readiness (/v1/models HTTP 500) and chat (no streamed content) failed for real
    assert set(row.failed_checks) == {"readiness", "chat"}
    assert all(tps > 0 for tps in row.throughput.values())
    assert row.decode_concurrency == 1
    assert row.decode_tps_per_user is not None and row.decode_tps_per_user > 0
    # 3350 GB/s over 8.19e9 bf16 parameters (16.38 GB read per token): about 204.5 tok/s per user at batch 1.
    assert row.ceiling_tps_per_user == pytest.approx(3350e9 / (8.19e9 * 2.0))
    pct = row.ceiling_pct
    assert pct is not None and 0.0 < pct < 100.0
    assert not any("above the bandwidth ceiling" in f for f in row.flags)
