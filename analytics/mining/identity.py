"""Keeping a pattern's identity across runs: sparse centroids, matching and stable ids.

A pattern's ``centroid`` is a short list of (term, weight) pairs stored in the event log,
so matching needs nothing but two such lists: no fitted vectorizer has to survive a
restart, and replaying the log re-derives the same ids.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from analytics.mining.model import Pattern

Centroid = tuple[tuple[str, float], ...]
_ID_TERMS = 6


def sparse_centroid(weights: dict[str, float], *, top: int) -> Centroid:
    """Return the ``top`` heaviest terms, L2-normalised, heaviest first (ties by term)."""
    ranked = sorted(((t, w) for t, w in weights.items() if w > 0 and math.isfinite(w)),
                    key=lambda tw: (-tw[1], tw[0]))[:top]
    norm = math.sqrt(sum(w * w for _, w in ranked))
    if norm == 0.0:
        return ()
    # Rounded so the JSON in the log, and anything hashed from it, is stable.
    return tuple((t, round(w / norm, 6)) for t, w in ranked)


def centroid_similarity(a: Centroid, b: Centroid) -> float:
    """Return the cosine similarity of two sparse centroids (0 when either is empty)."""
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    lookup = dict(large)
    dot = sum(w * lookup.get(t, 0.0) for t, w in small)
    norm = math.sqrt(sum(w * w for _, w in a)) * math.sqrt(sum(w * w for _, w in b))
    return dot / norm if norm > 0 else 0.0


def match_to_previous(
    current: Sequence[Centroid], previous: Sequence[Pattern], *, min_similarity: float
) -> list[int | None]:
    """Return, per current centroid, the index of the previous pattern it continues (or None).

    One-to-one, maximising total similarity (Hungarian assignment), and only pairs at least
    ``min_similarity`` alike: when a pattern splits, the closer half keeps the id.
    """
    matches: list[int | None] = [None] * len(current)
    if not current or not previous:
        return matches
    similarity = np.array([[centroid_similarity(c, p.centroid) for p in previous]
                           for c in current])
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    for r, c in zip(rows, cols, strict=True):
        if similarity[r, c] >= min_similarity:
            matches[int(r)] = int(c)
    return matches


def new_pattern_id(centroid: Centroid, taken: Collection[str]) -> str:
    """Return a deterministic id from the centroid's top terms, avoiding ids in ``taken``.

    Top terms are sorted before hashing so a near-tie in weights cannot change the id.
    """
    terms = sorted(t for t, _ in centroid[:_ID_TERMS])
    digest = hashlib.sha256("\x1f".join(terms).encode("utf-8")).hexdigest()
    candidate = f"pat_{digest[:12]}"
    suffix = 2
    while candidate in taken:
        candidate = f"pat_{digest[:12]}_{suffix}"
        suffix += 1
    return candidate
