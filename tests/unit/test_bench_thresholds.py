"""Threshold validation and evaluation: one entry per threshold and level, pass/fail/skip."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import thresholds as th


def _row(concurrency: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "concurrency": concurrency,
        "num_requests": 20,
        "completed": 20,
        "errors": 0,
        "output_throughput": 100.0 * concurrency,
        "total_throughput": 300.0 * concurrency,
        "request_throughput": 2.0,
        "ttft_ms": {"mean": 50.0, "p50": 40.0, "p90": 90.0, "p99": 120.0},
        "itl_ms": {"mean": 5.0, "p50": 4.0, "p90": 9.0, "p99": 12.0},
        "tpot_ms": {"mean": 5.0, "p50": 4.0, "p90": 9.0, "p99": 12.0},
        "e2e_ms": {"mean": 500.0, "p50": 400.0, "p90": 900.0, "p99": 1200.0},
        "per_user_output_tps": {"mean": 25.0, "p50": 24.0, "min": 18.0},
    }
    row.update(over)
    return row


REPORT: dict[str, Any] = {
    "load": [_row(1), _row(8, errors=2, completed=18)],
    "multi_turn": {
        "per_turn": [{"turn": 1, "p90_ms": 100.0}, {"turn": 2, "p90_ms": 300.0}],
        "cache_hit_rate": {"expected": 0.8, "achieved": 0.6},
    },
}
ALL = ["readiness", "chat", "json_schema", "multi_turn", "load"]


def _by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in entries}


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        ({"min_output_tps": {"8": 700}}, {"min_output_tps@8": ("pass", 800.0)}),
        ({"min_output_tps": {"8": 900}}, {"min_output_tps@8": ("fail", 800.0)}),
        ({"min_output_tps": 150}, {"min_output_tps@1": ("fail", 100.0), "min_output_tps@8": ("pass", 800.0)}),
        ({"max_p90_ttft_ms": {"all": 90}}, {"max_p90_ttft_ms@1": ("pass", 90.0), "max_p90_ttft_ms@8": ("pass", 90.0)}),
        ({"max_p99_e2e_ms": {"1": 1000}}, {"max_p99_e2e_ms@1": ("fail", 1200.0)}),
        ({"max_mean_itl_ms": {"8": 5}}, {"max_mean_itl_ms@8": ("pass", 5.0)}),
        ({"max_error_rate": 0.05}, {"max_error_rate@1": ("pass", 0.0), "max_error_rate@8": ("fail", 0.1)}),
        ({"min_worst_user_tps": {"1": 20}}, {"min_worst_user_tps@1": ("fail", 18.0)}),
        ({"min_per_user_tps": {"1": 20}}, {"min_per_user_tps@1": ("pass", 25.0)}),
        ({"min_cache_hit_rate": 0.5}, {"min_cache_hit_rate": ("pass", 0.6)}),
        ({"min_cache_hit_rate": 0.7}, {"min_cache_hit_rate": ("fail", 0.6)}),
        ({"max_turn_p90_ms": 250}, {"max_turn_p90_ms": ("fail", 300.0)}),
    ],
)
def test_evaluate(thresholds: dict[str, Any], expected: dict[str, tuple[str, float]]) -> None:
    assert th.validate(thresholds, [1, 8]) == []
    entries = _by_name(th.evaluate(thresholds, REPORT, ALL))
    assert set(entries) == set(expected)
    for name, (status, measured) in expected.items():
        assert entries[name]["status"] == status, entries[name]
        assert entries[name]["measured"] == pytest.approx(measured)
        assert set(entries[name]) >= {"name", "limit", "measured", "status"}


def test_thresholds_of_checks_not_run_are_skipped() -> None:
    entries = th.evaluate({"min_output_tps": {"8": 1}, "min_cache_hit_rate": 0.1}, REPORT, ["readiness", "chat"])
    assert [e["status"] for e in entries] == ["skip", "skip"]


def test_unmeasured_values_fail() -> None:
    report = {
        "load": [_row(1, completed=0, errors=20, ttft_ms={"mean": None, "p50": None, "p90": None, "p99": None})],
        "multi_turn": {"per_turn": [], "cache_hit_rate": {"expected": 0.8, "achieved": None}},
    }
    entries = _by_name(th.evaluate({"max_p90_ttft_ms": 100, "min_cache_hit_rate": 0.5}, report, ALL))
    assert entries["max_p90_ttft_ms@1"]["status"] == "fail"
    assert entries["max_p90_ttft_ms@1"]["measured"] is None
    assert entries["min_cache_hit_rate"]["status"] == "fail"
    assert "did not report cached" in entries["min_cache_hit_rate"]["message"]


@pytest.mark.parametrize(
    ("thresholds", "fragment"),
    [
        ("fast please", "must be a dict"),
        ({"min_speed": 1}, "thresholds.min_speed is not a known threshold"),
        ({"max_p95_ttft_ms": 1}, "thresholds.max_p95_ttft_ms is not a known threshold"),
        ({"min_output_tps": {"32": 100}}, "concurrency 32, which is not in the sweep"),
        ({"min_output_tps": {"eight": 100}}, "must be a concurrency level"),
        ({"min_output_tps": {"8": "lots"}}, "thresholds.min_output_tps.8 must be a number"),
        ({"min_output_tps": []}, "must be a number or a dict"),
        ({"min_cache_hit_rate": "half"}, "thresholds.min_cache_hit_rate must be a number"),
        ({"max_error_rate": True}, "must be a number or a dict"),
    ],
)
def test_validate_names_the_key_and_the_fix(thresholds: Any, fragment: str) -> None:
    problems = th.validate(thresholds, [1, 8])
    assert problems, thresholds
    assert any(fragment in p for p in problems), problems
