"""Streaming sufficient statistics for one arm and one metric.

Every comparison in ``analytics`` works from these, so a canary tick never rescans raw
events. A proportion is a mean of 0/1 values (``total`` is then the success count), a
log-mean is a mean of ``log(x)`` values: one type serves all three metric kinds.

The spread is kept as ``m2``, the sum of squared deviations from the mean, updated with
Welford's recurrence and merged with Chan et al.'s formula. A plain sum of squares loses
the variance to cancellation once the mean is large against the spread (1e8 +- 1 has
variance 1, but ``sum x^2 - (sum x)^2 / n`` gives 0 in float64).

Bit-for-bit replay: ``add`` is a deterministic function of (moments, x), so folding the
same observations in the same order gives the same bits however the fold is cut into
batches, provided the three fields round-trip exactly (float64 columns do). ``merge`` is
exact for ``n`` and ``total`` up to float addition, but its ``m2`` depends on how the
stream was split: use it to combine finished cells (steps, arms) for reading, never to
fold a stream batch by batch where replay must equal live.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squared deviations from the mean of a stream of observations."""

    n: int = 0
    total: float = 0.0
    m2: float = 0.0

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"Moments.n must be >= 0, got {self.n}")
        if self.m2 < 0:
            raise ValueError(f"Moments.m2 must be >= 0, got {self.m2}")
        if not (math.isfinite(self.total) and math.isfinite(self.m2)):
            raise ValueError("Moments totals must be finite")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Moments:
        """Return the moments of ``values``; raises ``ValueError`` on NaN or infinity."""
        moments = cls()
        for x in values:
            moments = moments.add(x)
        return moments

    @classmethod
    def from_proportion(cls, successes: int, n: int) -> Moments:
        """Return the moments of ``successes`` ones among ``n`` 0/1 observations."""
        if n < 0 or successes < 0 or successes > n:
            raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
        return cls(n, float(successes), successes * (n - successes) / n if n else 0.0)

    @classmethod
    def from_summary(cls, n: int, mean: float, sd: float) -> Moments:
        """Return the moments of ``n`` observations with this mean and sample sd (ddof=1)."""
        if n == 0:
            return cls()
        return cls(n, n * mean, (n - 1) * sd * sd)

    def add(self, x: float) -> Moments:
        """Return these moments with one more observation (Welford's update)."""
        x = float(x)
        if not math.isfinite(x):
            raise ValueError(f"observation must be finite, got {x!r}")
        n = self.n + 1
        total = self.total + x
        before = self.total / self.n if self.n else x
        # (x - old mean) * (x - new mean) is never negative mathematically; the clamp
        # absorbs a rounding of the new mean past x.
        m2 = self.m2 + max(0.0, (x - before) * (x - total / n))
        return Moments(n, total, m2)

    def merge(self, other: Moments) -> Moments:
        """Return the moments of both streams together (Chan et al.'s parallel formula)."""
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.total / other.n - self.total / self.n
        m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        return Moments(n, self.total + other.total, m2)

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
        return self.m2 / (self.n - 1)

    @property
    def population_variance(self) -> float:
        """Variance with ddof=0 (the MLE, used by proportion tests); NaN when empty."""
        if self.n < 1:
            return math.nan
        return self.m2 / self.n
