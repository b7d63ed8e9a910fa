"""From documents to clusters: sample, fit, cluster, then assign and tally every document.

Works on distinct documents with their multiplicity (how many records share the text),
so repeated error messages cost nothing extra. Only one chunk of TF-IDF rows exists at a
time; what survives is a label and a similarity per document and per-cluster term tallies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from analytics.mining.clustering import (
    NOISE,
    assign_to_centroids,
    cluster_centroids,
    discover_clusters,
)
from analytics.mining.config import MiningConfig
from analytics.mining.embedding import fit_embedding
from analytics.mining.features import Document, fit_feature_space, prepare, transform

_CHUNK = 8_192


@dataclass(frozen=True, slots=True, eq=False)
class Grouping:
    """Cluster of every distinct document plus what each cluster's records say."""

    labels: np.ndarray  # per document: cluster 0..k-1 or NOISE
    similarity: np.ndarray  # per document: similarity to its cluster's centroid
    n_clusters: int
    word_vocabulary: tuple[str, ...]
    meta_vocabulary: tuple[str, ...]
    word_weight_sums: sp.csr_matrix  # (k, words): sum over records of TF-IDF rows
    records_with_word: sp.csr_matrix  # (k, words): records using each word term
    meta_weight_sums: sp.csr_matrix  # (k, meta tokens)
    total_with_word: np.ndarray  # (words,): records using each word term, all records


def group_documents(
    docs: Sequence[Document],
    multiplicity: np.ndarray,
    sample: np.ndarray,
    config: MiningConfig,
) -> Grouping:
    """Return the clusters of ``docs``, discovered on the documents at ``sample`` (with repeats).

    ``sample`` holds document indices drawn from records, so a text repeated by many records
    weighs accordingly in discovery.
    """
    sample_docs = [docs[i] for i in sample]
    space = fit_feature_space(sample_docs, min_df=min(config.min_df, max(len(sample_docs), 1)))
    sample_blocks = transform(space, sample_docs)
    embedding = fit_embedding(sample_blocks, block_weights=config.block_weights,
                              n_components=config.n_components, seed=config.seed)
    sample_vectors = embedding.embed(sample_blocks)
    sample_labels = discover_clusters(sample_vectors, distance_threshold=config.distance_threshold,
                                      min_cluster_size=config.min_cluster_size)
    centroids = cluster_centroids(sample_vectors, sample_labels)
    # Documents that were sampled keep the cluster agglomeration gave them; identical texts
    # always share a cluster there, so a per-document label is well defined.
    fixed = np.full(len(docs), NOISE, dtype=np.int64)
    fixed[sample] = sample_labels

    k = len(centroids)
    labels = np.full(len(docs), NOISE, dtype=np.int64)
    similarity = np.zeros(len(docs), dtype=np.float64)
    n_words, n_meta = len(space.word.terms), len(space.meta.terms)
    word_sums = sp.csr_matrix((k, n_words))
    word_records = sp.csr_matrix((k, n_words))
    meta_sums = sp.csr_matrix((k, n_meta))
    total_with_word = np.zeros(n_words, dtype=np.float64)
    prepared = prepare(space, docs)
    for start in range(0, len(docs), _CHUNK):
        stop = min(start + _CHUNK, len(docs))
        word_block, meta_block, vectors = embedding.embed_range(prepared, start, stop)
        chunk_labels, chunk_sim = assign_to_centroids(vectors, centroids,
                                                      max_distance=config.assign_distance)
        pinned = fixed[start:stop] >= 0
        chunk_labels[pinned] = fixed[start:stop][pinned]
        if pinned.any():
            chunk_sim[pinned] = np.einsum("ij,ij->i", vectors[pinned],
                                          centroids[chunk_labels[pinned]])
        labels[start:stop] = chunk_labels
        similarity[start:stop] = chunk_sim

        weights = multiplicity[start:stop].astype(np.float64)
        word_present = word_block.copy()
        word_present.data[:] = 1.0
        total_with_word += word_present.T @ weights
        member = np.flatnonzero(chunk_labels >= 0)
        tally = sp.csr_matrix((weights[member], (chunk_labels[member], member)),
                              shape=(k, stop - start))
        word_sums = word_sums + tally @ word_block
        word_records = word_records + tally @ word_present
        meta_sums = meta_sums + tally @ meta_block

    return Grouping(
        labels=labels,
        similarity=similarity,
        n_clusters=k,
        word_vocabulary=space.word.terms,
        meta_vocabulary=space.meta.terms,
        word_weight_sums=word_sums.tocsr(),
        records_with_word=word_records.tocsr(),
        meta_weight_sums=meta_sums.tocsr(),
        total_with_word=total_with_word,
    )
