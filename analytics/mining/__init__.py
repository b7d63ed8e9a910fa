"""Failure-pattern mining: corrections and failures of one prompt in, ranked patterns out.

Pure: no I/O and no clock (``now`` is an argument), so a replay of the event log
re-derives the same patterns, ids included.
"""

from __future__ import annotations

from analytics.mining.anomalies import Anomaly, WindowCounts, detect_anomalies
from analytics.mining.config import MiningConfig
from analytics.mining.model import FailureRecord, Pattern, PatternExample
from analytics.mining.patterns import MiningResult, count_windows, mine_patterns

__all__ = [
    "Anomaly",
    "FailureRecord",
    "MiningConfig",
    "MiningResult",
    "Pattern",
    "PatternExample",
    "WindowCounts",
    "count_windows",
    "detect_anomalies",
    "mine_patterns",
]
