"""Failure-pattern mining: corrections and failures of one prompt in, ranked patterns out.

Pure: no I/O and no clock (``now`` is an argument), so a replay of the event log
re-derives the same patterns, ids included.

How ``mine_patterns`` works (modules in brackets):

1. Records inside the ``n_windows`` windows before ``now`` are sorted by (time, id). Failed
   executions without an error type (nobody said what went wrong) are only counted, for
   rates and anomalies; corrections and typed failures are reduced to distinct documents:
   normalised reason text plus category/error-type tokens [text]. Identical texts are
   processed once.
2. TF-IDF vocabularies (word 1-2 grams, char_wb 3-5 grams, meta tokens) are fitted on a
   seeded sample of at most ``max_fit_sample`` records [features]; a truncated SVD of the
   weighted blocks gives 100-d vectors whose dot products approximate TF-IDF cosines
   (deliberately not re-normalised, see [embedding]).
3. Average-linkage agglomeration with a cosine distance threshold finds the clusters in the
   sample without being told how many; clusters smaller than ``min_cluster_size`` dissolve.
   Every other document joins the nearest centroid within ``assign_distance``, or none
   [clustering, grouping].
4. Each cluster becomes a ``Pattern``: distinctive terms (class-based TF-IDF) and a 2-4 word
   label, counts per window with slope and z, severity, versions, categories, and a sparse
   centroid of its top 50 terms [describe, trend]; its clearest reason per language as a
   cleaned statement, or a noise verdict saying why it gives no guidance, and examples whose
   fixes teach something [clarity, language, evidence]; the recorded input variable that
   best separates its records from the rest (chi-square, Cramér's V) [context]. Its share is
   its records over all pattern-able records in the latest window that had any, so shares
   add up to at most 100% and survive a traffic stop (``MiningResult.share_window``).
5. Centroids are matched one-to-one to the previous snapshot's (Hungarian, cosine >= 0.5):
   a match keeps its id and first-seen time, the rest get ids hashed from their top terms;
   unmatched previous patterns are returned as resolved [identity].
6. With ``window_executions``, failure and correction rates per window are checked for
   sudden regressions against trailing windows [anomalies].

``analytics.mining.synthetic`` generates corpora with known failure modes for tests,
benchmarks and demos; ``analytics.mining.messy`` one with what reviewers really send (noise,
typos, two languages, no reasons, uncorrected failures, input variables).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analytics.mining.anomalies import Anomaly, WindowCounts, detect_anomalies
    from analytics.mining.config import MiningConfig
    from analytics.mining.model import (
        FailureRecord,
        Pattern,
        PatternContext,
        PatternExample,
        ShareWindow,
    )
    from analytics.mining.patterns import MiningResult, count_windows, mine_patterns

# Names load on first use (PEP 562): the data model (``analytics.mining.model``) is imported
# by the improver and the service without the clustering stack behind ``mine_patterns``.
_HOME: dict[str, str] = {
    **dict.fromkeys(("Anomaly", "WindowCounts", "detect_anomalies"), "analytics.mining.anomalies"),
    "MiningConfig": "analytics.mining.config",
    **dict.fromkeys(("FailureRecord", "Pattern", "PatternContext", "PatternExample",
                     "ShareWindow"), "analytics.mining.model"),
    **dict.fromkeys(("MiningResult", "count_windows", "mine_patterns"),
                    "analytics.mining.patterns"),
}

__all__ = [
    "Anomaly",
    "FailureRecord",
    "MiningConfig",
    "MiningResult",
    "Pattern",
    "PatternContext",
    "PatternExample",
    "ShareWindow",
    "WindowCounts",
    "count_windows",
    "detect_anomalies",
    "mine_patterns",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
