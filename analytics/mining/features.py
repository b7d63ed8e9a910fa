"""TF-IDF features of corrections: word 1-2 grams, char_wb 3-5 grams, category/error tokens.

The vocabularies and IDF are fitted on a sample and then applied to any number of records
in chunks, so the whole corpus never sits in memory as a sparse matrix. Weighting follows
scikit-learn's ``TfidfVectorizer(sublinear_tf=True, smooth_idf=True)`` exactly (a test
checks it), but counting is done here because the character n-grams are computed once per
distinct whitespace token and spread to documents by a sparse product, which is what makes
200,000 records affordable.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.preprocessing import normalize

_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOP = frozenset(ENGLISH_STOP_WORDS)
_PAIR = 1 << 31  # packs two word columns into one int64 key
CHAR_NGRAMS = (3, 5)


@dataclass(frozen=True, slots=True)
class Document:
    """The comparable part of one record: normalised reason text and meta tokens."""

    text: str
    meta: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Vocabulary:
    """A fitted term -> column mapping with the smoothed IDF of each column."""

    index: dict[str, int]
    terms: tuple[str, ...]
    idf: np.ndarray

    @property
    def size(self) -> int:
        """Return the number of columns."""
        return len(self.terms)


@dataclass(frozen=True, slots=True, eq=False)
class FeatureSpace:
    """Fitted vocabularies for the three blocks, with lookups that let transform vectorise."""

    word: Vocabulary
    char: Vocabulary
    meta: Vocabulary
    unigram_column: dict[str, int]  # word -> its column in ``word``
    bigram_keys: np.ndarray  # sorted (column_a * _PAIR + column_b) of each bigram in ``word``
    bigram_columns: np.ndarray  # the bigram's column, aligned with ``bigram_keys``


@dataclass(frozen=True, slots=True, eq=False)
class FeatureBlocks:
    """TF-IDF rows of a batch, one L2-normalised matrix per block."""

    word: sp.csr_matrix
    char: sp.csr_matrix
    meta: sp.csr_matrix

    def combined(self, weights: tuple[float, float, float]) -> sp.csr_matrix:
        """Return the blocks side by side, weighted, each row L2-normalised."""
        ww, wc, wm = weights
        stacked = sp.hstack([self.word * ww, self.char * wc, self.meta * wm], format="csr")
        return _unit_rows(stacked)


def content_words(text: str) -> list[str]:
    """Return the words of ``text`` (2+ word characters) that are not English stop words."""
    return [t for t in _WORD.findall(text) if t not in _STOP]


def word_terms(text: str) -> list[str]:
    """Return the word unigrams then bigrams of ``text`` (stop words removed first)."""
    return _with_bigrams(content_words(text))


def _with_bigrams(tokens: list[str]) -> list[str]:
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


def char_wb_ngrams(token: str) -> list[str]:
    """Return the char n-grams of one word padded with spaces (as sklearn's char_wb does)."""
    padded = f" {token} "
    out = []
    for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
        if len(padded) <= n:
            out.append(padded)  # a short word counts once, as in sklearn
            break
        out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


def fit_feature_space(docs: Sequence[Document], *, min_df: int) -> FeatureSpace:
    """Return vocabularies (terms in at least ``min_df`` docs) and IDF fitted on ``docs``."""
    n = len(docs)
    words = [content_words(d.text) for d in docs]
    word_df: Counter[str] = Counter()
    meta_df: Counter[str] = Counter()
    for doc, doc_words in zip(docs, words, strict=True):
        word_df.update(set(_with_bigrams(doc_words)))
        meta_df.update(set(doc.meta))
    # Char n-gram document frequencies go through the per-word matrix like transform does.
    token_docs, tokens = _token_matrix(words)
    ngram_index: dict[str, int] = {}
    token_ngrams = _ngram_matrix(tokens, ngram_index, grow=True)
    presence = (token_docs @ token_ngrams).tocsc()
    char_df = np.diff(presence.indptr)
    char_terms = sorted(ngram_index, key=ngram_index.__getitem__)
    char_counts = Counter({t: int(char_df[i]) for i, t in enumerate(char_terms)})
    word = _vocabulary(word_df, n, min_df)
    unigram_column = {t: i for i, t in enumerate(word.terms) if " " not in t}
    pairs = [(i, t.split(" ")) for i, t in enumerate(word.terms) if " " in t]
    # A bigram in >= min_df documents implies both its words are, so both have columns.
    keys = np.array([unigram_column[a] * _PAIR + unigram_column[b] for _, (a, b) in pairs],
                    dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    return FeatureSpace(
        word=word,
        char=_vocabulary(char_counts, n, min_df),
        meta=_vocabulary(meta_df, n, min_df),
        unigram_column=unigram_column,
        bigram_keys=keys[order],
        bigram_columns=np.array([i for i, _ in pairs], dtype=np.int64)[order],
    )


def transform(space: FeatureSpace, docs: Sequence[Document]) -> FeatureBlocks:
    """Return the TF-IDF blocks of ``docs`` in ``space`` (unknown terms are ignored).

    Python touches each word once (to give it a batch-local id); unigram and bigram columns,
    char n-grams and counting are then array operations over those ids.
    """
    n = len(docs)
    ids: dict[str, int] = {}
    flat: list[int] = []
    lengths = np.zeros(n, dtype=np.int64)
    for i, doc in enumerate(docs):
        before = len(flat)
        flat.extend([ids.setdefault(t, len(ids)) for t in _WORD.findall(doc.text)
                     if t not in _STOP])
        lengths[i] = len(flat) - before
    tokens = np.asarray(flat, dtype=np.int64)
    doc_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
    distinct = list(ids)

    column = np.array([space.unigram_column.get(w, -1) for w in distinct] or [-1],
                      dtype=np.int64)
    unigram = column[tokens]
    rows, cols = [doc_of[unigram >= 0]], [unigram[unigram >= 0]]
    if len(tokens) > 1 and len(space.bigram_keys):
        first, second = unigram[:-1], unigram[1:]
        pair = (doc_of[:-1] == doc_of[1:]) & (first >= 0) & (second >= 0)
        keys = first[pair] * _PAIR + second[pair]
        at = np.minimum(np.searchsorted(space.bigram_keys, keys), len(space.bigram_keys) - 1)
        hit = space.bigram_keys[at] == keys
        rows.append(doc_of[:-1][pair][hit])
        cols.append(space.bigram_columns[at[hit]])
    word_counts = _counts(np.concatenate(rows), np.concatenate(cols), (n, space.word.size))

    token_docs = _counts(doc_of, tokens, (n, len(distinct)))
    char_counts = token_docs @ _ngram_matrix(distinct, space.char.index, grow=False)

    meta_index = space.meta.index
    meta_rows = [i for i, d in enumerate(docs) for t in d.meta if t in meta_index]
    meta_cols = [meta_index[t] for d in docs for t in d.meta if t in meta_index]
    meta_counts = _counts(np.asarray(meta_rows, dtype=np.int64),
                          np.asarray(meta_cols, dtype=np.int64), (n, space.meta.size))
    return FeatureBlocks(word=_tfidf(word_counts, space.word),
                         char=_tfidf(char_counts, space.char),
                         meta=_tfidf(meta_counts, space.meta))


@dataclass(frozen=True, slots=True, eq=False)
class Embedding:
    """A fitted linear map from TF-IDF rows to short dense vectors that keep dot products.

    Rows are deliberately NOT re-normalised after projection: a record whose words are
    mostly its own (a one-off complaint) keeps a short vector, so its dot product with
    others stays close to its true TF-IDF cosine. Re-normalising would blow up the little
    it shares with everyone (category, filler words) and make one-off complaints look alike.
    """

    block_weights: tuple[float, float, float]
    components: np.ndarray | None = None  # (k, n_features): LSA directions, or
    sample_rows: sp.csr_matrix | None = None  # with ``basis``: the exact span of a small
    basis: np.ndarray | None = None  # sample, via its Gram matrix (n, r)

    def embed(self, blocks: FeatureBlocks) -> np.ndarray:
        """Return one vector per row whose dot products approximate TF-IDF cosines."""
        if self.components is None:
            assert self.sample_rows is not None and self.basis is not None
            combined = blocks.combined(self.block_weights)
            return (combined @ self.sample_rows.T).toarray() @ self.basis
        # Projecting block by block equals projecting the stacked, normalised rows (the
        # stacked norm is known from which blocks are non-empty) without building the stack.
        out = np.zeros((blocks.word.shape[0], self.components.shape[0]))
        norm2 = np.zeros(blocks.word.shape[0])
        start = 0
        for block, weight in zip((blocks.word, blocks.char, blocks.meta), self.block_weights,
                                 strict=True):
            stop = start + block.shape[1]
            if weight > 0 and block.nnz:
                out += block @ (weight * self.components[:, start:stop].T)
                norm2 += weight**2 * (np.diff(block.indptr) > 0)
            start = stop
        norm = np.sqrt(norm2)
        out /= np.where(norm > 0, norm, 1.0)[:, None]
        return out


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
    n_docs, n_features = combined.shape
    if n_docs >= 2 * n_components and n_features > n_components:
        svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=5,
                           random_state=seed)
        svd.fit(combined)
        return Embedding(block_weights=block_weights,
                         components=svd.components_.astype(np.float64))
    gram = (combined @ combined.T).toarray()
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    keep = eigenvalues > max(float(eigenvalues.max(initial=0.0)), 1.0) * 1e-10
    basis = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])
    return Embedding(block_weights=block_weights, sample_rows=combined, basis=basis)


