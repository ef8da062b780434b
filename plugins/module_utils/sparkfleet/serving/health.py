"""The health gate: probe a service's endpoints in order until all answer 200, with progress per step."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..netenv import http_get

Fetch = Callable[[str, float], tuple[int, str]]


def probe_once(base_url: str, paths: Sequence[str], fetch: Fetch = http_get, timeout: float = 10.0) -> dict[str, Any]:
    """Probe paths in order; healthy when every one answers 200. Stops at the first that does not."""
    results = []
    for path in paths:
        status, body = fetch(base_url.rstrip("/") + path, timeout)
        results.append({"path": path, "status": status, "body": body[:300]})
        if status != 200:
            return {"healthy": False, "probes": results}
    models: list[str] = []
    for r in results:
        if str(r["path"]).endswith("/v1/models"):
            models = _model_ids(str(r["body"]))
    return {"healthy": True, "probes": results, "models": models}


def _model_ids(body: str) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    items = data.get("data") if isinstance(data, dict) else None
    return [str(m.get("id")) for m in items or [] if isinstance(m, dict)]


def fmt_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60}m{s % 60:02d}s"


@dataclass(frozen=True)
class UnitStatus:
    """What systemd says of the unit that runs a service (``systemctl show``)."""

    state: str = "unknown"  # ActiveState
    since_start_s: float | None = None  # seconds since the main process started
    restarts: int = 0  # NRestarts: automatic restarts since the last explicit start
    waiting_restart: bool = False  # SubState auto-restart: the main process exited, a restart is pending
    exit_status: str = ""  # ExecMainStatus of the last exit, with ExecMainCode ("exited 125", "killed 9")

    def exits(self, baseline: int) -> int:
        """How many times the main process exited since the restart count was ``baseline``."""
        return max(0, self.restarts - baseline) + (1 if self.waiting_restart else 0)


UNIT_PROPERTIES = "ActiveState,SubState,NRestarts,ExecMainStartTimestampMonotonic,ExecMainCode,ExecMainStatus"
_EXEC_CODES = {"1": "exited", "2": "killed", "3": "dumped core"}


def parse_unit_status(text: str, now_monotonic: float) -> UnitStatus:
    """``systemctl show -p UNIT_PROPERTIES`` output -> UnitStatus (unknown fields stay at their defaults)."""
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    started = int(props.get("ExecMainStartTimestampMonotonic") or 0) if props.get(
        "ExecMainStartTimestampMonotonic", "").isdigit() else 0  # fmt: skip
    restarts = props.get("NRestarts", "")
    code, status = props.get("ExecMainCode", "0"), props.get("ExecMainStatus", "")
    return UnitStatus(
        state=props.get("ActiveState", "unknown") or "unknown",
        since_start_s=(now_monotonic - started / 1e6) if started else None,
        restarts=int(restarts) if restarts.isdigit() else 0,
        waiting_restart=props.get("SubState") == "auto-restart",
        exit_status=f"{_EXEC_CODES[code]} {status}" if code in _EXEC_CODES else "",
    )


def wait_healthy(
    base_url: str,
    paths: Sequence[str],
    *,
    step_s: float,
    interval_s: float = 5.0,
    fetch: Fetch = http_get,
    unit_status: Callable[[], UnitStatus] | None = None,
    fail_after_exits: int = 0,
    restarts_baseline: int = -1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Probe until healthy or `step_s` passes.

    With ``unit_status``: a unit in state ``failed`` (start limit hit) ends the wait at once with give_up, and so
    does a version whose main process exited ``fail_after_exits`` times (0: never) before it was ever healthy,
    counted from ``restarts_baseline`` (systemd's NRestarts right after the start; -1: as found at this call's
    start). A slow model load never exits, so it keeps its whole health budget.
    """
    start = clock()
    last: dict[str, Any] = {"healthy": False, "probes": []}
    unit = UnitStatus()
    baseline = restarts_baseline
    exits = 0
    while True:
        if unit_status is not None:
            unit = unit_status()
            if baseline < 0:
                baseline = unit.restarts
            exits = unit.exits(baseline)
            verdict = _unit_verdict(unit, exits, fail_after_exits)
            if verdict:
                last.update(give_up=True, unit_state=unit.state, since_start_s=unit.since_start_s, exits=exits,
                            exit_status=unit.exit_status, msg=verdict)  # fmt: skip
                return last
        last = probe_once(base_url, paths, fetch)
        last.update(give_up=False, unit_state=unit.state, since_start_s=unit.since_start_s, exits=exits,
                    exit_status=unit.exit_status)  # fmt: skip
        if last["healthy"]:
            break
        if clock() - start + interval_s > step_s:
            break
        sleep(interval_s)
    probe = last["probes"][-1] if last["probes"] else {"path": "?", "status": 0, "body": ""}
    since = unit.since_start_s
    age = f" {fmt_duration(since)} after the start" if since is not None else ""
    if last["healthy"]:
        last["msg"] = f"healthy{age}: " + ", ".join(f"{p['path']} 200" for p in last["probes"])
    else:
        last["msg"] = f"not healthy yet{age}: {probe['path']} -> {probe['status'] or probe['body']}"
    return last


def _unit_verdict(unit: UnitStatus, exits: int, fail_after_exits: int) -> str:
    """Why waiting longer is pointless ('' while it is not)."""
    status = f" (last exit: {unit.exit_status})" if unit.exit_status else ""
    if unit.state == "failed":
        return f"the unit is in state failed (it exited too often: systemd's start limit was hit){status}"
    if fail_after_exits > 0 and exits >= fail_after_exits:
        return (
            f"the server exited {exits} time(s) before it was ever healthy{status}: judged failed without waiting "
            f"for systemd's start limit (llm_serving_fail_after_exits {fail_after_exits})"
        )
    return ""
