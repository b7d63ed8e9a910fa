"""Streaming sufficient statistics for one arm and one metric.

Every comparison in ``analytics`` works from these, so a canary tick never rescans raw
events. A proportion is a mean of 0/1 values (``total`` is then the success count), a
log-mean is a mean of ``log(x)`` values: one type serves all three metric kinds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squares of a stream of observations; merges associatively."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"Moments.n must be >= 0, got {self.n}")
        if self.total_sq < 0:
            raise ValueError(f"Moments.total_sq must be >= 0, got {self.total_sq}")
        if not (math.isfinite(self.total) and math.isfinite(self.total_sq)):
            raise ValueError("Moments totals must be finite")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Moments:
        """Return the moments of ``values``; raises ``ValueError`` on NaN or infinity."""
        n, s, ss = 0, 0.0, 0.0
        for x in values:
            x = float(x)
            if not math.isfinite(x):
                raise ValueError(f"observation must be finite, got {x!r}")
            n += 1
            s += x
            ss += x * x
        return cls(n, s, ss)

    @classmethod
    def from_proportion(cls, successes: int, n: int) -> Moments:
        """Return the moments of ``successes`` ones among ``n`` 0/1 observations."""
        if n < 0 or successes < 0 or successes > n:
            raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
        return cls(n, float(successes), float(successes))

    def add(self, x: float) -> Moments:
        """Return these moments with one more observation."""
        x = float(x)
        if not math.isfinite(x):
            raise ValueError(f"observation must be finite, got {x!r}")
        return Moments(self.n + 1, self.total + x, self.total_sq + x * x)

    def merge(self, other: Moments) -> Moments:
        """Return the moments of both streams together."""
        return Moments(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    def __add__(self, other: Moments) -> Moments:
        return self.merge(other)

    @property
    def mean(self) -> float:
        """Sample mean; NaN when empty (callers check ``n`` first)."""
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Unbiased sample variance (ddof=1); NaN below two observations."""
        if self.n < 2:
            return math.nan
        # Clamp: catastrophic cancellation can make a zero variance slightly negative.
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))

    @property
    def population_variance(self) -> float:
        """Variance with ddof=0 (the MLE, used by proportion tests); NaN when empty."""
        if self.n < 1:
            return math.nan
        return max(0.0, self.total_sq / self.n - (self.total / self.n) ** 2)
