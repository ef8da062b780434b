"""Issue 11 against the REAL stand-in (llama.cpp's llama-server on the demo's random model).

- json_schema must not flake: llama.cpp answers about one JSON-schema request in six with HTTP 500 on
  the random model; the check retries transient server errors and reports them.
- Proxies: a lab host name that only the proxy can resolve, reached through ``http_proxy`` by the
  benchmark and by the health gate's ``netenv.http_get`` alike; loopback never through the proxy.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet import netenv
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.run import BenchConfig, run_benchmark

from tests.unit.netservers import proxy

StandinServer = Any  # conftest.StandinServer: a NamedTuple (base_url, model)
pytestmark = pytest.mark.lab
PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def _cfg(base_url: str, model: str, **over: Any) -> BenchConfig:
    base: dict[str, Any] = {
        "base_url": base_url,
        "model": model,
        "concurrency": [2],
        "num_prompts": 4,
        "input_len": 32,
        "output_len": 8,
        "multi_turn_conversations": 2,
        "multi_turn_turns": 2,
        "multi_turn_input_len": 16,
        "multi_turn_output_len": 8,
        "shared_prefix_len": 48,
        "timeout_s": 60.0,
        "ready_timeout_s": 30.0,
    }
    base.update(over)
    return BenchConfig(**base)


def test_json_schema_does_not_flake_on_the_random_model(standin_server: StandinServer) -> None:
    runs = 12
    retried = 0
    for seed in range(runs):
        report = run_benchmark(_cfg(standin_server.base_url, standin_server.model, checks=["json_schema"], seed=seed))
        check = report["checks"][0]
        assert check["status"] == "pass", check
        errors = check["details"].get("transient_errors") or []
        retried += len(errors)
        assert all("HTTP 5" in e or "stream" in e for e in errors), errors
        assert len(report["warnings"]) == (1 if errors else 0)
    # Not asserted: how many 500s this run met (about runs/6 on average); printed for the record.
    print(f"json_schema: {runs} runs passed, {retried} transient server errors retried")


def test_the_stand_in_through_a_proxy_for_both_clients(
    standin_server: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = urlsplit(standin_server.base_url).port
    assert port is not None
    with proxy(("127.0.0.1", port)) as prx:
        monkeypatch.setenv("http_proxy", prx.url)
        lab_url = f"http://spark-standin.sparkfleet.test:{port}"  # resolvable by the proxy only
        report = run_benchmark(_cfg(lab_url, standin_server.model))
        status, body = netenv.http_get(f"{lab_url}/v1/models", 10)
        direct = run_benchmark(_cfg(standin_server.base_url, standin_server.model, checks=["readiness", "chat"]))
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {
        "readiness": "pass",
        "chat": "pass",
        "json_schema": "pass",
        "multi_turn": "pass",
        "prefix_cache": "pass",
        "load": "pass",
    }, report["failures"]
    assert report["network"]["proxy"] == prx.url
    assert status == 200 and standin_server.model in body
    assert f"{lab_url}/v1/chat/completions" in prx.targets and f"{lab_url}/v1/models" in prx.targets
    # 127.0.0.1 went direct although http_proxy was set: the proxy saw only the lab name.
    assert direct["ok"] is True and direct["network"]["proxy"] is None
    assert all(t.startswith(lab_url) for t in prx.targets)
