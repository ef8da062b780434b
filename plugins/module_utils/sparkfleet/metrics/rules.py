"""Prometheus rules for a sparkfleet fleet: each engine's series under one name, each service's verify limits as a
series, and the alerts (docs/metrics.md).

Three groups, written as one rule file (``rule_file``):

- ``sparkfleet-series``: recording rules that give the engines' own metrics one name each (``SERIES``): vLLM,
  SGLang (``--enable-metrics``), NIM, llama.cpp (``--metrics``) and Dynamo's frontend each spell TTFT, generated
  tokens, running requests and KV cache usage their own way;
- ``sparkfleet-limits``: one series per deployed service and limit (``sparkfleet:verify_max_p90_ttft_seconds``,
  ``sparkfleet:verify_min_output_tps``), from the same thresholds llm_verify checks: the profile's
  (``sparkfleet_verify_thresholds[profile]``, group_vars/all/verify.yml) with the service's ``verify.thresholds``
  merged over them key by key. Nothing here holds a number of its own;
- ``sparkfleet-alerts``: ``ALERTS``.

Live traffic has no fixed concurrency, while the verify thresholds are per concurrency level: an alert takes the
bound that holds at every level, the loosest one (the largest ``max_p90_ttft_ms``, the smallest
``min_output_tps``), and the throughput alert fires only while at least one request is running on average.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SERVICE_JOB = "sparkfleet-services"
NODE_JOB = "sparkfleet-nodes"
GATEWAY_JOB = "sparkfleet-gateway"
PROMETHEUS_JOB = "prometheus"
# The labels every service target carries (targets.py) and the rules aggregate by.
SERVICE_KEYS = ("host", "service")

# One name per measurement -> each engine's metric for it. Sources: vLLM's /metrics, SGLang's with
# --enable-metrics, NIM for LLMs (unprefixed names), llama.cpp's server with --metrics, Dynamo's frontend.
SERIES: dict[str, tuple[str, ...]] = {
    "ttft_bucket": (
        "vllm:time_to_first_token_seconds_bucket",
        "sglang:time_to_first_token_seconds_bucket",
        "time_to_first_token_seconds_bucket",
        "dynamo_frontend_time_to_first_token_seconds_bucket",
    ),
    "output_tokens": (
        "vllm:generation_tokens_total",
        "sglang:generation_tokens_total",
        "generation_tokens_total",
        "llamacpp:tokens_predicted_total",
        "dynamo_frontend_output_tokens_total",
    ),
    "requests_running": (
        "vllm:num_requests_running",
        "sglang:num_running_reqs",
        "num_requests_running",
        "llamacpp:requests_processing",
        "dynamo_frontend_inflight_requests",
    ),
    "kv_cache_usage": (
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "sglang:token_usage",
        "gpu_cache_usage_perc",
        "llamacpp:kv_cache_usage_ratio",
    ),
}
# GPU temperature: sparkfleet's collector (metrics/gpu.py, node exporter's textfile directory) or DCGM exporter.
GPU_TEMPERATURE = ("sparkfleet_gpu_temperature_celsius", "DCGM_FI_DEV_GPU_TEMP")

TTFT_P90 = "sparkfleet:ttft_seconds:p90"
OUTPUT_TPS = "sparkfleet:output_tokens:rate"
RUNNING = "sparkfleet:requests_running:avg"
KV_CACHE = "sparkfleet:kv_cache_usage:ratio"
LIMIT_TTFT = "sparkfleet:verify_max_p90_ttft_seconds"
LIMIT_TPS = "sparkfleet:verify_min_output_tps"

# Every alert and its severity label, in the order of the rule file.
SEVERITY = {
    "SparkfleetServiceDown": "critical",
    "SparkfleetGatewayDown": "critical",
    "SparkfleetHostUnreachable": "critical",
    "SparkfleetTTFTHigh": "warning",
    "SparkfleetThroughputLow": "warning",
    "SparkfleetKVCacheNearFull": "warning",
    "SparkfleetMemoryNearFull": "critical",
    "SparkfleetGPUHot": "warning",
}
ALERTS = tuple(SEVERITY)


@dataclass(frozen=True)
class Settings:
    """The metrics role's alert settings (roles/metrics/defaults/main.yml)."""

    window: str = "5m"
    down_for: str = "2m"
    slow_for: str = "10m"
    full_for: str = "10m"
    kv_cache_full_ratio: float = 0.95
    memory_full_ratio: float = 0.95
    gpu_hot_celsius: float = 85.0
    gpu_hot_for: str = "5m"


