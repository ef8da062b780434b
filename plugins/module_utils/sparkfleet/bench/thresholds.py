"""Pass/fail thresholds for a benchmark report, each evaluated into its own entry.

``thresholds`` is a dict. Load metrics take a number (every concurrency level) or a dict keyed by
concurrency level (``{"32": 100}``; ``"all"`` or ``"*"`` for every level):

- ``min_output_tps``, ``min_total_tps``, ``min_request_throughput``: throughput per level;
- ``min_per_user_tps`` (mean per-user output tok/s), ``min_worst_user_tps`` (the slowest user);
- ``max_error_rate``: failed requests / requests (0..1);
- ``max_<stat>_<metric>_ms`` with stat in mean, p50, p90, p99 and metric in ttft, itl, tpot, e2e
  (for example ``max_p90_ttft_ms``).

Global: ``min_cache_hit_rate`` (the shared-prefix run's achieved rate, 0..1) and
``max_turn_p90_ms`` (the slowest multi-turn turn's P90 latency).

A threshold whose check was not run is ``skip``; one whose check ran but could not measure the
value (every request failed, the server does not report cached tokens) is ``fail``: it was asked
for and cannot be shown to hold.
"""

from __future__ import annotations

import re
from typing import Any

_LEVEL_METRICS: dict[str, tuple[str, str]] = {
    "min_output_tps": ("min", "output_throughput"),
    "min_total_tps": ("min", "total_throughput"),
    "min_request_throughput": ("min", "request_throughput"),
    "min_per_user_tps": ("min", "per_user_output_tps.mean"),
    "min_worst_user_tps": ("min", "per_user_output_tps.min"),
    "max_error_rate": ("max", "error_rate"),
}
_LATENCY = re.compile(r"max_(mean|p50|p90|p99)_(ttft|itl|tpot|e2e)_ms\Z")
_GLOBAL = ("min_cache_hit_rate", "max_turn_p90_ms")
ALL_LEVELS = ("all", "*")


def known_names() -> list[str]:
    """Every accepted threshold name (latency ones as their pattern)."""
    return [*_LEVEL_METRICS, "max_<mean|p50|p90|p99>_<ttft|itl|tpot|e2e>_ms", *_GLOBAL]


def _level_metric(name: str) -> tuple[str, str] | None:
    if name in _LEVEL_METRICS:
        return _LEVEL_METRICS[name]
    match = _LATENCY.fullmatch(name)
    if match:
        return "max", f"{match.group(2)}_ms.{match.group(1)}"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(thresholds: Any, concurrency: list[int]) -> list[str]:
    """Problems with the thresholds parameter, each naming the key and the fix (empty when valid)."""
    if thresholds is None:
        return []
    if not isinstance(thresholds, dict):
        example = "{'min_output_tps': {'32': 100}}"
        return [f"thresholds must be a dict such as {example}, got {type(thresholds).__name__}"]
    problems: list[str] = []
    for name, value in thresholds.items():
        if name in _GLOBAL:
            if not _number(value):
                problems.append(f"thresholds.{name} must be a number, got {value!r}")
            continue
        if _level_metric(str(name)) is None:
            problems.append(f"thresholds.{name} is not a known threshold; known: {', '.join(known_names())}")
            continue
        if _number(value):
            continue
        if not isinstance(value, dict) or not value:
            problems.append(
                f"thresholds.{name} must be a number or a dict of concurrency level to number, got {value!r}"
            )
            continue
        for level, limit in value.items():
            if not _number(limit):
                problems.append(f"thresholds.{name}.{level} must be a number, got {limit!r}")
            if str(level) in ALL_LEVELS:
                continue
            try:
                as_int = int(str(level))
            except ValueError:
                problems.append(f"thresholds.{name} key {level!r} must be a concurrency level (an integer) or 'all'")
                continue
            if as_int not in concurrency:
                problems.append(
                    f"thresholds.{name} names concurrency {as_int}, which is not in the sweep {concurrency}: "
                    "add it to concurrency or drop the key"
                )
    return problems


def _lookup(row: dict[str, Any], dotted: str) -> float | None:
    if dotted == "error_rate":
        total = row.get("num_requests") or 0
        return None if not total else round(row.get("errors", 0) / total, 6)
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return float(value) if _number(value) else None


def _entry(name: str, limit: float, measured: float | None, kind: str, missing: str) -> dict[str, Any]:
    if measured is None:
        return {"name": name, "limit": float(limit), "measured": None, "status": "fail", "message": missing}
    ok = measured >= limit if kind == "min" else measured <= limit
    relation = ">=" if kind == "min" else "<="
    return {
        "name": name,
        "limit": float(limit),
        "measured": measured,
        "status": "pass" if ok else "fail",
        "message": f"{measured:g} {'meets' if ok else 'misses'} {relation} {limit:g}",
    }


def _skip(name: str, limit: float, why: str) -> dict[str, Any]:
    return {"name": name, "limit": float(limit), "measured": None, "status": "skip", "message": why}


def evaluate(thresholds: dict[str, Any] | None, report: dict[str, Any], checks_run: list[str]) -> list[dict[str, Any]]:
    """One entry per threshold (per level for load metrics) with pass, fail or skip."""
    entries: list[dict[str, Any]] = []
    load_rows = {int(row["concurrency"]): row for row in report.get("load") or []}
    for name, value in (thresholds or {}).items():
        if name == "min_cache_hit_rate":
            entries.append(_cache_entry(name, float(value), report, checks_run))
            continue
        if name == "max_turn_p90_ms":
            entries.append(_turn_entry(name, float(value), report, checks_run))
            continue
        spec = _level_metric(str(name))
        if spec is None:
            continue
        kind, dotted = spec
        targets: list[tuple[int | None, float]]
        if _number(value):
            targets = [(level, float(value)) for level in sorted(load_rows)] or [(None, float(value))]
        else:
            targets = []
            for key, limit in value.items():
                if str(key) in ALL_LEVELS:
                    targets.extend((level, float(limit)) for level in sorted(load_rows))
                    if not load_rows:
                        targets.append((None, float(limit)))
                else:
                    targets.append((int(str(key)), float(limit)))
        for level, limit in targets:
            label = f"{name}@{level}" if level is not None else name
            if "load" not in checks_run:
                entries.append(_skip(label, limit, "the load check was not run"))
            elif level is None or level not in load_rows:
                entries.append(
                    {
                        "name": label,
                        "limit": limit,
                        "measured": None,
                        "status": "fail",
                        "message": "no load result for this concurrency level",
                    }
                )
            else:
                entries.append(
                    _entry(label, limit, _lookup(load_rows[level], dotted), kind, "not measured: no request completed")
                )
    return entries


def _cache_entry(name: str, limit: float, report: dict[str, Any], checks_run: list[str]) -> dict[str, Any]:
    if "multi_turn" not in checks_run:
        return _skip(name, limit, "the multi_turn check was not run")
    multi = report.get("multi_turn") or {}
    achieved = (multi.get("cache_hit_rate") or {}).get("achieved")
    return _entry(name, limit, achieved, "min", "not measured: the server did not report cached prompt tokens")


def _turn_entry(name: str, limit: float, report: dict[str, Any], checks_run: list[str]) -> dict[str, Any]:
    if "multi_turn" not in checks_run:
        return _skip(name, limit, "the multi_turn check was not run")
    turns = (report.get("multi_turn") or {}).get("per_turn") or []
    p90s = [t["p90_ms"] for t in turns if _number(t.get("p90_ms"))]
    return _entry(name, limit, max(p90s) if p90s else None, "max", "not measured: no turn completed")
