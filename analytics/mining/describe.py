"""Words for a cluster: its distinctive terms and a short human-readable label."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_MIN_SHARE = 0.05  # a term used by fewer of the cluster's records says little about it


def distinctive_terms(
    term_indices: np.ndarray,
    records_with_term: np.ndarray,
    *,
    cluster_size: float,
    total_with_term: np.ndarray,
    total_records: float,
    vocabulary: Sequence[str],
    top: int,
    named: Sequence[str] = (),
    reference_text: str = "",
) -> tuple[str, ...]:
    """Return the cluster's ``top`` terms, most distinctive first.

    A term is distinctive when many of the cluster's records use it and few others do:
    ``share_in * log(1 + share_in / (share_out + 1/N))`` (a class-based TF-IDF). Terms with a
    purely numeric word (ids, dates, counts) are left out: they name instances, not problems.
    Equally distinctive terms (common when one cluster is all there is) are ordered by
    whether a category or error type in ``named`` contains one of their words (a person or
    the runtime already named the failure that way), then by where they first appear in
    ``reference_text`` (the medoid), so the label reads like the complaint.
    """
    if len(term_indices) == 0 or cluster_size <= 0:
        return ()
    share_in = records_with_term / cluster_size
    outside = max(total_records - cluster_size, 1.0)
    share_out = np.clip(total_with_term[term_indices] - records_with_term, 0.0, None) / outside
    score = share_in * np.log1p(share_in / (share_out + 1.0 / max(total_records, 1.0)))
    ranked = sorted(
        (
            round(-float(s), 9),
            not _is_named(vocabulary[int(i)], named),
            _position(vocabulary[int(i)], reference_text),
            vocabulary[int(i)],
        )
        for i, s, p in zip(term_indices, score, share_in, strict=True)
        if p >= _MIN_SHARE and not _names_an_instance(vocabulary[int(i)])
    )
    return tuple(key[-1] for key in ranked[:top])


def compose_label(terms: Sequence[str], *, max_words: int, fallback: str = "") -> str:
    """Return 2-``max_words`` distinct words from the ranked terms (3 when they allow).

    Falls back to ``fallback`` (e.g. the category) when the terms give no words at all.
    """
    words: list[str] = []
    for term in terms:
        fresh = [w for w in term.split() if w not in words]
        if not fresh or len(words) + len(fresh) > max_words:
            continue
        words.extend(fresh)
        if len(words) >= min(3, max_words):
            break
    return " ".join(words) if words else fallback


def _is_named(term: str, named: Sequence[str]) -> bool:
    return any(word in label for word in term.split() for label in named)


def _position(term: str, text: str) -> int:
    at = text.find(term)
    return at if at >= 0 else len(text) + 1


def _names_an_instance(term: str) -> bool:
    return any(w.isdigit() or (math.isfinite(_as_float(w))) for w in term.split())


def _as_float(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        return math.nan
