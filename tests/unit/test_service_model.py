"""One definition of a service (service/model.py): the argument spec and the docs are generated from it, the
parser reads it, and nothing else defines a service key."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import model

from lab import gen_service_docs
from tests.conftest import ROOT
from tests.unit.service_helpers import NO_GPU, make_plan


def _spec_options() -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "roles" / "llm_serving" / "meta" / "argument_specs.yml").read_text())
    return dict(spec["argument_specs"]["main"]["options"]["llm_serving_services"]["options"])


def test_the_argument_spec_is_the_model_on_types_required_choices_and_defaults() -> None:
    options = _spec_options()
    assert list(options) == list(model.SERVICE_KEYS)
    for f in model.FIELDS:
        opt = options[f.name]
        assert opt["type"] == f.kind, f.name
        assert opt.get("required", False) is f.required, f.name
        assert opt.get("choices", []) == list(f.choices), f.name
        assert opt.get("default") == f.default, f.name
        assert opt.get("elements") == f.elements, f.name


def test_generated_files_are_up_to_date() -> None:
    for path, text in gen_service_docs.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run python3 -m lab.gen_service_docs"


def test_the_generator_check_mode_passes_from_the_command_line() -> None:
    argv = [sys.executable, "-m", "lab.gen_service_docs", "--check"]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_docs_table_lists_every_key_with_its_type() -> None:
    text = (ROOT / "docs" / "development.md").read_text()
    for f in model.FIELDS:
        assert re.search(rf"^\| `{f.name}` \| [^|]*{f.kind if not f.elements else 'list of'}", text, re.M), f.name


def test_one_place_defines_the_service_keys() -> None:
    """`grep` for a key's definition finds the model only: no other module lists the service keys."""
    hits = []
    for path in (ROOT / "plugins").rglob("*.py"):
        text = path.read_text()
        if re.search(r'Field\("port"', text) or re.search(r'^\s*"container_port",\s*$', text, re.M):
            hits.append(path.relative_to(ROOT).as_posix())
    assert hits == ["plugins/module_utils/sparkfleet/service/model.py"]


def test_every_engine_is_data_with_a_port_and_health_paths() -> None:
    for engine in model.ENGINES.values():
        assert 1 <= engine.default_port <= 65535
        assert engine.health_paths and all(p.startswith("/") for p in engine.health_paths)


def test_the_normalized_service_has_every_key_of_the_model() -> None:
    service = {
        "name": "standin",
        "engine": "openai",
        "image": "sparkfleet-lab/llm-standin:llama.cpp",
        "model": "sparkfleet/tiny-llama",
        "gpu": "none",
        "verify": {"enabled": True, "thresholds": {"max_error_rate": 0.0}},
    }
    plan = make_plan([service], NO_GPU)
    assert plan.errors == []
    [svc] = plan.services
    assert set(model.SERVICE_KEYS) <= set(svc)
    assert svc["port"] == model.ENGINES["openai"].default_port
    assert svc["container_port"] == svc["port"]
    assert svc["health_paths"] == ["/v1/models"]
    assert svc["status"] == "deploy"
