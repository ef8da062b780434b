"""What the metrics_config module computes: the scrape targets and the rule file, or the problems with its inputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .rules import Settings, rule_file
from .targets import scrape_targets

# Prometheus durations the rules use (for:, rate windows): a number and a unit, as Prometheus writes them.
DURATION_RE = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+\Z")
_DURATIONS = ("window", "down_for", "slow_for", "full_for", "gpu_hot_for")
_RATIOS = ("kv_cache_full_ratio", "memory_full_ratio")


def settings_of(raw: Mapping[str, Any], errors: list[str]) -> Settings:
    """The module's alert settings -> Settings; each bad value is an error naming the role variable."""
    values: dict[str, Any] = {}
    for key in _DURATIONS:
        if key in raw:
            if not DURATION_RE.fullmatch(str(raw[key])):
                errors.append(f"metrics_alert_{key} {raw[key]!r} is not a Prometheus duration: write it as 30s, 5m, 1h")
            values[key] = str(raw[key])
    for key in _RATIOS:
        if key in raw:
            try:
                ratio = float(raw[key])
            except (TypeError, ValueError):
                ratio = -1.0
            if not 0 < ratio <= 1:
                errors.append(f"metrics_alert_{key} {raw[key]!r} must be a ratio in (0, 1], for example 0.95")
            values[key] = ratio
    if "gpu_hot_celsius" in raw:
        try:
            values["gpu_hot_celsius"] = float(raw["gpu_hot_celsius"])
        except (TypeError, ValueError):
            errors.append(f"metrics_alert_gpu_hot_celsius {raw['gpu_hot_celsius']!r} must be a number of degrees")
    unknown = sorted(set(raw) - set(_DURATIONS) - set(_RATIOS) - {"gpu_hot_celsius"})
    if unknown:
        errors.append(f"unknown alert settings {', '.join(unknown)}")
    try:
        return Settings(**values)
    except TypeError:
        return Settings()


def run_module(params: Mapping[str, Any]) -> dict[str, Any]:
    """Targets and rules from the plans; ``errors`` lists what to fix (the module fails on any)."""
    errors: list[str] = []
    hosts = params.get("hosts") or {}
    settings = settings_of(params.get("alerts") or {}, errors)
    targets, target_errors = scrape_targets(
        hosts,
        node_exporter_port=int(params["node_exporter_port"]),
        gateways=params.get("gateways") or [],
        prometheus_host=str(params["prometheus_host"]),
    )
    errors.extend(target_errors)
    plans = {host: info.get("plan") for host, info in hosts.items() if isinstance(info, Mapping)}
    thresholds = params.get("thresholds") or {}
    return {
        "changed": False,
        "targets": targets,
        "rules": rule_file(plans, thresholds, settings),
        "errors": errors,
        "services": sum(len(entries) for job, entries in targets.items() if job == "sparkfleet-services"),
    }
