"""Windows over time and the trend of counts across them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

OUTSIDE = -1


def window_starts(*, now: float, window_seconds: float, n_windows: int) -> tuple[float, ...]:
    """Return the start of each window, oldest first; the last window ends at ``now``."""
    return tuple(now - (n_windows - i) * window_seconds for i in range(n_windows))


def window_index(
    times: np.ndarray, *, now: float, window_seconds: float, n_windows: int
) -> np.ndarray:
    """Return each time's window (0 = oldest, n_windows-1 = latest) or ``OUTSIDE``.

    Window i covers ``(start_i, start_i + window_seconds]``. Times after ``now`` count in the
    latest window (agents' clocks run a little ahead); times before the horizon and
    non-finite times are ``OUTSIDE``.
    """
    times = np.asarray(times, dtype=np.float64)
    age = np.floor((now - times) / window_seconds)
    index = np.full(times.shape, OUTSIDE, dtype=np.int64)
    finite = np.isfinite(age)
    age = np.where(finite, np.maximum(age, 0.0), np.inf)
    inside = finite & (age < n_windows)
    index[inside] = n_windows - 1 - age[inside].astype(np.int64)
    return index


def trend_statistics(counts: Sequence[int]) -> tuple[float, float]:
    """Return (least-squares slope of counts per window, slope / its standard error).

    The standard error is the larger of the ordinary regression one (captures counts that
    swing more than chance) and the one implied by Poisson counts at the mean level (keeps a
    perfectly straight line from claiming infinite certainty). z is 0 when undefined.
    """
    y = np.asarray(counts, dtype=np.float64)
    n = len(y)
    if n < 2:
        return 0.0, 0.0
    x = np.arange(n, dtype=np.float64)
    sxx = float(((x - x.mean()) ** 2).sum())
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / sxx)
    variance = float(y.mean()) / sxx  # Poisson: Var(y_i) = mean under a flat trend
    if n > 2:
        residuals = y - (y.mean() + slope * (x - x.mean()))
        variance = max(variance, float((residuals**2).sum()) / (n - 2) / sxx)
    if variance <= 0.0:
        return slope, 0.0
    return slope, slope / math.sqrt(variance)
