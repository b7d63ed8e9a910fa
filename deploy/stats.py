"""Per-arm sufficient statistics of a deployment, split by stratum.

The service's arm-stats projection folds executions and corrections into these; a canary
tick reads them and never rescans raw events. Data stay within the stratum they were
recorded in because weights change while metrics drift (time of day, traffic mix):
comparisons post-stratify across strata instead of pooling. A stratum is a stretch of
constant weights: a step, or the part of a step after an arm was eliminated (its traffic
went back to control, so control's share changed). ``DeploymentState.stratum`` numbers
them; without eliminations stratum and step coincide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from analytics.moments import Moments

MetricName = Literal[
    "success_rate", "mean_score", "correction_rate", "error_rate", "latency", "cost"
]
Kind = Literal["proportion", "mean", "log_mean"]
Direction = Literal["higher", "lower"]


@dataclass(frozen=True, slots=True)
class ArmStats:
    """What one arm did within one stratum: exposure counts and one ``Moments`` per metric.

    ``subjects`` counts the distinct units assigned to the arm in this stratum: each
    subject once however often it returns, and each execution without a subject once
    (the SDK then hashes the request's own id). Those are what assignment randomises, so
    the sample-ratio check counts them; executions of a returning user are clustered.
    Summed across strata (``total``) a returning subject counts once per stratum.
    """

    assignments: int = 0
    executions: int = 0
    subjects: int = 0
    success: Moments = field(default_factory=Moments)
    score: Moments = field(default_factory=Moments)
    log_latency: Moments = field(default_factory=Moments)
    cost: Moments = field(default_factory=Moments)
    errors: Moments = field(default_factory=Moments)  # 0/1 per execution
    corrections: int = 0  # counted in the step of the execution they correct

    def merge(self, other: ArmStats) -> ArmStats:
        """Return the statistics of both together."""
        return ArmStats(
            assignments=self.assignments + other.assignments,
            executions=self.executions + other.executions,
            subjects=self.subjects + other.subjects,
            success=self.success + other.success,
            score=self.score + other.score,
            log_latency=self.log_latency + other.log_latency,
            cost=self.cost + other.cost,
            errors=self.errors + other.errors,
            corrections=self.corrections + other.corrections,
        )

    def __add__(self, other: ArmStats) -> ArmStats:
        return self.merge(other)

    def record_assignment(self, count: int = 1) -> ArmStats:
        """Return these statistics with ``count`` more subjects assigned to the arm."""
        return _replace(self, assignments=self.assignments + count)

    def record_subject(self, count: int = 1) -> ArmStats:
        """Return these statistics with ``count`` more distinct units seen in the stratum."""
        return _replace(self, subjects=self.subjects + count)

    def record_execution(
        self,
        *,
        success: bool | None = None,
        score: float | None = None,
        latency_ms: float | None = None,
        cost_usd: float | None = None,
        error: bool = False,
    ) -> ArmStats:
        """Return these statistics with one more execution folded in.

        An execution that reports an error and no success flag counts as a failure: it did
        not do its job, and leaving it out would flatter a candidate that crashes.
        """
        if success is None and error:
            success = False
        return ArmStats(
            assignments=self.assignments,
            executions=self.executions + 1,
            subjects=self.subjects,
            success=self.success.add(float(success)) if success is not None else self.success,
            score=self.score.add(score) if score is not None else self.score,
            log_latency=(
                # 1 ms floor: a 0 ms latency (cache hit, clock granularity) has no logarithm.
                self.log_latency.add(math.log(max(latency_ms, 1.0)))
                if latency_ms is not None
                else self.log_latency
            ),
            cost=self.cost.add(cost_usd) if cost_usd is not None else self.cost,
            errors=self.errors.add(1.0 if error else 0.0),
            corrections=self.corrections,
        )

    def record_correction(self, count: int = 1) -> ArmStats:
        """Return these statistics with ``count`` more corrected executions."""
        return _replace(self, corrections=self.corrections + count)

    @property
    def correction_rate(self) -> Moments:
        """Return corrected executions among executions, as 0/1 moments."""
        # A correction can arrive before the projection has seen its execution; clamp so
        # the rate stays a proportion.
        return Moments.from_proportion(min(self.corrections, self.executions), self.executions)

    def metric(self, name: MetricName) -> Moments:
        """Return the moments of the named metric."""
        return _EXTRACT[name](self)

    def moments_row(self) -> tuple[float, ...]:
        """Return (subjects, assignments, executions), then (n, total, m2) of every metric
        flattened in ``METRICS`` order: one cell of a tick's statistics cube."""
        n = self.executions
        corrected = self.corrections if self.corrections < n else n  # as correction_rate
        spread = corrected * (n - corrected) / n if n else 0.0
        s, q, c, e, lat = self.success, self.score, self.cost, self.errors, self.log_latency
        return (
            self.subjects, self.assignments, n,
            s.n, s.total, s.m2,
            q.n, q.total, q.m2,
            n, corrected, spread,
            e.n, e.total, e.m2,
            lat.n, lat.total, lat.m2,
            c.n, c.total, c.m2,
        )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """Return a JSON-able snapshot (counts and means) for evidence and history."""
        return {
            "assignments": self.assignments,
            "executions": self.executions,
            "subjects": self.subjects,
            **{name: _summary(self.metric(name)) for name in METRICS},
        }


StepStats = Mapping[int, Mapping[str, ArmStats]]
"""stratum -> arm name -> what that arm did while the deployment was in that stratum.

Keyed by ``DeploymentState.stratum`` (equal to the step index until an arm is eliminated).
"""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How a metric is compared: the kind of mean and which direction is better."""

    name: MetricName
    kind: Kind
    better: Direction


METRICS: dict[MetricName, MetricSpec] = {
    "success_rate": MetricSpec("success_rate", "proportion", "higher"),
    "mean_score": MetricSpec("mean_score", "mean", "higher"),
    "correction_rate": MetricSpec("correction_rate", "proportion", "lower"),
    "error_rate": MetricSpec("error_rate", "proportion", "lower"),
    # The moments already hold log(latency ms): a log-mean compares typical latency
    # multiplicatively and is not dragged around by a few slow tails.
    "latency": MetricSpec("latency", "log_mean", "lower"),
    "cost": MetricSpec("cost", "mean", "lower"),
}

_EXTRACT = {
    "success_rate": lambda s: s.success,
    "mean_score": lambda s: s.score,
    "correction_rate": lambda s: s.correction_rate,
    "error_rate": lambda s: s.errors,
    "latency": lambda s: s.log_latency,
    "cost": lambda s: s.cost,
}


def total(stats: StepStats, arm: str) -> ArmStats:
    """Return one arm's statistics summed over all strata."""
    result = ArmStats()
    for by_arm in stats.values():
        if arm in by_arm:
            result = result + by_arm[arm]
    return result


def _replace(stats: ArmStats, **changes: int) -> ArmStats:
    fields = {name: getattr(stats, name) for name in ArmStats.__slots__}
    fields.update(changes)
    return ArmStats(**fields)


def _summary(moments: Moments) -> dict[str, float | int | None]:
    return {"n": moments.n, "mean": moments.mean if moments.n else None}
