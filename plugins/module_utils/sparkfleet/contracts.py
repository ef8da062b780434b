"""Contracts shared by several stages: one definition each, imported everywhere else.

- the JSON schema names of the benchmark report and the fleet report;
- bytes per parameter of each weight type (preflight's memory plan, the report's bandwidth ceiling);
- what sparkfleet owns on a host: the unit/container name prefix and the container label.
"""

from __future__ import annotations

BENCHMARK_SCHEMA = "sparkfleet.benchmark/v1"
FLEET_SCHEMA = "sparkfleet.fleet_report/v1"
# One line per run in reports/history.jsonl (report/history.py).
HISTORY_SCHEMA = "sparkfleet.fleet_history/v1"
HISTORY_FILE = "history.jsonl"

# Bytes read per parameter for one decode step (and stored per parameter), by the service's model_dtype.
DTYPE_BYTES: dict[str, float] = {
    "f32": 4.0,
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "nvfp4": 0.5,
    "int4": 0.5,
}

# Everything sparkfleet runs on a host: units and containers sparkfleet-<name>, containers labelled with the name.
UNIT_PREFIX = "sparkfleet-"
SERVICE_LABEL = "org.sparkfleet.service"
ENGINE_LABEL = "org.sparkfleet.engine"


def unit_service_name(unit_file: str) -> str:
    """The service of a sparkfleet unit, from its file name or path (``.../sparkfleet-<name>.service``); '' for
    any other file."""
    base = unit_file.rsplit("/", 1)[-1]
    if base.startswith(UNIT_PREFIX) and base.endswith(".service"):
        return base[len(UNIT_PREFIX) : -len(".service")]
    return ""
