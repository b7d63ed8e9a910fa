"""Sudden regressions of failure and correction rates against trailing windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.mining import (
    Anomaly,
    FailureRecord,
    MiningConfig,
    WindowCounts,
    count_windows,
    detect_anomalies,
    mine_patterns,
)
from analytics.mining.synthetic import DEFAULT_MODES, generate_corpus

NOW = 1_700_000_000.0
DAY = 86_400.0


def _windows(failures: list[int], corrections: list[int] | None = None,
             executions: int = 1_000) -> list[WindowCounts]:
    corrections = corrections or [0] * len(failures)
    return [WindowCounts(window_start=i * DAY, executions=executions, failures=f, corrections=c)
            for i, (f, c) in enumerate(zip(failures, corrections, strict=True))]


def test_rates_that_vary_only_by_chance_are_not_flagged() -> None:
    rng = np.random.default_rng(41)
    n_windows = 60
    windows = _windows(rng.binomial(1_000, 0.05, n_windows).tolist(),
                       rng.binomial(1_000, 0.02, n_windows).tolist())
    found = detect_anomalies(windows)
    # 2 metrics x 57 tested windows at a one-sided normal tail of 0.00135 (the Poisson
    # variance we use is larger than the binomial one): about 0.15 false flags expected,
    # and P(3 or more) < 0.001.
    assert len(found) <= 2


def test_a_sudden_failure_regression_is_flagged_with_its_evidence() -> None:
    windows = _windows([50, 48, 52, 51, 49, 50, 47, 53, 50, 50, 100])
    found = detect_anomalies(windows)
    assert [a.metric for a in found] == ["failure_rate"]
    spike = found[0]
    assert spike.window_start == windows[-1].window_start
    assert spike.rate == pytest.approx(0.1)
    assert spike.baseline_mean == pytest.approx(500 / 10_000)
    lam = 500.5 / 10_000
    assert spike.z == pytest.approx((0.1 - 0.05) / math.sqrt(lam / 1_000 + lam / 10_000))


def test_a_drop_is_never_a_regression() -> None:
    assert detect_anomalies(_windows([50, 50, 50, 50, 50, 0])) == ()


def test_correction_rate_regressions_are_flagged_separately() -> None:
    windows = _windows([50] * 6, [10, 12, 9, 11, 10, 60])
    assert [a.metric for a in detect_anomalies(windows)] == ["correction_rate"]


def test_too_little_history_flags_nothing() -> None:
    windows = _windows([50, 50, 500])
    assert detect_anomalies(windows, min_trailing=3) == ()
    assert len(detect_anomalies(windows, min_trailing=2)) == 1


def test_windows_without_executions_are_neither_tested_nor_part_of_the_baseline() -> None:
    windows = _windows([50, 50, 50, 50, 100])
    idle = WindowCounts(window_start=-DAY, executions=0, failures=0, corrections=0)
    assert detect_anomalies([idle, *windows]) == detect_anomalies(windows)
    assert detect_anomalies([*windows[:4], idle, windows[4]])[0].z == pytest.approx(
        detect_anomalies(windows)[0].z)


def test_a_naturally_wobbly_prompt_tolerates_a_bump_its_history_has_seen() -> None:
    wobbly = _windows([30, 90, 30, 90, 30, 90, 30, 100])
    steady = _windows([60, 60, 60, 60, 60, 60, 60, 100])
    assert detect_anomalies(wobbly) == ()
    assert len(detect_anomalies(steady)) == 1


def test_first_failures_after_a_spotless_history_have_a_finite_z() -> None:
    found = detect_anomalies(_windows([0] * 10 + [5]))
    assert len(found) == 1 and math.isfinite(found[0].z) and found[0].z > 3


def test_max_trailing_limits_the_baseline_to_recent_windows() -> None:
    # Wobbly long ago, steady lately: only a recent baseline sees the jump for what it is.
    windows = _windows([10, 90, 10, 90, 10, 90, 50, 50, 50, 50, 80])
    assert detect_anomalies(windows) == ()
    found = detect_anomalies(windows, max_trailing=4)
    assert [a.window_start for a in found] == [10 * DAY]
    assert found[0].baseline_mean == pytest.approx(0.05)


def test_mining_flags_a_regression_even_when_no_pattern_is_new() -> None:
    modes = DEFAULT_MODES[:3]
    steady = generate_corpus(seed=42, n_records=350, now=NOW, modes=modes, noise_fraction=0.0)
    first = mine_patterns(steady.records, now=NOW, executions_in_window=1_000,
                          window_executions=[1_000] * 7)
    assert first.anomalies == ()
    # The next day the same complaints triple.
    burst = generate_corpus(seed=43, n_records=150, now=NOW + DAY, window_seconds=DAY,
                            n_windows=1, modes=modes, noise_fraction=0.0, id_prefix="b")
    second = mine_patterns(steady.records + burst.records, now=NOW + DAY,
                           executions_in_window=1_000, window_executions=[1_000] * 7,
                           previous=first.patterns)
    assert all(p.status != "new" for p in second.patterns)
    latest = second.windows[-1]
    assert latest.window_start == NOW
    assert latest.corrections >= 150
    flagged = {(a.metric, a.window_start) for a in second.anomalies}
    assert ("correction_rate", NOW) in flagged
    assert all(isinstance(a, Anomaly) for a in second.anomalies)


def test_window_counts_split_failures_from_corrections() -> None:
    records = [
        FailureRecord(record_id="a", kind="failure", occurred_at=NOW - 10, version=1),
        FailureRecord(record_id="b", kind="correction", occurred_at=NOW - 10, version=1),
        FailureRecord(record_id="c", kind="correction", occurred_at=NOW - DAY - 10, version=1),
        FailureRecord(record_id="d", kind="failure", occurred_at=NOW - 30 * DAY, version=1),
    ]
    got = count_windows(records, now=NOW, window_executions=[5, 6, 7],
                        config=MiningConfig(n_windows=3))
    assert got == (
        WindowCounts(window_start=NOW - 3 * DAY, executions=5, failures=0, corrections=0),
        WindowCounts(window_start=NOW - 2 * DAY, executions=6, failures=0, corrections=1),
        WindowCounts(window_start=NOW - DAY, executions=7, failures=1, corrections=1),
    )
    with pytest.raises(ValueError, match="window_executions"):
        count_windows(records, now=NOW, window_executions=[1], config=MiningConfig(n_windows=3))
