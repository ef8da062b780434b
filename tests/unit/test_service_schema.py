"""Every stage reads the same service keys: preflight, the serving role's argument spec and its renderer."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.module_utils.sparkfleet import preflight, serving
from ansible.module_utils.sparkfleet.service_schema import SERVICE_KEYS

ROOT = Path(__file__).resolve().parents[2]
PROFILES = yaml.safe_load((ROOT / "group_vars" / "all" / "profiles.yml").read_text())["sparkfleet_profiles"]


def test_serving_argument_spec_declares_exactly_the_schema_keys() -> None:
    spec = yaml.safe_load((ROOT / "roles" / "llm_serving" / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]["llm_serving_services"]["options"]
    assert set(options) == set(SERVICE_KEYS)


def test_preflight_and_serving_use_the_schema() -> None:
    assert set(preflight.SERVICE_KEYS) == set(SERVICE_KEYS)
    assert set(serving.SERVICE_KEYS) == set(SERVICE_KEYS)


def test_preflight_accepts_every_stage_key_on_a_cpu_service() -> None:
    from ansible.module_utils.sparkfleet.preflight import PlanInputs, check_plan

    service = {
        "name": "standin",
        "engine": "openai",
        "image": "sparkfleet-lab/llm-standin:llama.cpp",
        "model": "sparkfleet/tiny-llama",
        "port": 8080,
        "gpu": "none",
        "shm_size": "1g",
        "stop_timeout_s": 30,
        "verify": {"enabled": True, "thresholds": {"max_error_rate": 0.0}},
    }
    plan = check_plan(
        PlanInputs(
            services=[service], profiles=PROFILES, gpu={"profile": "none", "gpus": []}, free_disk_gb=lambda _p: 1e3
        )
    )
    assert not [e for e in plan.errors if "unknown" in e], plan.errors


def test_a_malformed_ngc_key_is_refused_even_when_no_service_needs_it() -> None:
    from ansible.module_utils.sparkfleet.preflight import PlanInputs, check_plan

    service = {"name": "s", "engine": "openai", "image": "x/y:1", "model": "m", "port": 8080, "gpu": "none"}
    plan = check_plan(
        PlanInputs(
            services=[service],
            profiles=PROFILES,
            gpu={"profile": "none", "gpus": []},
            free_disk_gb=lambda _p: 1e3,
            ngc_api_key="not-a-key",
        )
    )
    problems = [e for e in plan.errors if "sparkfleet_ngc_api_key" in e]
    assert problems, plan.errors
    assert "not-a-key" not in problems[0]  # never echo the key
