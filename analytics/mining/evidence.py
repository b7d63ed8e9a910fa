"""What a cluster shows people and prompts: its clearest statements, examples and noise verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analytics.mining.clarity import (
    Reason,
    choose_statements,
    clean_statement,
    coherence,
    meaningful_correction,
    noise_verdict,
)
from analytics.mining.config import MiningConfig
from analytics.mining.features import content_words
from analytics.mining.language import dominant_language
from analytics.mining.model import FailureRecord, PatternExample
from analytics.mining.text import display_text, normalise_text

SCAN = 200  # distinct reasons looked at per cluster (most central first)


@dataclass(frozen=True, slots=True)
class ClusterWords:
    """How many of a cluster's records use each known word (for the commonness of reasons)."""

    column: Mapping[str, int]  # word unigram -> column
    records_with_word: Mapping[int, float]  # column -> records of the cluster using it
    size: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """A cluster's statements, language, noise verdict and examples."""

    statements: tuple[tuple[str, str], ...]  # (language, cleaned statement)
    language: str
    noise: str
    representative: int  # index (into the pool) of the record whose reason represents it
    examples: tuple[PatternExample, ...]


def cluster_evidence(
    pool: Sequence[FailureRecord],
    members: np.ndarray,
    documents: np.ndarray,
    similarity: np.ndarray,
    words: ClusterWords,
    config: MiningConfig,
) -> Evidence:
    """Return the evidence of the cluster whose records (most central first) are ``members``.

    ``documents``: each pool record's distinct-document index (records with the same
    normalised reason share one), so a reason's weight is counted without re-reading text.
    """
    docs = documents[members]
    ids, counts = np.unique(docs, return_counts=True)
    weight_of = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    first_of: dict[int, int] = {}
    for i, doc in zip(members.tolist(), docs.tolist(), strict=True):
        if doc not in first_of:
            first_of[doc] = i
            if len(first_of) >= SCAN:
                break
    reasons = [
        Reason(
            text=pool[i].reason or "",
            weight=weight_of[doc],
            similarity=float(similarity[i]),
            known_share=_known_share(normalise_text(pool[i].reason, config.max_reason_chars),
                                     words),
        )
        for doc, i in first_of.items()
    ]
    language = dominant_language((clean_statement(r.text), r.weight) for r in reasons
                                 if r.text.strip())
    mean_similarity = float(similarity[members].mean()) if len(members) else 0.0
    noise = noise_verdict(reasons, coherence(reasons), mean_similarity,
                          min_substantive_share=config.min_substantive_share,
                          min_coherence=config.min_coherence,
                          min_similarity=config.min_similarity)
    statements = () if noise else choose_statements(reasons, language)
    chosen_text = statements[0][1] if statements else ""
    representative = next((i for r, i in zip(reasons, first_of.values(), strict=True)
                           if r.text == chosen_text), int(members[0]))
    examples = () if noise else _examples(pool, members, representative, config)
    cleaned = tuple((lang, clean_statement(text)) for lang, text in statements)
    return Evidence(cleaned, language, noise, representative, examples)


def _known_share(text: str, words: ClusterWords) -> tuple[float, ...]:
    shares = []
    for word in content_words(text):
        if any(c.isdigit() for c in word):
            continue  # ids, amounts and dates name instances; they are not typos
        column = words.column.get(word)
        count = words.records_with_word.get(column, 0.0) if column is not None else 0.0
        # A word only one record of the cluster uses is as good as unknown (a typo).
        shares.append(count / words.size if count > 1 else 0.0)
    return tuple(shares)


def _examples(pool: Sequence[FailureRecord], members: np.ndarray, representative: int,
              config: MiningConfig) -> tuple[PatternExample, ...]:
    """Return distinct-reason examples, the representative's reason first, teaching fixes first.

    Within one reason, a record whose correction teaches something is preferred.
    """
    scan = [representative, *(int(i) for i in members[:SCAN] if int(i) != representative)]
    teaching = [i for i in scan if meaningful_correction(pool[i].output_text,
                                                         pool[i].corrected_output)]
    taught = set(teaching)
    order = teaching + [i for i in scan if i not in taught]
    first: dict[str, int] = {}
    for i in order:
        first.setdefault(normalise_text(pool[i].reason, config.max_reason_chars), i)
    lead = normalise_text(pool[representative].reason, config.max_reason_chars)
    chosen_records = [first.pop(lead), *first.values()][: config.max_examples]
    limit = config.max_example_chars
    return tuple(
        PatternExample(
            input_text=display_text(pool[i].input_text, limit),
            output_text=display_text(pool[i].output_text, limit),
            # A fix that changes nothing (or is a bare "ok") must not become a worked example.
            corrected_output=display_text(pool[i].corrected_output, limit) if i in taught
            else None,
            reason=display_text(pool[i].reason or "", limit) or "",
        )
        for i in chosen_records
    )