def _vocabulary(df: Counter[str], n_docs: int, min_df: int) -> Vocabulary:
    terms = tuple(sorted(t for t, c in df.items() if c >= min_df))
    counts = np.array([df[t] for t in terms], dtype=np.float64)
    idf = np.log((1.0 + n_docs) / (1.0 + counts)) + 1.0
    return Vocabulary(index={t: i for i, t in enumerate(terms)}, terms=terms, idf=idf)


def _counts(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _token_matrix(words: Sequence[Sequence[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """Return a docs x distinct-words count matrix and the distinct words."""
    ids: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for doc_words in words:
        indices.extend(ids.setdefault(w, len(ids)) for w in doc_words)
        indptr.append(len(indices))
    return _csr(indices, indptr, len(ids)), list(ids)


def _ngram_matrix(tokens: Sequence[str], index: dict[str, int], *, grow: bool) -> sp.csr_matrix:
    """Return a tokens x char-n-gram count matrix; ``grow`` adds unseen n-grams to ``index``."""
    indptr = [0]
    indices: list[int] = []
    for token in tokens:
        grams = char_wb_ngrams(token)
        if grow:
            indices.extend(index.setdefault(g, len(index)) for g in grams)
        else:
            indices.extend(index[g] for g in grams if g in index)
        indptr.append(len(indices))
    return _csr(indices, indptr, len(index))


def _csr(indices: list[int], indptr: list[int], n_cols: int) -> sp.csr_matrix:
    idx = np.asarray(indices, dtype=np.int32)
    ptr = np.asarray(indptr, dtype=np.int64)
    data = np.ones(len(idx), dtype=np.float64)
    matrix = sp.csr_matrix((data, idx, ptr), shape=(len(ptr) - 1, n_cols))
    matrix.sum_duplicates()
    return matrix


def _tfidf(counts: sp.csr_matrix, vocab: Vocabulary) -> sp.csr_matrix:
    counts = counts.tocsr()
    counts.sum_duplicates()
    counts.data = (1.0 + np.log(counts.data)) * vocab.idf[counts.indices]
    return _unit_rows(counts)


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Return ``matrix`` with rows scaled to unit length (zero rows and no columns allowed)."""
    if matrix.shape[1] == 0:
        return sp.csr_matrix(matrix.shape)
    return normalize(matrix, copy=False)