@dataclass(frozen=True)
class Limits:
    """A service's alert limits (None: no such threshold, no alert)."""

    max_p90_ttft_s: float | None
    min_output_tps: float | None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Ansible's combine(recursive=true): nested dicts merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _levels(value: Any) -> list[float]:
    """A threshold's limits: a number, or every number of a dict keyed by concurrency level."""
    if _number(value):
        return [float(value)]
    if isinstance(value, Mapping):
        return [float(v) for v in value.values() if _number(v)]
    return []


def limits(profile_thresholds: Mapping[str, Any] | None, service_thresholds: Mapping[str, Any] | None) -> Limits:
    """The loosest bound of each threshold over the concurrency levels (see the module's docstring)."""
    merged = _merge(profile_thresholds or {}, service_thresholds or {})
    ttft = _levels(merged.get("max_p90_ttft_ms"))
    tps = _levels(merged.get("min_output_tps"))
    return Limits(
        max_p90_ttft_s=round(max(ttft) / 1000.0, 6) if ttft else None,
        min_output_tps=min(tps) if tps else None,
    )


def _selector(names: Iterable[str], job: str = SERVICE_JOB) -> str:
    return f'{{job="{job}", __name__=~"{"|".join(names)}"}}'


def _by() -> str:
    return ", ".join(SERVICE_KEYS)


