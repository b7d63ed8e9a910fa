"""Arm statistics: what an execution or a correction adds, and how steps combine."""

from __future__ import annotations

import math

import pytest

from analytics.moments import Moments
from deploy.stats import METRICS, ArmStats, total


def test_execution_adds_one_observation_to_every_metric_it_reports() -> None:
    stats = (
        ArmStats()
        .record_assignment()
        .record_execution(success=True, score=0.5, latency_ms=1_000.0, cost_usd=0.01, error=False)
    )
    assert (stats.assignments, stats.executions) == (1, 1)
    assert stats.success == Moments(1, 1.0, 0.0)
    assert stats.score == Moments(1, 0.5, 0.0)
    assert stats.log_latency.total == pytest.approx(math.log(1_000.0))
    assert stats.cost == Moments(1, 0.01, 0.0)
    assert stats.errors == Moments(1, 0.0, 0.0)


def test_metrics_an_execution_does_not_report_stay_untouched() -> None:
    stats = ArmStats().record_execution(success=False)
    assert (stats.score.n, stats.log_latency.n, stats.cost.n) == (0, 0, 0)
    assert stats.errors.n == 1  # every execution either errored or did not


def test_an_error_without_a_success_flag_counts_as_a_failure() -> None:
    stats = ArmStats().record_execution(error=True)
    assert stats.success == Moments(1, 0.0, 0.0) and stats.errors.total == 1.0


def test_zero_latency_is_floored_at_one_millisecond_before_the_log() -> None:
    assert ArmStats().record_execution(latency_ms=0.0).log_latency.total == 0.0


def test_correction_rate_is_corrected_executions_over_executions() -> None:
    stats = ArmStats()
    for _ in range(4):
        stats = stats.record_execution(success=True)
    stats = stats.record_correction()
    assert stats.metric("correction_rate") == Moments.from_proportion(1, 4)
    # A correction seen before its execution never makes the rate exceed one.
    assert ArmStats().record_correction().correction_rate == Moments()


def test_merge_adds_counts_and_moments_and_total_sums_steps() -> None:
    a = ArmStats().record_assignment().record_execution(success=True, latency_ms=10.0)
    b = ArmStats().record_assignment().record_execution(success=False).record_correction()
    merged = a + b
    assert (merged.assignments, merged.executions, merged.corrections) == (2, 2, 1)
    assert merged.success == Moments.from_proportion(1, 2)
    assert total({0: {"c1": a}, 1: {"c1": b, "control": a}}, "c1") == merged


def test_distinct_subjects_are_counted_apart_from_executions() -> None:
    # One returning subject, three executions: one unit for the sample-ratio check.
    stats = ArmStats().record_subject()
    for _ in range(3):
        stats = stats.record_execution(success=True)
    assert (stats.subjects, stats.executions) == (1, 3)
    assert (stats + ArmStats().record_subject(2)).subjects == 3
    assert stats.to_json()["subjects"] == 1


def test_every_metric_has_a_kind_and_a_direction_and_is_extractable() -> None:
    stats = ArmStats().record_execution(success=True, score=1.0, latency_ms=5.0, cost_usd=1.0)
    for name, spec in METRICS.items():
        assert spec.kind in ("proportion", "mean", "log_mean")
        assert spec.better in ("higher", "lower")
        assert stats.metric(name).n == 1


def test_snapshot_is_json_ready() -> None:
    snapshot = ArmStats().record_execution(success=True).to_json()
    assert snapshot["executions"] == 1
    assert snapshot["success_rate"] == {"n": 1, "mean": 1.0}
    assert snapshot["cost"] == {"n": 0, "mean": None}
