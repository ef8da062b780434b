"""lab/gpu/inventory.yml, the device machine's one-host inventory: tests/gpu/test_ansible_stages.py reads the fleet
report and decides, so the verify stage there reports and never fails the run. transformers serve ignores
response_format (json_schema fails by the server's design): a gate left on fails that test on the GPU only, where
nothing else would have caught it (the planned-vs-serving gate did, once)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import ROOT


def _device_host() -> dict[str, Any]:
    inventory = yaml.safe_load((ROOT / "lab/gpu/inventory.yml").read_text())
    host: dict[str, Any] = inventory["all"]["children"]["spark-lab"]["hosts"]["gpu-device"]
    return host


def test_every_gate_switch_the_verify_role_declares_is_off_on_the_device() -> None:
    spec = yaml.safe_load((ROOT / "roles/llm_verify/meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    gates = sorted(
        name for name, opt in options.items() if name.startswith("llm_verify_fail") and opt["type"] == "bool"
    )
    assert gates == ["llm_verify_fail_hosts", "llm_verify_fail_on_missing"]
    host = _device_host()
    assert {g: host.get(g) for g in gates} == dict.fromkeys(gates, False)


def test_the_device_host_is_local_and_names_the_service_the_gpu_tests_start() -> None:
    host = _device_host()
    assert host["ansible_connection"] == "local"
    (service,) = host["llm_serving_services"]
    assert service["name"] == "transformers-serve"
    assert host["llm_verify_thresholds"] == {}
