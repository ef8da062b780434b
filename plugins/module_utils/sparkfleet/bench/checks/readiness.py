"""The readiness check: the service's health endpoints answer 200, then /v1/models lists the model. The checks
after it are skipped when the server never became healthy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ...service.model import ENGINES
from ..http_client import BenchHTTPError
from .base import MODELS_PATH, Check, Context, Outcome, entry, error_text

NAME = "readiness"
NOT_READY = "the server never became ready (see the readiness check)"


def readiness_paths(engine: str, health_paths: Sequence[str] | None = None) -> list[str]:
    """The health endpoints readiness waits for: the service's own (the plan's health_paths), else its engine's in
    the one engine table (service/model.py), /v1/models left to the model check that follows. A service whose only
    health path is /v1/models is probed at /health, and a 404 there lets /v1/models decide."""
    paths = health_paths if health_paths else (ENGINES[engine].health_paths if engine in ENGINES else ())
    return [p for p in paths if p != MODELS_PATH] or ["/health"]


async def check_readiness(ctx: Context) -> dict[str, Any]:
    """Wait for the health endpoints, then for /v1/models to list the model."""
    s = ctx.s
    start = time.monotonic()
    deadline = start + s.ready_timeout_s
    paths = readiness_paths(s.engine, s.health_paths)
    details: dict[str, Any] = {"health_endpoint": None, "attempts": 0, "waited_s": 0.0}
    last = "no attempt made"
    healthy = False
    while True:
        details["attempts"] += 1
        path = paths[0]
        try:
            resp = await asyncio.wait_for(ctx.client.request("GET", path), min(s.timeout_s, 30.0))
            if resp.status == 200:
                healthy = True
                details["health_endpoint"] = path
                break
            if resp.status in (404, 405) and len(paths) > 1:
                paths.pop(0)
                last = f"GET {ctx.client.url(path)}: HTTP {resp.status}, trying {paths[0]}"
                continue
            if resp.status in (404, 405):
                # No health endpoint at all (some OpenAI-compatible servers): /v1/models decides.
                healthy = True
                details["health_endpoint"] = f"{MODELS_PATH} (no {path})"
                break
            last = f"GET {ctx.client.url(path)}: HTTP {resp.status} {resp.body[:200].decode('utf-8', 'replace')}"
        except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
            last = f"GET {ctx.client.url(path)}: {error_text(exc, min(s.timeout_s, 30.0))}"
            if isinstance(exc, BenchHTTPError) and exc.permanent:
                break  # waiting will not fix it: say so now, not after ready_timeout_s
        if time.monotonic() + s.ready_interval_s > deadline:
            break
        await asyncio.sleep(s.ready_interval_s)
    details["waited_s"] = round(time.monotonic() - start, 2)
    details["healthy"] = healthy
    if not healthy:
        details["last_error"] = last
        return entry(
            NAME,
            "fail",
            f"not ready after {details['waited_s']}s (ready_timeout_s={s.ready_timeout_s:g}): {last}",
            details,
        )
    # /v1/models: may still answer 503 for a moment after health turns green.
    models: list[str] = []
    while True:
        try:
            resp = await asyncio.wait_for(ctx.client.request("GET", MODELS_PATH), min(s.timeout_s, 30.0))
            if resp.status == 200:
                body = resp.json()
                data = body.get("data") if isinstance(body, dict) else None
                for item in data if isinstance(data, list) else []:
                    if isinstance(item, dict) and item.get("id"):
                        models.append(str(item["id"]))
                        aliases = item.get("aliases")
                        if isinstance(aliases, list):
                            models.extend(str(a) for a in aliases if a != item["id"])
                break
            last = f"GET {ctx.client.url(MODELS_PATH)}: HTTP {resp.status}"
        except (BenchHTTPError, OSError, asyncio.TimeoutError) as exc:
            last = f"GET {ctx.client.url(MODELS_PATH)}: {error_text(exc, min(s.timeout_s, 30.0))}"
        if time.monotonic() + s.ready_interval_s > deadline:
            details["waited_s"] = round(time.monotonic() - start, 2)
            return entry(NAME, "fail", f"healthy, but {MODELS_PATH} did not answer: {last}", details)
        await asyncio.sleep(s.ready_interval_s)
    details["waited_s"] = round(time.monotonic() - start, 2)
    details["models"] = models
    if s.model not in models:
        return entry(
            NAME,
            "fail",
            f"model {s.model!r} is not served: {MODELS_PATH} lists {models or 'nothing'}; "
            "set the service's model to what the server serves",
            details,
        )
    return entry(
        NAME,
        "pass",
        f"ready after {details['waited_s']}s via {details['health_endpoint']}; {s.model} is listed",
        details,
    )


async def run(ctx: Context) -> Outcome:
    result = await check_readiness(ctx)
    return Outcome([result], stop="" if result["details"].get("healthy", False) else NOT_READY)


CHECK = Check(
    name=NAME,
    run=run,
    description=(
        "C(readiness) waits for the service's health endpoints (O(health_paths), else its engine's in the service "
        "model's engine table), then checks that C(/v1/models) lists O(model); when the server never becomes "
        "healthy the checks after it are C(skip)."
    ),
)
