"""Percentiles and summaries of the benchmark (numpy's linear interpolation, worked by hand)."""

from __future__ import annotations

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import stats as bench_stats


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 90, 3.7),
        ([1.0, 2.0, 3.0, 4.0], 99, 3.97),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # unsorted input
        ([7.0], 90, 7.0),
        ([10.0, 20.0], 25, 12.5),
        (list(range(1, 101)), 90, 90.1),
        (list(range(1, 101)), 99, 99.01),
    ],
)
def test_percentile_matches_linear_interpolation(values: list[float], q: float, expected: float) -> None:
    assert bench_stats.percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert bench_stats.percentile([], 50) is None
    assert bench_stats.median([]) is None
    assert bench_stats.mean([]) is None


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_q_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        bench_stats.percentile([1.0], q)


def test_summarize_keys_and_values() -> None:
    summary = bench_stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert summary == {"mean": 2.5, "p50": 2.5, "p90": 3.7, "p99": 3.97}
    assert bench_stats.summarize([]) == {"mean": None, "p50": None, "p90": None, "p99": None}


def test_summarize_user_reports_the_slowest() -> None:
    assert bench_stats.summarize_user([30.0, 10.0, 20.0]) == {"mean": 20.0, "p50": 20.0, "min": 10.0}
    assert bench_stats.summarize_user([]) == {"mean": None, "p50": None, "min": None}
