"""The llm_benchmark module body with a fake AnsibleModule whose exit_json/fail_json raise."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.sparkfleet.bench.module import run_module


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
