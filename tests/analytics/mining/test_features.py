"""TF-IDF features: our vectorised counting must weigh terms exactly like scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from analytics.mining.embedding import fit_embedding
from analytics.mining.features import (
    Document,
    content_words,
    fit_feature_space,
    prepare,
    transform,
)
from analytics.mining.synthetic import generate_corpus
from analytics.mining.text import meta_tokens, normalise_text

NOW = 1_700_000_000.0


def _docs(n: int, seed: int) -> list[Document]:
    corpus = generate_corpus(seed=seed, n_records=n, now=NOW)
    return [Document(normalise_text(r.reason, 2_000), meta_tokens(r)) for r in corpus.records]


def test_word_block_equals_sklearn_tfidf_of_word_unigrams_and_bigrams() -> None:
    docs = _docs(400, seed=11)
    texts = [d.text for d in docs]
    space = fit_feature_space(docs, min_df=2)
    reference = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", sublinear_tf=True,
                                min_df=2).fit(texts)
    assert list(reference.get_feature_names_out()) == list(space.word.terms)
    difference = abs(reference.transform(texts) - transform(space, docs).word)
    assert difference.max() < 1e-12


def test_char_block_equals_sklearn_char_wb_over_content_words() -> None:
    docs = _docs(400, seed=12)
    texts = [" ".join(content_words(d.text)) for d in docs]
    space = fit_feature_space(docs, min_df=2)
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=False,
                                min_df=2).fit(texts)
    assert list(reference.get_feature_names_out()) == list(space.char.terms)
    difference = abs(reference.transform(texts) - transform(space, docs).char)
    assert difference.max() < 1e-12


def test_unseen_documents_use_only_fitted_terms_and_stay_unit_length() -> None:
    fitted = _docs(300, seed=13)
    space = fit_feature_space(fitted, min_df=2)
    unseen = [*_docs(50, seed=14), Document("completely novel vocabulary zyxwv"), Document("")]
    blocks = transform(space, unseen)
    for block in (blocks.word, blocks.char, blocks.meta):
        norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1))).ravel()
        assert np.all((np.abs(norms - 1.0) < 1e-9) | (norms == 0.0))
    assert blocks.word[len(unseen) - 1].nnz == 0  # the empty document has no features


def test_lsa_dot_products_approximate_tfidf_cosines_without_renormalising() -> None:
    docs = _docs(600, seed=15)
    space = fit_feature_space(docs, min_df=2)
    blocks = transform(space, docs)
    weights = (1.0, 0.5, 0.25)
    with threadpool_limits(limits=1, user_api="blas"):  # as mine_patterns runs it
        embedding = fit_embedding(blocks, block_weights=weights, n_components=100, seed=0)
    vectors = embedding.embed(blocks)
    combined = blocks.combined(weights)
    exact = (combined @ combined.T).toarray()
    # A rank-100 projection can only shrink dot products of unit rows towards what the
    # shared directions explain; on this corpus it keeps them within a small margin.
    error = np.abs(vectors @ vectors.T - exact)
    assert np.median(error) < 0.02
    assert np.all(np.linalg.norm(vectors, axis=1) <= 1.0 + 1e-9)


def test_small_sample_embedding_reproduces_tfidf_cosines_exactly() -> None:
    docs = _docs(40, seed=16)
    space = fit_feature_space(docs, min_df=2)
    blocks = transform(space, docs)
    weights = (1.0, 0.5, 0.25)
    embedding = fit_embedding(blocks, block_weights=weights, n_components=100, seed=0)
    vectors = embedding.embed(blocks)
    combined = blocks.combined(weights)
    assert np.allclose(vectors @ vectors.T, (combined @ combined.T).toarray(), atol=1e-9)


def test_range_embedding_equals_projecting_the_explicit_blocks() -> None:
    docs = [*_docs(700, seed=17), Document(""), Document("", ("category:style",)),
            Document("unseen words only qqqq")]
    space = fit_feature_space(docs[:500], min_df=2)
    weights = (1.0, 0.5, 0.25)
    with threadpool_limits(limits=1, user_api="blas"):
        embedding = fit_embedding(transform(space, docs[:500]), block_weights=weights,
                                  n_components=100, seed=0)
    prepared = prepare(space, docs)
    start, stop = 450, len(docs)
    blocks = prepared.blocks(start, stop)
    word, meta, vectors = embedding.embed_range(prepared, start, stop)
    assert abs(word - blocks.word).max() < 1e-12 and abs(meta - blocks.meta).max() < 1e-12
    assert np.allclose(vectors, embedding.embed(blocks), atol=1e-12)
    assert np.allclose(vectors, blocks.combined(weights) @ embedding.components.T, atol=1e-12)
    assert not vectors[-3].any()  # an empty document stays at the origin
