"""Statistics for the benchmark: percentiles and the summaries the report carries.

Percentiles use linear interpolation between closest ranks (numpy's default, the method
SGLang's ``bench_serving`` reports through ``np.percentile``), so figures compare directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

STAT_KEYS = ("mean", "p50", "p90", "p99")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) of values by linear interpolation; None for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    rank = (len(data) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(data[low])
    return float(data[low] + (data[high] - data[low]) * (rank - low))


def median(values: Sequence[float]) -> float | None:
    """The median of values; None for no values."""
    return percentile(values, 50.0)


def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean of values; None for no values."""
    if not values:
        return None
    return float(math.fsum(values) / len(values))


def summarize(values: Sequence[float], ndigits: int = 3) -> dict[str, float | None]:
    """``{"mean", "p50", "p90", "p99"}`` of values, rounded; every key None for no values."""
    return {
        "mean": _round(mean(values), ndigits),
        "p50": _round(percentile(values, 50.0), ndigits),
        "p90": _round(percentile(values, 90.0), ndigits),
        "p99": _round(percentile(values, 99.0), ndigits),
    }


def summarize_user(values: Sequence[float], ndigits: int = 3) -> dict[str, float | None]:
    """``{"mean", "p50", "min"}`` of per-user rates, rounded; every key None for no values."""
    return {
        "mean": _round(mean(values), ndigits),
        "p50": _round(percentile(values, 50.0), ndigits),
        "min": _round(min(values), ndigits) if values else None,
    }


def _round(value: float | None, ndigits: int) -> float | None:
    return None if value is None else round(value, ndigits)