def series_rules(settings: Settings) -> list[dict[str, Any]]:
    """Recording rules: the engines' metrics under one name each, by host and service."""
    win = settings.window
    return [
        {
            "record": "sparkfleet:ttft_seconds_bucket:rate",
            "expr": f"sum by ({_by()}, le) (rate({_selector(SERIES['ttft_bucket'])}[{win}]))",
        },
        {"record": TTFT_P90, "expr": "histogram_quantile(0.9, sparkfleet:ttft_seconds_bucket:rate)"},
        {"record": OUTPUT_TPS, "expr": f"sum by ({_by()}) (rate({_selector(SERIES['output_tokens'])}[{win}]))"},
        {
            "record": RUNNING,
            "expr": f"sum by ({_by()}) (avg_over_time({_selector(SERIES['requests_running'])}[{win}]))",
        },
        {"record": KV_CACHE, "expr": f"max by ({_by()}) ({_selector(SERIES['kv_cache_usage'])})"},
    ]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def limit_rules(services: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One series per service and limit. services: {host, service, limits: Limits}."""
    rules: list[dict[str, Any]] = []
    for svc in sorted(services, key=lambda s: (str(s["host"]), str(s["service"]))):
        labels = {"host": str(svc["host"]), "service": str(svc["service"])}
        lim: Limits = svc["limits"]
        if lim.max_p90_ttft_s is not None:
            rules.append({"record": LIMIT_TTFT, "expr": f"vector({_fmt(lim.max_p90_ttft_s)})", "labels": labels})
        if lim.min_output_tps is not None:
            rules.append({"record": LIMIT_TPS, "expr": f"vector({_fmt(lim.min_output_tps)})", "labels": labels})
    return rules


def _alert(name: str, expr: str, duration: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": SEVERITY[name]},
        "annotations": {"summary": summary, "description": description},
    }


def alert_rules(settings: Settings) -> list[dict[str, Any]]:
    """The alerts (ALERTS), in that order."""
    on = f"on ({_by()})"
    where = "{{ $labels.service }} on {{ $labels.host }}"
    return [
        _alert(
            "SparkfleetServiceDown",
            f'up{{job="{SERVICE_JOB}"}} == 0',
            settings.down_for,
            f"{where} is down",
            "Prometheus cannot read {{ $labels.instance }}: the server is stopped, failing or unreachable. "
            "On the host: systemctl status sparkfleet-{{ $labels.service }}; journalctl -u "
            "sparkfleet-{{ $labels.service }}.",
        ),
        _alert(
            "SparkfleetGatewayDown",
            f'up{{job="{GATEWAY_JOB}"}} == 0',
            settings.down_for,
            "the gateway on {{ $labels.host }} is down",
            "Prometheus cannot read the gateway's metrics at {{ $labels.instance }}: the lab's one endpoint is "
            "probably down too. On the host: systemctl status sparkfleet-gateway.",
        ),
        _alert(
            "SparkfleetHostUnreachable",
            f'up{{job="{NODE_JOB}"}} == 0',
            settings.down_for,
            "{{ $labels.host }} is unreachable",
            "node exporter on {{ $labels.instance }} does not answer: the host is off, off the network, or "
            "prometheus-node-exporter is stopped.",
        ),
        _alert(
            "SparkfleetTTFTHigh",
            f"{TTFT_P90} > {on} group_left () {LIMIT_TTFT}",
            settings.slow_for,
            f"{where}: p90 time to first token past its verify limit",
            "p90 TTFT over the last " + settings.window + " is {{ $value | humanizeDuration }}, above the "
            "largest max_p90_ttft_ms of its verify thresholds (its profile's, merged with the service's own).",
        ),
        _alert(
            "SparkfleetThroughputLow",
            f"({OUTPUT_TPS} < {on} group_left () {LIMIT_TPS}) and {on} ({RUNNING} >= 1)",
            settings.slow_for,
            f"{where}: output tokens/s below its verify limit while serving",
            '{{ $value | printf "%.1f" }} output tok/s while at least one request runs, below the smallest '
            "min_output_tps of its verify thresholds.",
        ),
        _alert(
            "SparkfleetKVCacheNearFull",
            f"{KV_CACHE} > {_fmt(settings.kv_cache_full_ratio)}",
            settings.full_for,
            f"{where}: KV cache {{{{ $value | humanizePercentage }}}} full",
            "Requests queue or get preempted when the KV cache is full: lower the load, the context length, or "
            "add a server.",
        ),
        _alert(
            "SparkfleetMemoryNearFull",
            f'1 - node_memory_MemAvailable_bytes{{job="{NODE_JOB}"}} / node_memory_MemTotal_bytes{{job="{NODE_JOB}"}}'
            f" > {_fmt(settings.memory_full_ratio)}",
            settings.full_for,
            "{{ $labels.host }}: memory {{ $value | humanizePercentage }} in use",
            "MemAvailable is nearly gone. On DGX Spark (GB10) this is the unified memory the GPU shares with the "
            "OS: the driver's out-of-memory (NV_ERR_NO_MEMORY) or a hung host comes next.",
        ),
        _alert(
            "SparkfleetGPUHot",
            f'max by (host, gpu) ({{__name__=~"{"|".join(GPU_TEMPERATURE)}"}}) > {_fmt(settings.gpu_hot_celsius)}',
            settings.gpu_hot_for,
            "{{ $labels.host }} GPU {{ $labels.gpu }} at {{ $value }} °C",
            "The GPU runs hot: check the airflow and the fans; it throttles its clocks next.",
        ),
    ]


def services_of(plans: Mapping[str, Any], thresholds: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """{host: plan} -> the deployed services with their limits (plan: ansible_facts.sparkfleet_plan)."""
    out: list[dict[str, Any]] = []
    for host, plan in sorted(plans.items()):
        if not isinstance(plan, Mapping):
            continue
        profile = (thresholds or {}).get(str(plan.get("profile") or "")) or {}
        for svc in plan.get("services") or []:
            if not isinstance(svc, Mapping) or svc.get("status") != "deploy":
                continue
            verify = _mapping(svc.get("verify"))
            own = _mapping(verify.get("thresholds"))
            out.append({"host": host, "service": str(svc.get("name")), "limits": limits(profile, own)})
    return out


def rule_file(
    plans: Mapping[str, Any], thresholds: Mapping[str, Any] | None, settings: Settings | None = None
) -> dict[str, Any]:
    """The whole rule file Prometheus loads (rule_files in prometheus.yml)."""
    settings = settings or Settings()
    return {
        "groups": [
            {"name": "sparkfleet-series", "rules": series_rules(settings)},
            {"name": "sparkfleet-limits", "rules": limit_rules(services_of(plans, thresholds))},
            {"name": "sparkfleet-alerts", "rules": alert_rules(settings)},
        ]
    }
