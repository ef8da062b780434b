"""The health gate: probe a service's endpoints in order until all answer 200, with progress per step."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
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


def wait_healthy(
    base_url: str,
    paths: Sequence[str],
    *,
    step_s: float,
    interval_s: float = 5.0,
    fetch: Fetch = http_get,
    unit_state: Callable[[], tuple[str, float | None]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Probe until healthy or `step_s` passes. `unit_state()` -> (ActiveState, seconds since the main process
    started); a unit in state `failed` (start limit hit) ends the wait at once with give_up."""
    start = clock()
    last: dict[str, Any] = {"healthy": False, "probes": []}
    state, since = ("unknown", None)
    while True:
        if unit_state is not None:
            state, since = unit_state()
            if state == "failed":
                last.update(give_up=True, unit_state=state, since_start_s=since)
                last["msg"] = "the unit is in state failed (it exited too often: systemd's start limit was hit)"
                return last
        last = probe_once(base_url, paths, fetch)
        last.update(give_up=False, unit_state=state, since_start_s=since)
        if last["healthy"]:
            break
        if clock() - start + interval_s > step_s:
            break
        sleep(interval_s)
    probe = last["probes"][-1] if last["probes"] else {"path": "?", "status": 0, "body": ""}
    age = f" {fmt_duration(since)} after the start" if since is not None else ""
    if last["healthy"]:
        last["msg"] = f"healthy{age}: " + ", ".join(f"{p['path']} 200" for p in last["probes"])
    else:
        last["msg"] = f"not healthy yet{age}: {probe['path']} -> {probe['status'] or probe['body']}"
    return last
