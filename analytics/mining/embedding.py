"""Short dense vectors whose dot products approximate TF-IDF cosines (LSA without renorm).

Rows are deliberately NOT re-normalised after projection: a record whose words are mostly
its own (a one-off complaint) keeps a short vector, so its dot product with others stays
close to its true TF-IDF cosine. Re-normalising would blow up the little it shares with
everyone (category, filler words) and make one-off complaints look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from analytics.mining.features import FeatureBlocks, PreparedDocs


@dataclass(frozen=True, slots=True, eq=False)
class Embedding:
    """A fitted linear map from the weighted, stacked TF-IDF blocks to dense vectors."""

    block_weights: tuple[float, float, float]
    block_widths: tuple[int, int, int]
    components: np.ndarray | None = None  # (k, n_features): LSA directions, or
    sample_rows: sp.csr_matrix | None = None  # with ``basis``: the exact span of a small
    basis: np.ndarray | None = None  # sample, via its Gram matrix (n, r)

    def embed(self, blocks: FeatureBlocks) -> np.ndarray:
        """Return one vector per row whose dot products approximate TF-IDF cosines."""
        if self.components is None:
            assert self.sample_rows is not None and self.basis is not None
            combined = blocks.combined(self.block_weights)
            return (combined @ self.sample_rows.T).toarray() @ self.basis
        word, char, meta = self._directions()
        return self._combine(
            [blocks.word @ word.T, blocks.char @ char.T, blocks.meta @ meta.T],
            [_has_entries(blocks.word), _has_entries(blocks.char), _has_entries(blocks.meta)],
        )

    def embed_range(
        self, docs: PreparedDocs, start: int, stop: int
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """Return (word block, meta block, vectors) of documents ``start:stop``.

        Same vectors as ``embed(docs.blocks(start, stop))``, but the char block is never
        projected: with raw term frequency a document's char row is the sum of its words'
        rows, so the projection goes through the range's distinct words instead of every
        document's ~130 char n-grams.
        """
        word_block, meta_block = docs.word_block(start, stop), docs.meta[start:stop]
        if self.components is None:
            return word_block, meta_block, self.embed(docs.blocks(start, stop))
        n = stop - start
        ids, doc_of = docs.tokens.segment(start, stop)
        used, local = np.unique(ids, return_inverse=True)
        word_docs = sp.csr_matrix((np.ones(len(ids)), (doc_of, local)), shape=(n, len(used)))
        word_docs.sum_duplicates()
        chars = docs.word_chars[used]
        raw = word_docs @ chars  # built only for the rows' norms
        rows = np.repeat(np.arange(n), np.diff(raw.indptr))
        norms = np.sqrt(np.bincount(rows, weights=raw.data**2, minlength=n))
        word, char, meta = self._directions()
        char_part = word_docs @ np.asarray(chars @ char.T)
        char_part /= np.where(norms > 0, norms, 1.0)[:, None]
        vectors = self._combine(
            [word_block @ word.T, char_part, meta_block @ meta.T],
            [_has_entries(word_block), norms > 0, _has_entries(meta_block)],
        )
        return word_block, meta_block, vectors

    def _directions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.components is not None
        w, c, _ = self.block_widths
        return (self.components[:, :w], self.components[:, w : w + c],
                self.components[:, w + c :])

    def _combine(self, parts: list[np.ndarray], present: list[np.ndarray]) -> np.ndarray:
        """Return the weighted sum of block projections over the stacked rows' norms.

        Each block row is unit length or empty, so the stacked row's norm is known from
        which blocks are present; this equals projecting the normalised stacked rows.
        """
        out = sum(w * np.asarray(p) for w, p in zip(self.block_weights, parts, strict=True))
        norm2 = sum(w * w * m for w, m in zip(self.block_weights, present, strict=True))
        norm = np.sqrt(np.asarray(norm2, dtype=np.float64))
        return np.asarray(out, dtype=np.float64) / np.where(norm > 0, norm, 1.0)[:, None]


def fit_embedding(
    blocks: FeatureBlocks,
    *,
    block_weights: tuple[float, float, float],
    n_components: int,
    seed: int,
) -> Embedding:
    """Return an LSA embedding of ``n_components`` dims, or an exact one for a small sample.

    With fewer than ~2 documents per component a truncated SVD would drop real structure;
    the eigen-decomposition of the small Gram matrix instead spans the sample exactly.
    """
    combined = blocks.combined(block_weights)
    widths = (blocks.word.shape[1], blocks.char.shape[1], blocks.meta.shape[1])
    n_docs, n_features = combined.shape
    if n_docs >= 2 * n_components and n_features > n_components:
        svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=5,
                           random_state=seed)
        svd.fit(combined)
        return Embedding(block_weights=block_weights, block_widths=widths,
                         components=svd.components_.astype(np.float64))
    gram = (combined @ combined.T).toarray()
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    keep = eigenvalues > max(float(eigenvalues.max(initial=0.0)), 1.0) * 1e-10
    basis = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])
    return Embedding(block_weights=block_weights, block_widths=widths, sample_rows=combined,
                     basis=basis)


def _has_entries(block: sp.csr_matrix) -> np.ndarray:
    return np.diff(block.indptr) > 0
