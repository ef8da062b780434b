"""Every stage reads the same service keys: preflight, the serving role's argument spec and its renderer."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible.module_utils.sparkfleet import preflight, serving
from ansible.module_utils.sparkfleet.service_schema import SERVICE_KEYS

ROOT = Path(__file__).resolve().parents[2]


def test_serving_argument_spec_declares_exactly_the_schema_keys() -> None:
    spec = yaml.safe_load((ROOT / "roles" / "llm_serving" / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]["llm_serving_services"]["options"]
    assert set(options) == set(SERVICE_KEYS)


def test_preflight_and_serving_use_the_schema() -> None:
    assert set(preflight.SERVICE_KEYS) == set(SERVICE_KEYS)
    assert set(serving.SERVICE_KEYS) == set(SERVICE_KEYS)
