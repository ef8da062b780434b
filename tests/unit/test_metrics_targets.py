"""Scrape targets from the plan (module_utils/sparkfleet/metrics/targets.py) and the metrics_config module's logic."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.metrics import config, rules, targets
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.model import ENGINES


def svc(name: str, engine: str, port: int, status: str = "deploy") -> dict[str, Any]:
    return {"name": name, "engine": engine, "port": port, "status": status, "model": f"org/{name}"}


HOSTS = {
    "spark-01": {"address": "10.0.0.11", "plan": {"profile": "dgx_spark", "services": [
        svc("sglang-a", "sglang", 30000), svc("gone", "vllm", 8000, status="absent")]}},
    "spark-02": {"address": "fd00::12", "plan": {"profile": "dgx_spark", "services": [svc("nim-b", "nim", 8000)]}},
    # A host that did not answer this run: no plan, but node exporter is still scraped (and alerts when down).
    "spark-03": {"address": "10.0.0.13", "plan": {}},
}  # fmt: skip


def test_every_deployed_service_is_scraped_at_its_engines_metrics_path() -> None:
    got = targets.service_targets(HOSTS)
    assert got == [
        {"targets": ["10.0.0.11:30000"], "labels": {"host": "spark-01", "service": "sglang-a", "engine": "sglang",
         "model": "org/sglang-a", "profile": "dgx_spark", "metrics_path": "/metrics"}},
        {"targets": ["[fd00::12]:8000"], "labels": {"host": "spark-02", "service": "nim-b", "engine": "nim",
         "model": "org/nim-b", "profile": "dgx_spark", "metrics_path": "/v1/metrics"}},
    ]  # fmt: skip


def test_node_exporter_on_every_host_planned_or_not() -> None:
    got = targets.node_targets(HOSTS, 9100)
    assert [t["targets"] for t in got] == [["10.0.0.11:9100"], ["[fd00::12]:9100"], ["10.0.0.13:9100"]]
    assert got[2]["labels"] == {"host": "spark-03"}


def test_sglang_gets_its_metrics_flag_from_the_engine_table() -> None:
    assert "--enable-metrics" in ENGINES["sglang"].metrics_args
    assert "--enable-metrics" in ENGINES["dynamo-sglang"].metrics_args
    assert all(e.metrics_path.startswith("/") for e in ENGINES.values())


GW = {"host": "gw", "address": "10.0.0.9", "port": 29000}


@pytest.mark.parametrize(
    ("gateway", "prometheus_host", "target", "error"),
    [
        # Loopback listener, Prometheus on the same host: scraped on loopback.
        ({**GW, "bind_address": "127.0.0.1"}, "gw", "127.0.0.1:29000", ""),
        ({**GW, "bind_address": "10.0.0.9"}, "mon", "10.0.0.9:29000", ""),
        ({**GW, "bind_address": "0.0.0.0"}, "mon", "10.0.0.9:29000", ""),  # noqa: S104 - a listener's setting
        ({**GW, "bind_address": "127.0.0.1"}, "mon", None, "set llm_gateway_prometheus_bind_address for gw"),
    ],
)  # fmt: skip
def test_gateway_target(gateway: dict[str, Any], prometheus_host: str, target: str | None, error: str) -> None:
    got, errors = targets.gateway_targets([gateway], prometheus_host)
    assert [t["targets"][0] for t in got] == ([target] if target else [])
    assert (error in errors[0]) if error else not errors


def test_module_logic_returns_targets_and_rules() -> None:
    result = config.run_module(
        {"hosts": HOSTS, "thresholds": {"dgx_spark": {"max_p90_ttft_ms": 500}}, "gateways": [],
         "prometheus_host": "spark-01", "node_exporter_port": 9100, "alerts": {"down_for": "30s"}}
    )  # fmt: skip
    assert result["errors"] == []
    assert result["changed"] is False
    assert result["services"] == 2
    groups = {g["name"]: g["rules"] for g in result["rules"]["groups"]}
    assert {r["labels"]["service"] for r in groups["sparkfleet-limits"]} == {"sglang-a", "nim-b"}
    down = next(r for r in groups["sparkfleet-alerts"] if r["alert"] == "SparkfleetServiceDown")
    assert down["for"] == "30s"


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"down_for": "2 minutes"}, "metrics_alert_down_for '2 minutes' is not a Prometheus duration"),
        ({"kv_cache_full_ratio": 95}, "metrics_alert_kv_cache_full_ratio 95 must be a ratio in (0, 1]"),
        ({"gpu_hot_celsius": "hot"}, "metrics_alert_gpu_hot_celsius 'hot' must be a number"),
        ({"colour": "red"}, "unknown alert settings colour"),
    ],
)
def test_bad_alert_settings_name_the_variable(alerts: dict[str, Any], message: str) -> None:
    errors: list[str] = []
    config.settings_of(alerts, errors)
    assert any(message in e for e in errors), errors


def test_defaults_match_the_roles() -> None:
    """roles/metrics/defaults/main.yml and rules.Settings hold the same alert defaults."""
    import yaml

    from tests.conftest import ROOT

    defaults = yaml.safe_load((ROOT / "roles" / "metrics" / "defaults" / "main.yml").read_text())
    settings = rules.Settings()
    for key in settings.__dataclass_fields__:
        assert str(defaults[f"metrics_alert_{key}"]) == str(getattr(settings, key)).removesuffix(".0"), key
