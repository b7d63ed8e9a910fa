"""One arm's statistics folded in place, execution by execution (the arm-stats hot loop).

``ArmStats.record_execution`` builds a new frozen ``ArmStats`` and up to five ``Moments``
per execution; a replay chunk folds tens of thousands, and that allocation was a quarter
of the whole replay. ``ArmFold`` keeps the same numbers in plain lists and applies the very
same float operations in the same order (Welford's update as ``Moments.add`` writes it), so
the result is bit-identical to folding with ``ArmStats``; a test holds the two together.
"""

from __future__ import annotations

import math

from analytics.moments import Moments
from deploy.stats import ArmStats

_METRICS = ("success", "score", "log_latency", "cost", "errors")


def _add(m: list[float], x: float) -> None:
    """Fold ``x`` into ``m`` = [n, total, m2] exactly as ``Moments.add`` does."""
    if not math.isfinite(x):
        raise ValueError(f"observation must be finite, got {x!r}")
    n_before, total_before = m[0], m[1]
    n = n_before + 1
    total = total_before + x
    before = total_before / n_before if n_before else x
    m[0], m[1], m[2] = n, total, m[2] + max(0.0, (x - before) * (x - total / n))


class ArmFold:
    """An ``ArmStats`` being folded: counts and [n, total, m2] per metric, mutable."""

    __slots__ = ("assignments", "corrections", "executions", "moments", "subjects")

    def __init__(self, start: ArmStats) -> None:
        self.assignments = start.assignments
        self.executions = start.executions
        self.subjects = start.subjects
        self.corrections = start.corrections
        self.moments: dict[str, list[float]] = {}
        for name in _METRICS:
            mom: Moments = getattr(start, name)
            self.moments[name] = [mom.n, mom.total, mom.m2]

    def execution(self, *, success: bool | None, score: float | None,
                  latency_ms: float | None, cost_usd: float | None, error: bool) -> None:
        """Fold one assigned execution (``record_assignment().record_execution(...)``)."""
        self.assignments += 1
        self.executions += 1
        if success is None and error:
            success = False  # as ArmStats.record_execution: an error is not a success
        m = self.moments
        if success is not None:
            _add(m["success"], float(success))
        if score is not None:
            _add(m["score"], float(score))
        if latency_ms is not None:
            _add(m["log_latency"], math.log(max(latency_ms, 1.0)))
        if cost_usd is not None:
            _add(m["cost"], float(cost_usd))
        _add(m["errors"], 1.0 if error else 0.0)

    def result(self) -> ArmStats:
        """Return the folded statistics as an ``ArmStats``."""
        moments = {name: Moments(int(n), total, m2)
                   for name, (n, total, m2) in self.moments.items()}
        return ArmStats(assignments=self.assignments, executions=self.executions,
                        subjects=self.subjects, corrections=self.corrections, **moments)
