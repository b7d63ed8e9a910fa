"""TF-IDF features of corrections: word 1-2 grams, char_wb 3-5 grams, category/error tokens.

Vocabularies and IDF are fitted on a sample and applied to any number of documents, a
range at a time, so the corpus never sits in memory as one sparse matrix. Documents are
first reduced to ids into a list of distinct words (the only per-word Python work); word
columns, bigrams and counting are then array operations, and each distinct word's char
n-grams are computed once for the whole corpus.

Weighting matches scikit-learn's ``TfidfVectorizer`` (smooth IDF, L2 rows; tests check it):
the word block uses ``sublinear_tf=True``. The char block uses raw term frequency (on
complaint-length text the two barely differ), which makes a document's char row a plain
sum of its words' rows, so ``embedding`` can project words once instead of every
document's ~130 char n-grams.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.sparse as sp
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
    """Fitted vocabularies for the three blocks, with lookups that let counting vectorise."""

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


@dataclass(frozen=True, slots=True, eq=False)
class WordIds:
    """Documents as runs of ids into one list of distinct content words."""

    ids: np.ndarray  # word ids, document after document
    starts: np.ndarray  # (n_docs + 1,) offsets of each document's run in ``ids``
    words: tuple[str, ...]

    def segment(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (word ids, document of each id relative to ``start``) for a doc range."""
        lo, hi = int(self.starts[start]), int(self.starts[stop])
        lengths = np.diff(self.starts[start : stop + 1])
        return self.ids[lo:hi], np.repeat(np.arange(stop - start, dtype=np.int64), lengths)


def content_words(text: str) -> list[str]:
    """Return the words of ``text`` (2+ word characters) that are not English stop words."""
    return [t for t in _WORD.findall(text) if t not in _STOP]


def word_terms(text: str) -> list[str]:
    """Return the word unigrams then bigrams of ``text`` (stop words removed first)."""
    return _with_bigrams(content_words(text))


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


def tokenise(docs: Sequence[Document]) -> WordIds:
    """Return the content words of ``docs`` as ids into their distinct words."""
    ids: dict[str, int] = {}
    flat: list[int] = []
    starts = np.zeros(len(docs) + 1, dtype=np.int64)
    for i, doc in enumerate(docs):
        flat.extend([ids.setdefault(t, len(ids)) for t in _WORD.findall(doc.text)
                     if t not in _STOP])
        starts[i + 1] = len(flat)
    return WordIds(ids=np.asarray(flat, dtype=np.int64), starts=starts, words=tuple(ids))


def fit_feature_space(docs: Sequence[Document], *, min_df: int) -> FeatureSpace:
    """Return vocabularies (terms in at least ``min_df`` docs) and IDF fitted on ``docs``."""
    n = len(docs)
    word_df: Counter[str] = Counter()
    meta_df: Counter[str] = Counter()
    for doc in docs:
        word_df.update(set(word_terms(doc.text)))
        meta_df.update(set(doc.meta))
    tokens = tokenise(docs)
    ids, doc_of = tokens.segment(0, n)
    ngram_index: dict[str, int] = {}
    word_ngrams = _ngram_counts(tokens.words, ngram_index, grow=True)
    presence = (_counts(doc_of, ids, (n, len(tokens.words))) @ word_ngrams).tocsc()
    char_df = np.diff(presence.indptr)
    char_counts = Counter({g: int(char_df[i]) for g, i in ngram_index.items()})
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


@dataclass(frozen=True, slots=True, eq=False)
class PreparedDocs:
    """Documents reduced to word ids against a fitted space; blocks come per doc range."""

    space: FeatureSpace
    tokens: WordIds
    unigram: np.ndarray  # per distinct word: its column in the word block, or -1
    word_chars: sp.csr_matrix  # per distinct word: IDF-weighted counts of its char n-grams
    meta: sp.csr_matrix  # per document: the meta block (small, so built whole)

    @property
    def n_docs(self) -> int:
        """Return the number of documents."""
        return len(self.tokens.starts) - 1

    def blocks(self, start: int, stop: int) -> FeatureBlocks:
        """Return the three TF-IDF blocks of documents ``start:stop``."""
        ids, doc_of = self.tokens.segment(start, stop)
        word_docs = _counts(doc_of, ids, (stop - start, len(self.tokens.words)))
        return FeatureBlocks(word=self.word_block(start, stop),
                             char=_unit_rows(word_docs @ self.word_chars),
                             meta=self.meta[start:stop])

    def word_block(self, start: int, stop: int) -> sp.csr_matrix:
        """Return the word unigram+bigram TF-IDF rows of documents ``start:stop``."""
        space = self.space
        ids, doc_of = self.tokens.segment(start, stop)
        unigram = self.unigram[ids]
        rows, cols = [doc_of[unigram >= 0]], [unigram[unigram >= 0]]
        if len(ids) > 1 and len(space.bigram_keys):
            first, second = unigram[:-1], unigram[1:]
            pair = (doc_of[:-1] == doc_of[1:]) & (first >= 0) & (second >= 0)
            keys = first[pair] * _PAIR + second[pair]
            at = np.minimum(np.searchsorted(space.bigram_keys, keys), len(space.bigram_keys) - 1)
            hit = space.bigram_keys[at] == keys
            rows.append(doc_of[:-1][pair][hit])
            cols.append(space.bigram_columns[at[hit]])
        counts = _counts(np.concatenate(rows), np.concatenate(cols),
                         (stop - start, space.word.size))
        return _tfidf(counts, space.word)


def prepare(space: FeatureSpace, docs: Sequence[Document]) -> PreparedDocs:
    """Return ``docs`` reduced to word ids, ready for blocks or a range-wise embedding."""
    tokens = tokenise(docs)
    unigram = np.array([space.unigram_column.get(w, -1) for w in tokens.words] or [-1],
                       dtype=np.int64)
    word_chars = _ngram_counts(tokens.words, space.char.index, grow=False)
    word_chars.data *= space.char.idf[word_chars.indices]
    meta_index = space.meta.index
    meta_rows = [i for i, d in enumerate(docs) for t in d.meta if t in meta_index]
    meta_cols = [meta_index[t] for d in docs for t in d.meta if t in meta_index]
    meta = _tfidf(_counts(np.asarray(meta_rows, dtype=np.int64),
                          np.asarray(meta_cols, dtype=np.int64),
                          (len(docs), space.meta.size)), space.meta)
    return PreparedDocs(space=space, tokens=tokens, unigram=unigram, word_chars=word_chars,
                        meta=meta)


def transform(space: FeatureSpace, docs: Sequence[Document]) -> FeatureBlocks:
    """Return the TF-IDF blocks of ``docs`` in ``space`` (unknown terms are ignored)."""
    return prepare(space, docs).blocks(0, len(docs))


def _with_bigrams(tokens: list[str]) -> list[str]:
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


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


def _ngram_counts(words: Sequence[str], index: dict[str, int], *, grow: bool) -> sp.csr_matrix:
    """Return a words x char-n-gram count matrix; ``grow`` adds unseen n-grams to ``index``."""
    indptr = [0]
    indices: list[int] = []
    for word in words:
        grams = char_wb_ngrams(word)
        if grow:
            indices.extend([index.setdefault(g, len(index)) for g in grams])
        else:
            indices.extend([index[g] for g in grams if g in index])
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    matrix = sp.csr_matrix((data, np.asarray(indices, dtype=np.int64),
                            np.asarray(indptr, dtype=np.int64)), shape=(len(words), len(index)))
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
    return normalize(sp.csr_matrix(matrix), copy=False)
