"""Grouping records into complaints without being told how many there are.

Average-linkage agglomeration under cosine distance, cut at a distance threshold, discovers
the clusters on a sample; every record is then assigned to the nearest cluster centroid,
or to none when no centroid is close enough (one-off complaints stay unclustered).

Vectors come from ``features.Embedding``: their dot products approximate the cosine of the
underlying unit-length TF-IDF rows, so "cosine distance" here is ``1 - a @ b`` without
re-normalising (see ``Embedding`` for why).
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

NOISE = -1
_TINY = 1e-12


def discover_clusters(
    vectors: np.ndarray, *, distance_threshold: float, min_cluster_size: int
) -> np.ndarray:
    """Return a cluster label per row (``NOISE`` for small clusters and all-zero rows).

    Labels are 0..k-1 in order of first appearance, so equal input gives equal output.
    """
    n = len(vectors)
    labels = np.full(n, NOISE, dtype=np.int64)
    live = np.flatnonzero(np.einsum("ij,ij->i", vectors, vectors) > _TINY)
    if len(live) == 0:
        return labels
    if len(live) == 1:
        raw = np.ones(1, dtype=np.int64)
    else:
        tree = linkage(condensed_distances(vectors[live]), method="average")
        raw = fcluster(tree, t=distance_threshold, criterion="distance").astype(np.int64)
    sizes = np.bincount(raw)
    big = sizes[raw] >= min_cluster_size
    labels[live[big]] = _first_appearance_order(raw[big])
    return labels


def condensed_distances(vectors: np.ndarray, *, block: int = 512) -> np.ndarray:
    """Return ``1 - a @ b`` for every pair (i < j) in scipy's condensed order, clipped to [0, 2].

    Built in row blocks so only the condensed vector (n^2/2 floats) is ever held whole.
    """
    n = len(vectors)
    out = np.empty(n * (n - 1) // 2, dtype=np.float64)
    pos = 0
    for start in range(0, n - 1, block):
        stop = min(start + block, n - 1)
        sims = vectors[start:stop] @ vectors[start + 1 :].T
        for offset, row in enumerate(range(start, stop)):
            tail = sims[offset, row - start :]
            out[pos : pos + len(tail)] = tail
            pos += len(tail)
    np.subtract(1.0, out, out=out)
    return np.clip(out, 0.0, 2.0, out=out)


def cluster_centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return one unit-length mean direction per label 0..max(labels)."""
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    centroids = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    member = labels >= 0
    np.add.at(centroids, labels[member], vectors[member])
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.where(norms > 0, norms, 1.0)


def assign_to_centroids(
    vectors: np.ndarray, centroids: np.ndarray, *, max_distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (nearest centroid or ``NOISE`` when farther than max_distance, similarity).

    A zero row has similarity 0 to everything and stays noise.
    """
    if len(centroids) == 0 or len(vectors) == 0:
        return np.full(len(vectors), NOISE, dtype=np.int64), np.zeros(len(vectors))
    similarity = vectors @ centroids.T
    nearest = np.argmax(similarity, axis=1)
    best = similarity[np.arange(len(vectors)), nearest]
    labels = np.where((best > 0) & (1.0 - best <= max_distance), nearest, NOISE)
    return labels.astype(np.int64), best


def _first_appearance_order(raw: np.ndarray) -> np.ndarray:
    _, first_index, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank = np.empty(len(first_index), dtype=np.int64)
    rank[np.argsort(first_index, kind="stable")] = np.arange(len(first_index))
    return rank[inverse]
