"""Summary figures shared by the benchmarks."""

from __future__ import annotations

__all__ = ["percentile"]


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0-1) of `values`, the nearest of the sorted samples."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
