"""Shared by the service and serving tests: the profiles, GPU facts shaped like nvidia_gpu_facts', and the
pipeline every stage uses: the one parser and plan (service/plan.py), then the renderer (serving/render.py)."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service.plan import (
    Plan,
    PlanInputs,
    check_plan,
)
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.serving.render import Settings, render_plan

from tests.conftest import ROOT

PROFILES: dict[str, Any] = yaml.safe_load((ROOT / "group_vars" / "all" / "profiles.yml").read_text())[
    "sparkfleet_profiles"
]
NVAPI_KEY = "nvapi-" + "Ab3_-" * 12
# A valid SGLang service on a Spark, and the lab's CPU stand-in: the starting points of the parser's tables.
SGLANG_SERVICE: dict[str, Any] = {
    "name": "sg",
    "engine": "sglang",
    "image": "lmsysorg/sglang:latest-cu130",
    "model": "Qwen/Qwen3-8B",
    "model_params_b": 8.2,
    "model_dtype": "bf16",
}
STANDIN_SERVICE: dict[str, Any] = {
    "name": "standin",
    "engine": "openai",
    "image": "sparkfleet-lab/llm-standin:llama.cpp",
    "model": "sparkfleet/tiny-llama",
    "gpu": "none",
    "port": 8080,
    "container_port": 8080,
}
_GB10 = {"index": 0, "name": "NVIDIA GB10", "memory_total_mib": None, "unified_memory": True}
SPARK_GPU: dict[str, Any] = {
    "profile": "dgx_spark",
    "gpus": [_GB10],
    "serving_gpu": _GB10,
    "driver_version": "580.95.05",
    "unified_memory": True,
    "usable_memory_mib": 116736,
    "system_memory_available_mib": 116736,
}
# A Station whose workstation GPU is index 0: the GB300 is index 1.
STATION_GPU: dict[str, Any] = {
    "profile": "dgx_station",
    "gpus": [
        {"index": 0, "name": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "compute_capability": "12.0"},
        {"index": 1, "name": "NVIDIA GB300", "compute_capability": "10.3", "memory_total_mib": 284208},
    ],
    "serving_gpu": {"index": 1, "name": "NVIDIA GB300", "compute_capability": "10.3", "memory_total_mib": 284208},
    "driver_version": "580.82.07",
}
NO_GPU: dict[str, Any] = {"profile": "none", "serving_gpu": None, "gpus": [], "driver_version": None}


def make_plan(services: Any, gpu: dict[str, Any] | None = None, **over: Any) -> Plan:
    inputs: dict[str, Any] = {
        "services": copy.deepcopy(services),
        "profiles": copy.deepcopy(PROFILES),
        "gpu": SPARK_GPU if gpu is None else gpu,
        "free_disk_gb": lambda _path: 1000.0,
        **over,
    }
    return check_plan(PlanInputs(**inputs))


def render(
    services: Any,
    gpu: dict[str, Any] | None = None,
    *,
    plan_over: dict[str, Any] | None = None,
    settings: Settings | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Plan then render, as preflight and serving do; the plan must be clean."""
    plan = make_plan(services, gpu, **(plan_over or {}))
    assert plan.errors == [], plan.errors
    return render_plan(plan.as_fact(), profiles=PROFILES, settings=settings or Settings(systemd_version=255), **kw)
