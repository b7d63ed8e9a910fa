"""Sudden regressions of a prompt's failure and correction rates, window by window."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

AnomalyMetric = Literal["failure_rate", "correction_rate"]


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """What happened to one prompt in one window."""

    window_start: float
    executions: int
    failures: int
    corrections: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A window whose rate is far above what the trailing windows lead one to expect."""

    metric: AnomalyMetric
    window_start: float
    rate: float
    baseline_mean: float
    z: float


def detect_anomalies(
    windows: Sequence[WindowCounts],
    *,
    z_threshold: float = 3.0,
    min_trailing: int = 3,
    max_trailing: int | None = None,
) -> tuple[Anomaly, ...]:
    """Return the windows (oldest first) whose failure or correction rate jumped upwards.

    Each window with executions is compared with up to ``max_trailing`` earlier windows that
    had executions (at least ``min_trailing`` of them). Counts are treated as Poisson
    (corrections can outnumber executions) with a between-window variance estimated from the
    trailing rates, so both a small window's noise and a naturally wobbly prompt are
    tolerated:

        z = (rate - pooled) / sqrt(tau^2 + lam/n + lam/N)

    where ``pooled`` is the trailing events / executions, ``lam`` is that rate with half an
    event added (a window after a spotless history still has a finite z), ``N`` the trailing
    executions and ``tau^2`` the trailing rates' variance beyond their Poisson noise.
    Only increases are regressions; a drop is never flagged.
    """
    if min_trailing < 1:
        raise ValueError(f"min_trailing must be >= 1, got {min_trailing}")
    found: list[Anomaly] = []
    history: list[WindowCounts] = []
    for window in windows:
        trailing = history if max_trailing is None else history[-max_trailing:]
        if window.executions > 0 and len(trailing) >= min_trailing:
            metrics: tuple[tuple[AnomalyMetric, Callable[[WindowCounts], int]], ...] = (
                ("failure_rate", _failures), ("correction_rate", _corrections))
            for metric, events in metrics:
                anomaly = _score(metric, window, trailing, events)
                if anomaly.z >= z_threshold:
                    found.append(anomaly)
        if window.executions > 0:
            history.append(window)
    return tuple(found)


def _failures(w: WindowCounts) -> int:
    return w.failures


def _corrections(w: WindowCounts) -> int:
    return w.corrections


def _score(
    metric: AnomalyMetric,
    window: WindowCounts,
    trailing: Sequence[WindowCounts],
    count: Callable[[WindowCounts], int],
) -> Anomaly:
    n_total = sum(w.executions for w in trailing)
    e_total = sum(count(w) for w in trailing)
    pooled = e_total / n_total
    lam = (e_total + 0.5) / n_total
    rates = [count(w) / w.executions for w in trailing]
    tau2 = 0.0
    if len(rates) > 1:
        mean = sum(rates) / len(rates)
        spread = sum((r - mean) ** 2 for r in rates) / (len(rates) - 1)
        poisson = sum(lam / w.executions for w in trailing) / len(trailing)
        tau2 = max(0.0, spread - poisson)
    rate = count(window) / window.executions
    se = math.sqrt(tau2 + lam / window.executions + lam / n_total)
    return Anomaly(metric=metric, window_start=window.window_start, rate=rate,
                   baseline_mean=pooled, z=(rate - pooled) / se)
