"""Prometheus rules (module_utils/sparkfleet/metrics/rules.py), checked and unit-tested with promtool
(tests/unit/metrics_helpers.py: where promtool comes from, and when its tests skip)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.metrics import rules

from tests.conftest import ROOT
from tests.unit.metrics_helpers import promtool_path


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_path()


VERIFY = yaml.safe_load((ROOT / "group_vars" / "all" / "verify.yml").read_text())
THRESHOLDS = VERIFY["sparkfleet_verify_thresholds"]


def svc(name: str, engine: str = "sglang", status: str = "deploy", **kw: Any) -> dict[str, Any]:
    return {"name": name, "engine": engine, "status": status, "port": 30000, "model": "m", **kw}


# spark-01 and spark-02 are Sparks (dgx_spark: TTFT p90 at most 8 s at the loosest level, at least 8 tok/s);
# spark-03 runs the demo's llama.cpp stand-in (profile none: 15 s, 5 tok/s).
PLANS = {
    "spark-01": {"profile": "dgx_spark", "services": [svc("a"), svc("skipped", status="skipped")]},
    "spark-02": {"profile": "dgx_spark", "services": [svc("b", engine="vllm")]},
    "spark-03": {"profile": "none", "services": [svc("c", engine="openai")]},
}


@pytest.mark.parametrize(
    ("profile", "own", "expected"),
    [
        ({"max_p90_ttft_ms": {"1": 1000, "8": 3000, "32": 8000}, "min_output_tps": {"1": 8, "32": 150}}, {},
         rules.Limits(8.0, 8.0)),
        ({"max_p90_ttft_ms": 300, "min_output_tps": 40}, {}, rules.Limits(0.3, 40.0)),
        # The service's own thresholds merge key by key, as llm_verify's combine(recursive=true).
        ({"max_p90_ttft_ms": {"1": 1000, "8": 3000}}, {"max_p90_ttft_ms": {"8": 9000}, "min_output_tps": 2},
         rules.Limits(9.0, 2.0)),
        ({"min_output_tps": {"1": 5, "8": 20}, "max_error_rate": 0.0}, None, rules.Limits(None, 5.0)),
        ({}, {}, rules.Limits(None, None)),
    ],
)  # fmt: skip
def test_limits_take_the_loosest_level(profile: dict[str, Any], own: Any, expected: rules.Limits) -> None:
    assert rules.limits(profile, own) == expected


def test_limit_series_come_from_the_verify_thresholds_only_for_deployed_services() -> None:
    plans = {**PLANS, "spark-02": {"profile": "dgx_spark", "services": [
        svc("b", verify={"thresholds": {"max_p90_ttft_ms": {"32": 20000}}})]}}  # fmt: skip
    limits = {(r["labels"]["host"], r["labels"]["service"], r["record"]): r["expr"]
              for r in rules.limit_rules(rules.services_of(plans, THRESHOLDS))}  # fmt: skip
    spark = THRESHOLDS["dgx_spark"]
    assert limits[("spark-01", "a", rules.LIMIT_TTFT)] == f"vector({max(spark['max_p90_ttft_ms'].values()) / 1000:g})"
    assert limits[("spark-01", "a", rules.LIMIT_TPS)] == f"vector({min(spark['min_output_tps'].values()):g})"
    assert limits[("spark-02", "b", rules.LIMIT_TTFT)] == "vector(20)"
    assert (
        limits[("spark-03", "c", rules.LIMIT_TPS)] == f"vector({min(THRESHOLDS['none']['min_output_tps'].values()):g})"
    )
    assert not [k for k in limits if k[1] == "skipped"]


def test_every_alert_is_written_once() -> None:
    names = [r["alert"] for r in rules.alert_rules(rules.Settings())]
    assert names == list(rules.ALERTS)


@pytest.mark.parametrize("profile", sorted(THRESHOLDS))
def test_promtool_accepts_the_rules_of_every_profile(promtool: Path, tmp_path: Path, profile: str) -> None:
    plans = {"h": {"profile": profile, "services": [svc("s")]}}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules.rule_file(plans, THRESHOLDS), sort_keys=False))
    res = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: " in res.stdout


def test_promtool_accepts_an_empty_fleet(promtool: Path, tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules.rule_file({}, THRESHOLDS)))
    res = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


# ----------------------------------------------------------------------------------------- promtool test rules

SVC = 'job="sparkfleet-services"'
NODE = 'job="sparkfleet-nodes"'


def _svc_labels(host: str, service: str) -> str:
    return f'{SVC}, host="{host}", service="{service}", instance="{host}:30000"'


def _series() -> list[dict[str, str]]:
    a, b, c = _svc_labels("spark-01", "a"), _svc_labels("spark-02", "b"), _svc_labels("spark-03", "c")
    series = {
        # Up: a and c always; b stops answering at minute 3; the node of spark-03 never answers.
        f"up{{{a}}}": "1x30",
        f"up{{{b}}}": "1 1 1 0x27",
        f"up{{{c}}}": "1x30",
        'up{job="sparkfleet-gateway", host="spark-01", service="gateway", instance="127.0.0.1:29000"}': "1x5 0x25",
        f'up{{{NODE}, host="spark-01", instance="spark-01:9100"}}': "1x30",
        f'up{{{NODE}, host="spark-02", instance="spark-02:9100"}}': "1x30",
        f'up{{{NODE}, host="spark-03", instance="spark-03:9100"}}': "0x30",
        # TTFT: a's first tokens take 5-10 s (p90 9.5 s > 8 s), b's under 0.5 s.
        f'sglang:time_to_first_token_seconds_bucket{{{a}, le="5"}}': "0x30",
        f'sglang:time_to_first_token_seconds_bucket{{{a}, le="10"}}': "0+10x30",
        f'sglang:time_to_first_token_seconds_bucket{{{a}, le="+Inf"}}': "0+10x30",
        f'vllm:time_to_first_token_seconds_bucket{{{b}, le="0.5"}}': "0+10x30",
        f'vllm:time_to_first_token_seconds_bucket{{{b}, le="10"}}': "0+10x30",
        f'vllm:time_to_first_token_seconds_bucket{{{b}, le="+Inf"}}': "0+10x30",
        # Output tokens: a 2 tok/s with 2 requests running (slow); b 2 tok/s idle; c (llama.cpp) 100 tok/s busy.
        f"sglang:generation_tokens_total{{{a}}}": "0+120x30",
        f"sglang:num_running_reqs{{{a}}}": "2x30",
        f"vllm:generation_tokens_total{{{b}}}": "0+120x30",
        f"vllm:num_requests_running{{{b}}}": "0x30",
        f"llamacpp:tokens_predicted_total{{{c}}}": "0+6000x30",
        f"llamacpp:requests_processing{{{c}}}": "4x30",
        # KV cache: a 99 % full, b half.
        f"sglang:token_usage{{{a}}}": "0.99x30",
        f"vllm:kv_cache_usage_perc{{{b}}}": "0.5x30",
        # Memory (unified on a Spark): spark-01 98 % in use, spark-02 half.
        f'node_memory_MemAvailable_bytes{{{NODE}, host="spark-01", instance="spark-01:9100"}}': "2000000000x30",
        f'node_memory_MemTotal_bytes{{{NODE}, host="spark-01", instance="spark-01:9100"}}': "100000000000x30",
        f'node_memory_MemAvailable_bytes{{{NODE}, host="spark-02", instance="spark-02:9100"}}': "50000000000x30",
        f'node_memory_MemTotal_bytes{{{NODE}, host="spark-02", instance="spark-02:9100"}}': "100000000000x30",
        # GPU temperature: spark-01's collector 90 °C, spark-02's DCGM exporter 60 °C.
        f'sparkfleet_gpu_temperature_celsius{{{NODE}, host="spark-01", instance="spark-01:9100", gpu="0"}}': "90x30",
        'DCGM_FI_DEV_GPU_TEMP{job="dcgm", host="spark-02", gpu="0"}': "60x30",
    }
    return [{"series": k, "values": v} for k, v in series.items()]


def _down(host: str, service: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "critical", "job": "sparkfleet-services", "host": host, "service": service,
                       "instance": f"{host}:30000"},
        "exp_annotations": {
            "summary": f"{service} on {host} is down",
            "description": f"Prometheus cannot read {host}:30000: the server is stopped, failing or unreachable. "
            f"On the host: systemctl status sparkfleet-{service}; journalctl -u sparkfleet-{service}.",
        },
    }  # fmt: skip


def _expected(settings: rules.Settings) -> dict[str, list[dict[str, Any]]]:
    """What fires at minute 20: every alert once, for the series made to fire it, and never for the others."""
    alerts = {r["alert"]: r for r in rules.alert_rules(settings)}

    def desc(name: str) -> str:
        return str(alerts[name]["annotations"]["description"])

    return {
        "SparkfleetServiceDown": [_down("spark-02", "b")],
        "SparkfleetGatewayDown": [{
            "exp_labels": {"severity": "critical", "job": "sparkfleet-gateway", "host": "spark-01",
                           "service": "gateway", "instance": "127.0.0.1:29000"},
            "exp_annotations": {"summary": "the gateway on spark-01 is down",
                                "description": desc("SparkfleetGatewayDown").replace(
                                    "{{ $labels.instance }}", "127.0.0.1:29000")},
        }],
        "SparkfleetHostUnreachable": [{
            "exp_labels": {"severity": "critical", "job": "sparkfleet-nodes", "host": "spark-03",
                           "instance": "spark-03:9100"},
            "exp_annotations": {"summary": "spark-03 is unreachable",
                                "description": desc("SparkfleetHostUnreachable").replace(
                                    "{{ $labels.instance }}", "spark-03:9100")},
        }],
        "SparkfleetTTFTHigh": [{
            "exp_labels": {"severity": "warning", "host": "spark-01", "service": "a"},
            "exp_annotations": {"summary": "a on spark-01: p90 time to first token past its verify limit",
                                "description": desc("SparkfleetTTFTHigh").replace(
                                    "{{ $value | humanizeDuration }}", "9.5s")},
        }],
        "SparkfleetThroughputLow": [{
            "exp_labels": {"severity": "warning", "host": "spark-01", "service": "a"},
            "exp_annotations": {"summary": "a on spark-01: output tokens/s below its verify limit while serving",
                                "description": desc("SparkfleetThroughputLow").replace(
                                    '{{ $value | printf "%.1f" }}', "2.0")},
        }],
        "SparkfleetKVCacheNearFull": [{
            "exp_labels": {"severity": "warning", "host": "spark-01", "service": "a"},
            "exp_annotations": {"summary": "a on spark-01: KV cache 99% full",
                                "description": desc("SparkfleetKVCacheNearFull")},
        }],
        "SparkfleetMemoryNearFull": [{
            "exp_labels": {"severity": "critical", "job": "sparkfleet-nodes", "host": "spark-01",
                           "instance": "spark-01:9100"},
            "exp_annotations": {"summary": "spark-01: memory 98% in use",
                                "description": desc("SparkfleetMemoryNearFull")},
        }],
        "SparkfleetGPUHot": [{
            "exp_labels": {"severity": "warning", "host": "spark-01", "gpu": "0"},
            "exp_annotations": {"summary": "spark-01 GPU 0 at 90 °C", "description": desc("SparkfleetGPUHot")},
        }],
    }  # fmt: skip


def test_promtool_unit_tests_each_alert_firing_and_not(promtool: Path, tmp_path: Path) -> None:
    settings = rules.Settings()
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules.rule_file(PLANS, THRESHOLDS, settings), sort_keys=False))
    expected = _expected(settings)
    assert sorted(expected) == sorted(rules.ALERTS)
    early = [
        # Minute 4: b has been down 1 minute, less than down_for (2m): pending, not firing.
        {"eval_time": "4m", "alertname": "SparkfleetServiceDown", "exp_alerts": []},
        # Minute 1: no rate over a full window yet, nothing slow.
        {"eval_time": "1m", "alertname": "SparkfleetThroughputLow", "exp_alerts": []},
    ]
    late = [{"eval_time": "20m", "alertname": name, "exp_alerts": exp} for name, exp in expected.items()]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(),
                "alert_rule_test": early + late,
                "promql_expr_test": [
                    # The engines' series under one name, and the limits from verify.yml.
                    {"expr": f'{rules.TTFT_P90}{{service="a"}}', "eval_time": "20m",
                     "exp_samples": [{"labels": f'{rules.TTFT_P90}{{host="spark-01", service="a"}}', "value": 9.5}]},
                    {"expr": f'{rules.OUTPUT_TPS}{{service="c"}}', "eval_time": "20m",
                     "exp_samples": [{"labels": f'{rules.OUTPUT_TPS}{{host="spark-03", service="c"}}', "value": 100}]},
                    {"expr": f'{rules.LIMIT_TTFT}{{service="c"}}', "eval_time": "20m",
                     "exp_samples": [{"labels": f'{rules.LIMIT_TTFT}{{host="spark-03", service="c"}}',
                                      "value": max(THRESHOLDS["none"]["max_p90_ttft_ms"].values()) / 1000}]},
                ],
            }
        ],
    }  # fmt: skip
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, allow_unicode=True))
    res = subprocess.run(
        [str(promtool), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout
