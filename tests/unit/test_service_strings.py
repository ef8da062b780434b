"""Names and strings (the hardening issue's item 5): every name check matches the whole string ("name\\n" does not
pass), control characters are refused in every key and value that reaches a file, sparkfleet's own unit names are
reserved, and every string has a length bound that its message names."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import thresholds
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.contracts import RESERVED_SERVICE_NAMES
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import model
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.parse import parse_image
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.plan import ngc_key_problem
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.stage import spec

from tests.conftest import ROOT
from tests.unit.service_helpers import NVAPI_KEY, SGLANG_SERVICE, make_plan

OK: dict[str, Any] = SGLANG_SERVICE
P = "llm_serving_services[0] (sg)"
DYNAMO: dict[str, Any] = {
    "name": "fe",
    "engine": "dynamo-frontend",
    "image": "example.org/dynamo/frontend:0.5.0",
    "model": "Qwen/Qwen3-0.6B",
}


def _errors(services: list[dict[str, Any]], **over: Any) -> str:
    plan = make_plan(services, **over)
    assert plan.as_fact()["deploy"] == []
    return "\n".join(plan.errors)


# (pattern, a whole match, the same with a trailing newline)
@pytest.mark.parametrize(
    ("pattern", "good"),
    [
        (model.NAME_RE, "sg"),
        (model.ENV_NAME_RE, "VLLM_API_KEY"),
        (model.SHM_RE, "16g"),
        (model.HEALTH_PATH_RE, "/v1/models"),
        (model.IMAGE_RE, "lmsysorg/sglang:latest"),
        (model.NGC_KEY_RE, NVAPI_KEY),
        (model.DYNAMO_DISCOVERY_RE, "http://spark-01:2379"),
        (model.DYNAMO_DISCOVERY_RE, "file"),
        (spec.REPO_RE, "Qwen/Qwen3-8B"),
        (spec.REVISION_RE, "main"),
    ],
    ids=lambda v: getattr(v, "pattern", str(v))[:24],
)
def test_every_name_pattern_matches_the_whole_string(pattern: Any, good: str) -> None:
    assert pattern.fullmatch(good)
    assert pattern.fullmatch(good + "\n") is None
    # Even where someone calls match(): the patterns end in \Z, not $.
    assert pattern.match(good + "\n") is None


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({**OK, "api_key_var": "vault\n", "api_key_env": "VLLM_API_KEY"}, f"{P}.api_key_var 'vault\\n' must be"),
        ({**OK, "api_key_var": "k", "api_key_env": "VLLM_API_KEY\n"}, f"{P}.api_key_env 'VLLM_API_KEY\\n' must be"),
        ({**OK, "env": {"NAME\n": "x"}}, f"{P}.env key 'NAME\\n' is not a valid environment variable name"),
        ({**OK, "name": "sg\n"}, "llm_serving_services[0].name contains the control character '\\n'"),
        ({**OK, "image": "lmsysorg/sglang:latest\n"}, f"{P}.image contains the control character"),
        ({**OK, "shm_size": "16g\n"}, f"{P}.shm_size contains the control character"),
        ({**OK, "health_paths": ["/health\n"]}, f"{P}.health_paths[0] contains the control character"),
        ({**DYNAMO, "dynamo_discovery": "file\n"}, "llm_serving_services[0] (fe).dynamo_discovery contains the"),
        ({**DYNAMO, "dynamo_deployment": "dyn\n"}, "llm_serving_services[0] (fe).dynamo_deployment contains the"),
    ],
    ids=["api_key_var", "api_key_env", "env-key", "name", "image", "shm_size", "health_path", "discovery",
         "deployment"],
)  # fmt: skip
def test_a_trailing_newline_never_passes(service: dict[str, Any], expected: str) -> None:
    assert expected in _errors([service])


def test_a_trailing_newline_never_passes_elsewhere() -> None:
    assert parse_image("lmsysorg/sglang:latest\n") is None
    assert spec.repo_problem("Qwen/Qwen3-8B\n")
    assert spec.repo_problem("Qwen/Qwen3-8B") is None
    assert ngc_key_problem(NVAPI_KEY + "\n")
    assert thresholds.validate({"max_p90_ttft_ms\n": {"1": 100}}, [1])
    assert thresholds.validate({"max_p90_ttft_ms": {"1": 100}}, [1]) == []


def test_a_revision_with_a_trailing_newline_is_refused() -> None:
    models = [{"repo": "Qwen/Qwen3-8B", "seed_host": "spark-01", "revision": "main\n"}]
    _staged, errors = spec.check_models(models, hosts=["spark-01"], hub_dir="/hub")
    assert any("revision 'main\\n' must be" in e for e in errors), errors


def test_an_image_tag_is_ascii() -> None:
    assert parse_image("lmsysorg/sglang:latest") is not None
    assert parse_image("lmsysorg/sglang:lätest") is None


@pytest.mark.parametrize("char", ["\x00", "\t", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"])
@pytest.mark.parametrize(
    ("key", "build"),
    [
        ("model", lambda c: {**OK, "model": f"Qwen{c}/Qwen3-8B"}),
        ("env.A", lambda c: {**OK, "env": {"A": f"x{c}y"}}),
        ("docker_args[1]", lambda c: {**OK, "docker_args": ["--label", f"a{c}b"]}),
        ("extra_args[0]", lambda c: {**OK, "extra_args": [f"--x{c}"]}),
        ("verify.checks[0]", lambda c: {**OK, "verify": {"checks": [f"chat{c}"]}}),
        ("verify.thresholds key", lambda c: {**OK, "verify": {"thresholds": {f"max{c}": 1}}}),
    ],
)
def test_control_characters_are_refused_everywhere(char: str, key: str, build: Any) -> None:
    assert f"{P}.{key} contains the control character" in _errors([build(char)])


@pytest.mark.parametrize("char", ["\n", "\x85", "\u2028"])
def test_control_characters_in_env_names_are_refused(char: str) -> None:
    assert "is not a valid environment variable name" in _errors([{**OK, "env": {f"A{char}B": "x"}}])


def test_a_key_with_control_characters_is_shown_quoted() -> None:
    text = _errors([{**OK, "bad\nkey": 1}])
    assert "llm_serving_services[0] (sg).'bad\\nkey' is not a service key" in text


# --------------------------------------------------------------------------------------------- reserved names


def test_sparkfleets_own_unit_names_are_reserved() -> None:
    assert "gateway" in RESERVED_SERVICE_NAMES
    text = _errors([{**OK, "name": "gateway"}])
    assert (
        "llm_serving_services[0] (gateway).name 'gateway' is reserved: sparkfleet-gateway.service is the "
        "llm_gateway role's gateway unit (llm_gateway_unit), which this service's unit would overwrite. Fix: choose "
        "another name"
    ) in text
    assert make_plan([{**OK, "name": "gateway-1"}]).errors == []


def test_every_unit_that_sparkfleet_installs_is_reserved() -> None:
    # The roles that install a sparkfleet-<name>.service of their own (llm_serving's units are the services).
    own_units = {
        "gateway": ROOT / "roles" / "llm_gateway" / "defaults" / "main.yml",
        "firewall": ROOT / "roles" / "llm_serving" / "tasks" / "firewall.yml",
        "gpu-metrics": ROOT / "roles" / "metrics" / "tasks" / "gpu_collector.yml",
    }
    for name, where in own_units.items():
        assert f"sparkfleet-{name}" in where.read_text()
        assert name in RESERVED_SERVICE_NAMES
    templates = sorted(p.name for p in ROOT.glob("roles/*/templates/sparkfleet-*.service.j2"))
    assert templates == [
        "sparkfleet-firewall.service.j2",
        "sparkfleet-gateway.service.j2",
        "sparkfleet-gpu-metrics.service.j2",
        "sparkfleet-service.service.j2",
    ]


# --------------------------------------------------------------------------------------------- length bounds


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({**OK, "docker_args": ["--label", "a=1", "--label", "b=" + "x" * 4998]},
         f"{P}.docker_args[3] is 5000 characters long; the bound is 4096"),
        ({**OK, "extra_args": ["--x", "y" * 4097]}, f"{P}.extra_args[1] is 4097 characters long; the bound is 4096"),
        ({**OK, "name": "a" * 64}, "llm_serving_services[0].name is 64 characters long; the bound is 63"),
        ({**OK, "image": "a/" * 128 + "b:1"}, f"{P}.image is 259 characters long; the bound is 255"),
        ({**OK, "model": "m" * 1025}, f"{P}.model is 1025 characters long; the bound is 1024"),
        ({**OK, "env": {"A": "v" * 4097}}, f"{P}.env.A is 4097 characters long; the bound is 4096"),
        ({**OK, "env": {"A" * 129: "v"}}, f"{P}.env has a key of 129 characters; the bound is 128"),
        ({**OK, "api_key_var": "k", "api_key_env": "K" * 129},
         f"{P}.api_key_env is 129 characters long; the bound is 128"),
        ({**OK, "api_key_var": "k" * 256}, f"{P}.api_key_var is 256 characters long; the bound is 255"),
        ({**OK, "shm_size": "1" * 33}, f"{P}.shm_size is 33 characters long; the bound is 32"),
        ({**OK, "gpu": "G" * 65}, f"{P}.gpu is 65 characters long; the bound is 64"),
        ({**OK, "health_paths": ["/" + "h" * 1024]}, f"{P}.health_paths[0] is 1025 characters long; the bound is 1024"),
        ({**OK, "image_archive": "/a" * 2049}, f"{P}.image_archive is 4098 characters long; the bound is 4096"),
        ({**OK, "verify": {"checks": ["c" * 256]}}, f"{P}.verify.checks[0] is 256 characters long; the bound is 255"),
    ],
    ids=["docker_args", "extra_args", "name", "image", "model", "env-value", "env-key", "api_key_env", "api_key_var",
         "shm_size", "gpu", "health_paths", "image_archive", "verify"],
)  # fmt: skip
def test_strings_have_a_bound_the_message_names(service: dict[str, Any], expected: str) -> None:
    text = _errors([service])
    assert expected in text, text
    assert "x" * 100 not in text and "v" * 100 not in text  # the message gives the length, not the text


def test_every_string_field_has_a_bound() -> None:
    for f in model.FIELDS:
        if f.kind in ("str", "list", "dict", "raw"):
            assert 0 < f.length_bound <= model.MAX_VALUE_LEN, f.name
    assert model.FIELD_BY_NAME["name"].length_bound == 63
    assert model.FIELD_BY_NAME["docker_args"].length_bound == 4096


def test_strings_at_the_bound_pass() -> None:
    svc = {**OK, "docker_args": ["--label", "b=" + "x" * 4094], "env": {"A" * 128: "v" * 4096}}
    assert make_plan([svc]).errors == []
