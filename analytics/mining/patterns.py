"""``mine_patterns``: one prompt's corrections and failures in, ranked failure patterns out."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from analytics.mining.anomalies import Anomaly, WindowCounts, detect_anomalies
from analytics.mining.config import MiningConfig
from analytics.mining.context import ContextRules, best_context, encode_variables
from analytics.mining.describe import compose_label, distinctive_terms
from analytics.mining.evidence import ClusterWords, cluster_evidence
from analytics.mining.features import Document
from analytics.mining.grouping import Grouping, group_documents
from analytics.mining.identity import (
    Centroid,
    match_to_previous,
    new_pattern_id,
    sparse_centroid,
)
from analytics.mining.model import FailureRecord, Pattern, PatternStatus, ShareWindow
from analytics.mining.text import display_text, meta_tokens, normalise_label, normalise_text
from analytics.mining.trend import OUTSIDE, trend_statistics, window_index, window_starts

_MAX_LISTED = 10  # categories / error types listed per pattern
_Value = TypeVar("_Value", str, int)


@dataclass(frozen=True, slots=True)
class MiningResult:
    """Patterns ranked most important first, patterns that went away, and rate anomalies."""

    patterns: tuple[Pattern, ...]
    resolved: tuple[Pattern, ...] = ()
    anomalies: tuple[Anomaly, ...] = ()
    windows: tuple[WindowCounts, ...] = ()  # only when window executions were given
    records_used: int = 0  # inside the windows, with a finite time
    records_ignored: int = 0  # before the first window or without a finite time
    unclustered: int = 0  # pattern-able records that joined no pattern (one-offs, empty text)
    pattern_of: Mapping[str, str] = dataclasses.field(default_factory=dict)  # record -> pattern
    # Failed executions without an error type: nobody said what went wrong, so they count
    # in rates and anomalies but never form a pattern.
    counted_failures: int = 0
    share_window: ShareWindow | None = None  # where shares were computed; None: no records


def mine_patterns(
    records: Sequence[FailureRecord],
    *,
    now: float,
    executions_in_window: int,
    previous: Sequence[Pattern] = (),
    config: MiningConfig = MiningConfig(),  # noqa: B008 - frozen, so sharing it is safe
    window_executions: Sequence[int] = (),
) -> MiningResult:
    """Return the failure patterns in ``records`` over the ``config.n_windows`` before ``now``.

    ``executions_in_window``: no longer used (a share is over records, not executions, so it
    cannot exceed 100%); kept so callers need not change in the same step.
    ``previous``: the last snapshot's patterns (resolved ones included, so a pattern that
    comes back regains its id); a cluster continuing one keeps its id and first-seen time.
    ``window_executions``: executions per window, oldest first; when given (one per window),
    failure and correction rates are checked for sudden regressions.
    The result depends only on the arguments: replaying a log gives the same patterns.
    """
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now!r}")
    if window_executions and len(window_executions) != config.n_windows:
        raise ValueError(f"window_executions needs {config.n_windows} values, "
                         f"got {len(window_executions)}")
    if config.blas_threads is None:
        return _mine(records, now, executions_in_window, previous, config, window_executions)
    # The matrices here are small (a 5,000-row sample, 100 columns): BLAS threads buy little
    # and, on a busy 2-core host, spin-wait against the API for the same cores (measured
    # 2-5x slower wall time under load).
    with threadpool_limits(limits=config.blas_threads, user_api="blas"):
        return _mine(records, now, executions_in_window, previous, config, window_executions)


def _mine(
    records: Sequence[FailureRecord],
    now: float,
    executions_in_window: int,
    previous: Sequence[Pattern],
    config: MiningConfig,
    window_executions: Sequence[int],
) -> MiningResult:
    kept, windows_of = _records_in_windows(records, now, config)
    window_counts = _window_counts(kept, windows_of, now, window_executions, config)
    anomalies = detect_anomalies(window_counts, z_threshold=config.anomaly_z_threshold,
                                 min_trailing=config.anomaly_min_trailing)
    chosen = np.flatnonzero(np.fromiter((_patternable(r) for r in kept), dtype=bool,
                                        count=len(kept)))
    pool = [kept[i] for i in chosen]
    pool_windows = windows_of[chosen]
    share_window = _share_window(pool_windows, now, config)
    drafts: list[_Draft] = []
    unclustered = len(pool)
    if pool and share_window is not None:
        drafts, unclustered = _draft_patterns(pool, pool_windows, share_window, config)
    patterns, resolved, ids = _settle_identity(drafts, previous, config)
    pattern_of: dict[str, str] = {}
    for draft, pid in zip(drafts, ids, strict=True):
        pattern_of.update(dict.fromkeys((str(pool[i].record_id) for i in draft.members), pid))
    return MiningResult(
        patterns=patterns,
        resolved=resolved,
        anomalies=anomalies,
        windows=window_counts,
        records_used=len(kept),
        records_ignored=len(records) - len(kept),
        unclustered=unclustered,
        pattern_of=pattern_of,
        counted_failures=len(kept) - len(pool),
        share_window=share_window,
    )


def _patternable(record: FailureRecord) -> bool:
    """Return whether a record can be part of a pattern: a correction, or a typed failure."""
    return record.kind != "failure" or bool(normalise_label(record.error_type))


def _share_window(windows_of: np.ndarray, now: float,
                  config: MiningConfig) -> ShareWindow | None:
    """Return the latest window holding any record (so shares survive a traffic stop)."""
    if len(windows_of) == 0:
        return None
    index = int(windows_of.max())
    start = window_starts(now=now, window_seconds=config.window_seconds,
                          n_windows=config.n_windows)[index]
    return ShareWindow(start=start, end=start + config.window_seconds,
                       records=int((windows_of == index).sum()),
                       is_latest=index == config.n_windows - 1)


def count_windows(
    records: Sequence[FailureRecord],
    *,
    now: float,
    window_executions: Sequence[int],
    config: MiningConfig = MiningConfig(),  # noqa: B008 - frozen, so sharing it is safe
) -> tuple[WindowCounts, ...]:
    """Return executions, failures and corrections per window, oldest first."""
    if len(window_executions) != config.n_windows:
        raise ValueError(f"window_executions needs {config.n_windows} values, "
                         f"got {len(window_executions)}")
    kept, windows_of = _records_in_windows(records, now, config)
    return _window_counts(kept, windows_of, now, window_executions, config)


@dataclass(frozen=True, slots=True, eq=False)
class _Draft:
    """A pattern before identity is settled (no id, no status, own first-seen only)."""

    pattern: Pattern
    members: np.ndarray  # indices into the kept records


def _records_in_windows(
    records: Sequence[FailureRecord], now: float, config: MiningConfig
) -> tuple[list[FailureRecord], np.ndarray]:
    times = np.fromiter((_as_time(r.occurred_at) for r in records), dtype=np.float64,
                        count=len(records))
    index = window_index(times, now=now, window_seconds=config.window_seconds,
                         n_windows=config.n_windows)
    inside = np.flatnonzero(index != OUTSIDE)
    # A fixed order makes sampling and tie-breaks independent of how the log was read.
    ids = np.array([str(records[i].record_id) for i in inside], dtype=object)
    order = inside[np.lexsort((ids, times[inside]))] if len(inside) else inside
    return [records[i] for i in order], index[order].astype(np.int64)


def _window_counts(
    kept: Sequence[FailureRecord],
    windows_of: np.ndarray,
    now: float,
    window_executions: Sequence[int],
    config: MiningConfig,
) -> tuple[WindowCounts, ...]:
    if not window_executions:
        return ()
    n = config.n_windows
    failures = np.bincount(windows_of[[r.kind == "failure" for r in kept]], minlength=n)
    corrections = np.bincount(windows_of[[r.kind != "failure" for r in kept]], minlength=n)
    starts = window_starts(now=now, window_seconds=config.window_seconds, n_windows=n)
    return tuple(
        WindowCounts(window_start=starts[i], executions=max(int(window_executions[i]), 0),
                     failures=int(failures[i]), corrections=int(corrections[i]))
        for i in range(n)
    )


def _draft_patterns(
    kept: Sequence[FailureRecord],
    windows_of: np.ndarray,
    share_window: ShareWindow,
    config: MiningConfig,
) -> tuple[list[_Draft], int]:
    docs, doc_of = _distinct_documents(kept, config)
    multiplicity = np.bincount(doc_of, minlength=len(docs))
    rng = np.random.default_rng(config.seed)
    n = len(kept)
    picked = np.arange(n) if n <= config.max_fit_sample else np.sort(
        rng.choice(n, size=config.max_fit_sample, replace=False))
    grouping = group_documents(docs, multiplicity, doc_of[picked], config)

    labels = grouping.labels[doc_of]
    sizes = np.bincount(labels[labels >= 0], minlength=max(grouping.n_clusters, 1))
    # Assignment can leave a discovered cluster with fewer records than it needs.
    labels = np.where((labels >= 0) & (sizes[np.maximum(labels, 0)] >= config.min_cluster_size),
                      labels, -1)
    similarity = grouping.similarity[doc_of]
    severity = np.array([_as_severity(r.severity) for r in kept], dtype=np.float64)
    times = np.array([_as_time(r.occurred_at) for r in kept], dtype=np.float64)
    category_codes, category_names = _codes(normalise_label(r.category) for r in kept)
    error_codes, error_names = _codes(normalise_label(r.error_type) for r in kept)
    version_codes, version_values = _codes(int(r.version) for r in kept)
    share_index = int(windows_of.max())
    rules = ContextRules(max_levels=config.context_max_levels,
                         min_support=config.context_min_support, alpha=config.context_alpha,
                         min_association=config.context_min_association,
                         min_coverage=config.context_min_coverage)
    coded = (encode_variables([r.variables for r in kept], rules)
             if any(r.variables for r in kept) else [])
    is_correction = np.fromiter((r.kind != "failure" for r in kept), dtype=bool, count=n)
    word_column = {t: j for j, t in enumerate(grouping.word_vocabulary) if " " not in t}
    # Members of each cluster, most central first (ties: earlier record first).
    order = np.lexsort((np.arange(n), -similarity, labels))
    order = order[labels[order] >= 0]
    bounds = np.searchsorted(labels[order], np.arange(grouping.n_clusters + 1))

    drafts = []
    for c in range(grouping.n_clusters):
        members = order[bounds[c] : bounds[c + 1]]
        if len(members) == 0:
            continue
        counts = np.bincount(windows_of[members], minlength=config.n_windows)
        recent = windows_of[members] == share_index
        slope, z = trend_statistics(counts)
        medoid = kept[int(members[0])]
        row = grouping.records_with_word.getrow(c)
        shares = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        words = ClusterWords(word_column, shares, float(len(members)))
        evidence = cluster_evidence(kept, members, doc_of, similarity, words, config)
        representative = kept[evidence.representative]
        categories = _ranked_names(category_codes[members], category_names)
        error_types = _ranked_names(error_codes[members], error_names)
        terms = _cluster_terms(grouping, c, float(len(members)), float(n), config,
                               named=(*error_types, *categories),
                               reference_text=docs[doc_of[members[0]]].text)
        pattern = Pattern(
            pattern_id="",
            label=compose_label(terms, max_words=config.label_max_words,
                                fallback=_fallback_label(categories, error_types, medoid)),
            terms=terms,
            representative_reason=display_text(representative.reason or "",
                                               config.max_example_chars) or "",
            size=len(members),
            share=int(recent.sum()) / share_window.records,
            severity_score=float(severity[members].sum()),
            recent_severity_score=float(severity[members][recent].sum()),
            trend_counts=tuple(int(x) for x in counts),
            trend_slope=slope,
            trend_z=z,
            status="new",
            first_seen=float(times[members].min()),
            last_seen=float(times[members].max()),
            versions=tuple(sorted(version_values[v] for v in np.unique(version_codes[members]))),
            categories=categories,
            error_types=error_types,
            examples=evidence.examples,
            centroid=_cluster_centroid(grouping, c, float(len(members)), config),
            statements=tuple((lang, display_text(text, config.max_example_chars) or "")
                             for lang, text in evidence.statements),
            language=evidence.language,
            noise=evidence.noise,
            corrections=int(is_correction[members].sum()),
            window_records=int(recent.sum()),
            context=best_context(members, coded, rules),
        )
        drafts.append(_Draft(pattern=pattern, members=members))
    return drafts, int((labels < 0).sum())


def _settle_identity(
    drafts: Sequence[_Draft], previous: Sequence[Pattern], config: MiningConfig
) -> tuple[tuple[Pattern, ...], tuple[Pattern, ...], list[str]]:
    """Return (patterns ranked, newly resolved previous patterns, the id of each draft)."""
    matches = match_to_previous([d.pattern.centroid for d in drafts], previous,
                                min_similarity=config.match_similarity)
    taken = {p.pattern_id for p in previous}
    # New ids are handed out in a content-defined order so they do not depend on cluster
    # numbering.
    fresh = sorted((i for i, m in enumerate(matches) if m is None),
                   key=lambda i: (drafts[i].pattern.centroid, drafts[i].pattern.first_seen))
    ids: dict[int, str] = {}
    for i in fresh:
        ids[i] = new_pattern_id(drafts[i].pattern.centroid, taken)
        taken.add(ids[i])
    settled = []
    for i, draft in enumerate(drafts):
        p = draft.pattern
        m = matches[i]
        if m is None:
            settled.append(dataclasses.replace(p, pattern_id=ids[i], status="new"))
            continue
        before = previous[m]
        ids[i] = before.pattern_id
        settled.append(dataclasses.replace(
            p,
            pattern_id=before.pattern_id,
            status=_trend_status(p, config),
            first_seen=min(p.first_seen, before.first_seen),
        ))
    settled.sort(key=lambda p: (-p.recent_severity_score, -p.size, p.pattern_id))
    continued = {m for m in matches if m is not None}
    resolved = tuple(
        dataclasses.replace(
            p, status="resolved", size=0, share=0.0, severity_score=0.0, window_records=0,
            recent_severity_score=0.0, trend_counts=(0,) * config.n_windows,
            trend_slope=0.0, trend_z=0.0,
        )
        for j, p in enumerate(previous)
        if j not in continued and p.status != "resolved"
    )
    return tuple(settled), resolved, [ids[i] for i in range(len(drafts))]


def _trend_status(p: Pattern, config: MiningConfig) -> PatternStatus:
    if p.trend_z >= config.trend_z_threshold:
        return "growing"
    if p.trend_z <= -config.trend_z_threshold:
        return "shrinking"
    return "stable"


def _distinct_documents(
    kept: Sequence[FailureRecord], config: MiningConfig
) -> tuple[list[Document], np.ndarray]:
    index: dict[Document, int] = {}
    metas: dict[tuple[str | None, str | None], tuple[str, ...]] = {}
    doc_of = np.empty(len(kept), dtype=np.int64)
    for i, r in enumerate(kept):
        key = (r.category, r.error_type)
        meta = metas.get(key)
        if meta is None:
            meta = metas[key] = meta_tokens(r)
        doc = Document(normalise_text(r.reason, config.max_reason_chars), meta)
        doc_of[i] = index.setdefault(doc, len(index))
    return list(index), doc_of


def _cluster_terms(
    grouping: Grouping,
    c: int,
    size: float,
    total: float,
    config: MiningConfig,
    *,
    named: Sequence[str],
    reference_text: str,
) -> tuple[str, ...]:
    row = grouping.records_with_word.getrow(c)
    return distinctive_terms(row.indices, row.data, cluster_size=size,
                             total_with_term=grouping.total_with_word, total_records=total,
                             vocabulary=grouping.word_vocabulary, top=config.n_terms,
                             named=named, reference_text=reference_text)


def _cluster_centroid(grouping: Grouping, c: int, size: float, config: MiningConfig) -> Centroid:
    weights: dict[str, float] = {}
    words = grouping.word_weight_sums.getrow(c)
    for i, w in zip(words.indices, words.data, strict=True):
        weights[grouping.word_vocabulary[i]] = config.word_weight * float(w) / size
    meta = grouping.meta_weight_sums.getrow(c)
    for i, w in zip(meta.indices, meta.data, strict=True):
        weights[grouping.meta_vocabulary[i]] = config.meta_weight * float(w) / size
    return sparse_centroid(weights, top=config.centroid_terms)


def _codes(values: Iterable[_Value]) -> tuple[np.ndarray, list[_Value]]:
    """Return each value's index into the list of distinct values (first-seen order)."""
    index: dict[_Value, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64)
    return codes, list(index)


def _ranked_names(codes: np.ndarray, names: Sequence[str]) -> tuple[str, ...]:
    """Return the non-empty names behind ``codes``, most frequent first (ties by name)."""
    counts = np.bincount(codes, minlength=len(names))
    ranked = sorted((-int(c), names[i]) for i, c in enumerate(counts) if c and names[i])
    return tuple(name for _, name in ranked[:_MAX_LISTED])


def _fallback_label(categories: Sequence[str], error_types: Sequence[str],
                    medoid: FailureRecord) -> str:
    if error_types:
        return error_types[0]
    if categories:
        return categories[0]
    return " ".join((medoid.reason or "").split()[:4])[:60] or "unlabelled"


def _as_time(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _as_severity(value: object) -> float:
    """Severity as given; non-numbers and NaN count as the default 1, negatives as 0."""
    try:
        s = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1.0
    if math.isnan(s):
        return 1.0
    return min(max(s, 0.0), 1e9)
