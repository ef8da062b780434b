"""Contracts shared by several stages: one definition each, imported everywhere else.

- the JSON schema names of the benchmark report and the fleet report;
- bytes per parameter of each weight type (preflight's memory plan, the report's bandwidth ceiling);
- what sparkfleet owns on a host: the unit/container name prefix, the container label, and the ownership marker
  written into every unit and env file (the only thing teardown and orphan removal take as "ours").
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from typing import Any

BENCHMARK_SCHEMA = "sparkfleet.benchmark/v1"
FLEET_SCHEMA = "sparkfleet.fleet_report/v1"
# One line per run in reports/history.jsonl (report/history.py).
HISTORY_SCHEMA = "sparkfleet.fleet_history/v1"
HISTORY_FILE = "history.jsonl"
# One document per host written by playbooks/status.yml (status/, docs/status.md).
STATUS_SCHEMA = "sparkfleet.status/v1"
# One verdict per service across hosts written by playbooks/fabric_check.yml (fabric_perf.py), kept in this directory
# beside the run directories (like HISTORY_FILE) and read by the fleet report.
FABRIC_PERF_SCHEMA = "sparkfleet.fabric_perf/v1"
FABRIC_DIR = "fabric"

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
# Names of sparkfleet's own units (sparkfleet-<name>.service) that roles other than llm_serving install: a service
# of that name would overwrite the unit (the parser refuses it). Name -> what the unit is.
RESERVED_SERVICE_NAMES: dict[str, str] = {
    "gateway": "the llm_gateway role's gateway unit (llm_gateway_unit)",
    "firewall": "the llm_serving role's host firewall unit (who may reach each port: serving/exposure.py)",
    "gpu-metrics": "the metrics role's GPU metrics collector unit (sparkfleet-gpu-metrics.service and .timer)",
}


def unit_own_name(unit_file: str) -> str:
    """The <name> of any sparkfleet unit, from its file name or path (``.../sparkfleet-<name>.service``), sparkfleet's
    own units (the gateway, the firewall) included; '' for any other file."""
    base = unit_file.rsplit("/", 1)[-1]
    if base.startswith(UNIT_PREFIX) and base.endswith(".service"):
        return base[len(UNIT_PREFIX) : -len(".service")]
    return ""


def unit_service_name(unit_file: str) -> str:
    """The service of a sparkfleet unit, from its file name or path (``.../sparkfleet-<name>.service``); '' for
    any other file and for sparkfleet's own units (RESERVED_SERVICE_NAMES)."""
    name = unit_own_name(unit_file)
    return "" if name in RESERVED_SERVICE_NAMES else name


# The ownership marker: one comment line, written by sparkfleet into each service's unit and env file, naming the
# service in JSON. A file is sparkfleet's only when a line starts with the prefix, the rest parses as a JSON object
# of marker version 1 and its service is the file's own service: a hand-written unit that copies sparkfleet's
# label, name pattern or description is never taken for one. The unit's marker also records what the running
# version answers on (probe_url, health_paths) and which image reference it runs, so a rollback probes and
# restores the kept version at its own address, not the new render's.
OWNED_MARKER = "# org.sparkfleet.owned "
OWNED_MARKER_VERSION = 1
# A marker is looked for in the first lines of a file only, and a file is read up to this size.
OWNED_MARKER_LINES = 8
OWNED_FILE_MAX_BYTES = 1 << 20


def owned_marker(service: str, **meta: Any) -> str:
    """The marker line of a file sparkfleet writes for ``service`` (meta: JSON values kept with it)."""
    return OWNED_MARKER + json.dumps({"v": OWNED_MARKER_VERSION, "service": service, **meta}, sort_keys=True)


def read_owned_marker(text: str, service: str) -> dict[str, Any] | None:
    """The marker's data when ``text`` (a unit or env file) is sparkfleet's file of ``service``; None otherwise."""
    for line in text.splitlines()[:OWNED_MARKER_LINES]:
        if not line.startswith(OWNED_MARKER):
            continue
        try:
            data = json.loads(line[len(OWNED_MARKER) :])
        except ValueError:
            return None
        if isinstance(data, dict) and data.get("v") == OWNED_MARKER_VERSION and data.get("service") == service:
            return data
        return None
    return None


def read_owned_file(path: str, service: str) -> dict[str, Any] | None:
    """read_owned_marker on a file (None when unreadable, too large or not a regular file)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > OWNED_FILE_MAX_BYTES:
            return None
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = "".join(itertools.islice(fh, OWNED_MARKER_LINES))
    except OSError:
        return None
    return read_owned_marker(head, service)
