"""The REAL capture of one NVIDIA H200 (the device machine, 2026-12-01) replayed: nvidia-smi's query CSV and XML
through gpu.py, and the benchmark report of transformers serve measured there through the fleet report.

Fixtures (tests/fixtures/nvidia-smi/h200*, tests/fixtures/reports/h200*) come from `bash lab/gpu/gpu_run.sh` on
that machine (docs/hardware-results.md); only the board serial in the XML is zeroed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import gpu
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.gpu import PRIMARY_FIELDS, detect
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.report import model as rep_model

from tests.conftest import FIXTURES, ROOT
from tests.unit.test_gpu import fake_probe

SMI = FIXTURES / "nvidia-smi"
H200_CSV = (SMI / "h200.query.csv").read_text()
H200_XML = (SMI / "h200.xml").read_text()
REPORT = FIXTURES / "reports" / "h200-transformers-serve.json"
PROFILES: dict[str, Any] = yaml.safe_load((ROOT / "group_vars/all/profiles.yml").read_text())["sparkfleet_profiles"]
META = {"host": "h200-device", "service": "transformers-serve", "model_params_b": 8.19, "model_dtype": "bf16"}
H200_GBPS = 4800.0  # the vendor's datasheet; the hopper profile's 3350 is the H100 SXM's


def test_query_csv_parses_to_one_h200() -> None:
    (row,) = gpu.parse_query_csv(H200_CSV, PRIMARY_FIELDS)
    g = gpu.gpu_from_row(row)
    assert g["name"] == "NVIDIA H200"
    assert g["memory_total_mib"] == 143771
    assert g["compute_capability"] == "9.0"
    assert g["mig_mode"] == "Disabled"
    assert g["uuid"].startswith("GPU-")
    assert g["unified_memory"] is False


def test_xml_gives_driver_cuda_and_architecture() -> None:
    facts = gpu.parse_smi_xml(H200_XML)
    assert facts["driver_version"] == "580.159.04"
    assert facts["cuda_version"] == "13.0"
    assert facts["architectures"] == {"00000000:00:06.0": "Hopper"}


def test_detect_picks_hopper_and_the_whole_hbm() -> None:
    probe = fake_probe(query={",".join(PRIMARY_FIELDS): (0, H200_CSV, "")}, xml=(0, H200_XML, ""))
    facts = detect(probe).facts
    assert facts["profile"] == "hopper"
    assert facts["serving_gpu"]["name"] == "NVIDIA H200"
    assert facts["serving_gpu"]["architecture"] == "Hopper"
    assert facts["usable_memory_mib"] == 143771
    assert facts["driver_version"] == "580.159.04"


def test_h200_is_not_mistaken_for_gh200() -> None:
    assert gpu.name_matches("NVIDIA H200", "H200")
    assert not gpu.name_matches("NVIDIA H200", "GH200")


def test_device_run_capture_matches_the_query_and_xml_fixtures() -> None:
    saved = json.loads((SMI / "h200-device-run.json").read_text())
    # Two captures a minute apart on one machine: the same GPU, driver and CUDA (timestamps and clocks differ).
    assert saved["raw"]["query_csv"] == H200_CSV
    assert gpu.parse_smi_xml(saved["raw"]["xml"]) == gpu.parse_smi_xml(H200_XML)
    assert saved["nvidia_gpu"]["profile"] == "hopper"


@pytest.fixture
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REPORT.read_text())
    return data


def test_report_is_valid_and_measured_visible_text(report: dict[str, Any]) -> None:
    assert rep_model.validate_report(report) == []
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("readiness", "chat", "multi_turn", "load"):
        assert checks[name]["status"] == "pass", name
    assert checks["chat"]["details"]["non_streaming"]["content_chars"] > 0
    assert checks["chat"]["details"]["streaming"]["ttft_ms"] > 0
    # transformers serve ignores response_format: a reply of visible words, not JSON.
    assert checks["json_schema"]["status"] == "fail"
    assert any(ch.isalpha() for ch in checks["json_schema"]["details"]["reply"])


def test_sweep_to_64_without_errors_with_ttft_at_every_level(report: dict[str, Any]) -> None:
    levels = {int(e["concurrency"]): e for e in report["load"]}
    assert sorted(levels) == [1, 8, 32, 64]
    for entry in levels.values():
        assert entry["errors"] == 0 and entry["completed"] == entry["num_requests"] > 0
        assert entry["ttft_ms"]["p50"] > 0 and entry["tpot_ms"]["p50"] > 0
    throughputs = [levels[c]["output_throughput"] for c in sorted(levels)]
    assert throughputs == sorted(throughputs), "throughput grows with concurrency on this run"


def test_fleet_report_with_the_h200_bandwidth() -> None:
    profiles = {**PROFILES, "hopper": {**PROFILES["hopper"], "memory_bandwidth_gbps": H200_GBPS}}
    fleet = rep_model.build_fleet([REPORT], [META], profiles=profiles)
    (row,) = fleet.rows
    assert row.status == "FAIL" and row.failed_checks == ["json_schema"]
    assert row.ceiling_tps_per_user == pytest.approx(4800e9 / (8.19e9 * 2.0))
    assert row.ceiling_pct is not None and 5.0 < row.ceiling_pct < 10.0
    # With the profile's H100 figure the same run reads as a larger share of a lower ceiling.
    h100 = rep_model.build_fleet([REPORT], [META], profiles=PROFILES).rows[0]
    assert h100.ceiling_pct is not None and h100.ceiling_pct > row.ceiling_pct
