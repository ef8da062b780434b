"""Pass/fail thresholds for a benchmark report, each evaluated into its own entry.

``thresholds`` is a dict of threshold name to limit. Each name belongs to the check that measures it (its
``thresholds`` in the registry, bench/checks): the load check's take a number (every concurrency level) or a dict
keyed by concurrency level (``{"32": 100}``; ``"all"`` or ``"*"`` for every level):

- ``min_output_tps``, ``min_total_tps``, ``min_request_throughput``: throughput per level;
- ``min_per_user_tps`` (mean per-user output tok/s), ``min_worst_user_tps`` (the slowest user);
- ``max_error_rate``: failed requests / requests (0..1);
- ``max_<stat>_<metric>_ms`` with stat in mean, p50, p90, p99 and metric in ttft, itl, tpot, e2e
  (for example ``max_p90_ttft_ms``).

The multi_turn check's are global: ``min_cache_hit_rate`` (the shared-prefix run's achieved rate, 0..1) and
``max_turn_p90_ms`` (the slowest multi-turn turn's P90 latency).

A threshold whose check was not run is ``skip``; one whose check ran but could not measure the
value (every request failed, the server does not report cached tokens) is ``fail``: it was asked
for and cannot be shown to hold.
"""

from __future__ import annotations

from typing import Any

from . import checks as bench_checks


def known_names() -> list[str]:
    """Every accepted threshold name (a family of names as its pattern), from the registry of checks."""
    return bench_checks.threshold_names()


def validate(thresholds: Any, concurrency: list[int]) -> list[str]:
    """Problems with the thresholds parameter, each naming the key and the fix (empty when valid)."""
    if thresholds is None:
        return []
    if not isinstance(thresholds, dict):
        example = "{'min_output_tps': {'32': 100}}"
        return [f"thresholds must be a dict such as {example}, got {type(thresholds).__name__}"]
    problems: list[str] = []
    for name, value in thresholds.items():
        owner = bench_checks.threshold_of(str(name))
        if owner is None:
            problems.append(f"thresholds.{name} is not a known threshold; known: {', '.join(known_names())}")
            continue
        problems.extend(owner[1].validate(str(name), value, concurrency))
    return problems


def evaluate(thresholds: dict[str, Any] | None, report: dict[str, Any], checks_run: list[str]) -> list[dict[str, Any]]:
    """One entry per threshold (per level for load metrics) with pass, fail or skip, in the order given."""
    entries: list[dict[str, Any]] = []
    for name, value in (thresholds or {}).items():
        owner = bench_checks.threshold_of(str(name))
        if owner is None:
            continue
        check, threshold = owner
        entries.extend(threshold.evaluate(str(name), value, report, check.name in checks_run))
    return entries
