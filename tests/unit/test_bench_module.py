"""The llm_benchmark module body with a fake AnsibleModule whose exit_json/fail_json raise."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.module import run_module


class Exited(Exception):
    def __init__(self, failed: bool, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg", ""))
        self.failed = failed
        self.result = result


class FakeModule:
    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode

    def exit_json(self, **result: Any) -> None:
        raise Exited(False, result)

    def fail_json(self, **result: Any) -> None:
        raise Exited(True, result)


def _refused_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _params(**over: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "base_url": _refused_url(),
        "model": "m",
        "checks": ["chat"],
        "concurrency": [1],
        "timeout_s": 2.0,
        "report_path": None,
        "fail_on_threshold": True,
        "api_key": "sk-secret",
    }
    params.update(over)
    return params


def _run(params: dict[str, Any], check_mode: bool = False) -> Exited:
    with pytest.raises(Exited) as info:
        run_module(FakeModule(params, check_mode))
    return info.value


def test_failed_report_fails_the_task_and_keeps_the_report(tmp_path: Path) -> None:
    path = tmp_path / "r" / "bench.json"
    out = _run(_params(report_path=str(path)))
    assert out.failed and out.result["changed"] is False
    assert "chat: " in out.result["msg"] and "cannot connect" in out.result["msg"]
    assert out.result["report"]["ok"] is False and out.result["report_written"] is True
    written = json.loads(path.read_text())
    assert written["schema"] == "sparkfleet.benchmark/v1" and written["checks"][0]["status"] == "fail"
    assert "sk-secret" not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o644


def test_fail_on_threshold_false_returns_the_report() -> None:
    out = _run(_params(fail_on_threshold=False))
    assert not out.failed and out.result["report"]["ok"] is False


def test_check_mode_does_not_write_the_report(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    out = _run(_params(report_path=str(path), fail_on_threshold=False), check_mode=True)
    assert not out.failed and out.result["report_written"] is False
    assert not path.exists()


def test_bad_parameters_fail_before_any_request() -> None:
    out = _run(_params(concurrency=[0], checks=["load"], thresholds={"max_p95_ttft_ms": 1}))
    assert out.failed
    assert "nothing was sent" in out.result["msg"]
    assert "concurrency must be a list of positive integers" in out.result["msg"]
    assert "thresholds.max_p95_ttft_ms is not a known threshold" in out.result["msg"]
    assert "report" not in out.result


def _argument_spec() -> dict[str, Any]:
    """llm_benchmark's argument_spec, captured by running its main() with AnsibleModule replaced."""
    import importlib

    mod = importlib.import_module("ansible_collections.sparkfleet.fleet.plugins.modules.llm_benchmark")
    captured: dict[str, Any] = {}

    class Capture:
        def __init__(self, argument_spec: dict[str, Any], **_kw: Any) -> None:
            captured.update(argument_spec)
            raise Exited(False, {})

    original = getattr(mod, "AnsibleModule")  # noqa: B009 - the module is imported by name, untyped
    setattr(mod, "AnsibleModule", Capture)  # noqa: B010
    try:
        with pytest.raises(Exited):
            mod.main()
    finally:
        setattr(mod, "AnsibleModule", original)  # noqa: B010
    return captured


def test_documentation_matches_the_argument_spec() -> None:
    import importlib

    import yaml

    doc = yaml.safe_load(
        importlib.import_module("ansible_collections.sparkfleet.fleet.plugins.modules.llm_benchmark").DOCUMENTATION
    )["options"]
    spec = _argument_spec()
    assert set(doc) == set(spec)
    for name, option in spec.items():
        documented = doc[name]
        assert documented.get("type") == option.get("type"), name
        assert documented.get("default") == option.get("default"), name
        assert documented.get("choices") == option.get("choices"), name
        assert documented.get("elements") == option.get("elements"), name
        assert bool(documented.get("required")) == bool(option.get("required")), name
    assert spec["api_key"].get("no_log") is True
    for name in ("ca_path", "client_cert", "client_key"):
        assert spec[name]["type"] == "path"
    assert spec["validate_certs"] == {"type": "bool", "default": True}
    assert spec["use_proxy"] == {"type": "bool", "default": True}
    assert spec["transient_retries"] == {"type": "int", "default": 3}


def test_the_module_never_raises_on_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import module as bench_module

    def boom(_cfg: Any) -> dict[str, Any]:
        raise RuntimeError("surprise with sk-secret inside")

    monkeypatch.setattr(bench_module, "run_benchmark", boom)
    out = _run(_params())
    assert out.failed and "unexpected error: RuntimeError" in out.result["msg"]
    assert "sk-secret" not in out.result["msg"]


def test_an_api_key_with_a_newline_fails_before_any_request_without_echoing_it() -> None:
    out = _run(_params(api_key="sk-secret\n"))
    assert out.failed and "nothing was sent" in out.result["msg"]
    assert "api_key cannot be sent" in out.result["msg"] and "sk-secret" not in out.result["msg"]


def test_tls_and_proxy_options_reach_the_config(tmp_path: Path) -> None:
    from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.module import config_from_params

    cfg = config_from_params(
        _params(ca_path="/ca.pem", client_cert="/c.pem", client_key="/k.pem", validate_certs=False, use_proxy=False)
        | {"transient_retries": 1}
    )
    assert (cfg.ca_path, cfg.client_cert, cfg.client_key) == ("/ca.pem", "/c.pem", "/k.pem")
    assert cfg.validate_certs is False and cfg.use_proxy is False and cfg.transient_retries == 1


def test_readiness_reads_the_one_engine_table_and_the_plans_own_paths() -> None:
    """The benchmark has no health table of its own: the engine's paths come from service/model.py's ENGINES, a
    service's own health_paths (the plan's) win, and /v1/models is left to the model check."""
    from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.checks import readiness_paths
    from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.model import ENGINES

    for name in ("sglang", "nim", "vllm"):
        assert readiness_paths(name) == [p for p in ENGINES[name].health_paths if p != "/v1/models"]
    assert readiness_paths("openai") == ["/health"]  # its only path is /v1/models: /health first, 404 -> models
    assert readiness_paths("sglang", ["/ready", "/v1/models"]) == ["/ready"]
