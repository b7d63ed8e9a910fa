"""Clustering groups paraphrases of one complaint and separates different complaints.

Truth comes from ``analytics.mining.synthetic``: 8 failure modes, each written in 3
paraphrase families decorated with filler words, plus 10% unrelated one-off complaints.
Noise records count as singletons on both sides of the adjusted Rand index, so putting
one-offs into a real pattern (or lumping them together) costs score.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from analytics.mining import FailureRecord, MiningConfig, MiningResult, mine_patterns
from analytics.mining.synthetic import NOISE_LABEL, SyntheticCorpus, generate_corpus

NOW = 1_700_000_000.0
DAY = 86_400.0


def _ari(corpus: SyntheticCorpus, result: MiningResult) -> float:
    truth = np.array(corpus.truth)
    ids = sorted(set(result.pattern_of.values()))
    index = {pid: i for i, pid in enumerate(ids)}
    found = np.array([index.get(result.pattern_of.get(r.record_id, ""), -1)
                      for r in corpus.records])
    singletons = np.arange(len(truth))
    truth = np.where(truth == NOISE_LABEL, 10_000 + singletons, truth)
    found = np.where(found < 0, 10_000_000 + singletons, found)
    return float(adjusted_rand_score(truth, found))


def _pattern_for_mode(corpus: SyntheticCorpus, result: MiningResult, mode: int) -> str:
    """Return the id of the pattern holding most of the mode's records."""
    votes: dict[str, int] = {}
    for record, label in zip(corpus.records, corpus.truth, strict=True):
        pid = result.pattern_of.get(record.record_id)
        if label == mode and pid is not None:
            votes[pid] = votes.get(pid, 0) + 1
    return max(votes, key=votes.__getitem__)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clusters_recover_known_failure_modes_with_ari_at_least_0_8(seed: int) -> None:
    corpus = generate_corpus(seed=seed, n_records=800, now=NOW)
    assert len(corpus.modes) >= 6
    assert all(len(m.families) >= 3 for m in corpus.modes)
    assert sum(t == NOISE_LABEL for t in corpus.truth) == 80
    result = mine_patterns(corpus.records, now=NOW, executions_in_window=1_000)
    assert _ari(corpus, result) >= 0.8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_mode_label_contains_one_of_its_key_terms(seed: int) -> None:
    corpus = generate_corpus(seed=seed, n_records=800, now=NOW)
    result = mine_patterns(corpus.records, now=NOW, executions_in_window=1_000)
    labels = {p.pattern_id: p.label for p in result.patterns}
    for index, mode in enumerate(corpus.modes):
        label = labels[_pattern_for_mode(corpus, result, index)]
        words = label.split()
        assert 2 <= len(words) <= 4, label
        assert set(words) & set(mode.key_terms), (mode.name, label)


def test_large_corpus_is_fitted_on_a_sample_and_the_rest_assigned_to_nearest_cluster() -> None:
    corpus = generate_corpus(seed=4, n_records=4_000, now=NOW)
    config = MiningConfig(max_fit_sample=800)
    result = mine_patterns(corpus.records, now=NOW, executions_in_window=1_000, config=config)
    assert _ari(corpus, result) >= 0.8
    # Most records joined a pattern although only a fifth of them were clustered directly.
    assert len(result.pattern_of) >= 0.85 * len(corpus.records)


def test_ten_corrections_of_three_complaints_give_three_patterns() -> None:
    complaints = [
        ("formatting", "The date should be in ISO format (YYYY-MM-DD)", 0),
        ("formatting", "wrong date format: wrote 03/04/2024 instead of ISO", 0),
        ("formatting", "Dates must use the ISO format, e.g. 2024-03-04", 0),
        ("formatting", "date format again not ISO, please fix", 0),
        ("language", "Answered in English but the customer wrote Spanish", 1),
        ("language", "reply must be in the customer's language, not English", 1),
        ("language", "wrong language: German ticket got an English answer", 1),
        ("accuracy", "invented an order number that does not exist", 2),
        ("accuracy", "hallucinated order id, there is no such order", 2),
        ("accuracy", "the order number it quoted was invented", 2),
    ]
    records = [
        FailureRecord(record_id=f"c{i}", kind="correction", occurred_at=NOW - 3_600 * i,
                      version=3, reason=reason, category=category)
        for i, (category, reason, _) in enumerate(complaints)
    ]
    result = mine_patterns(records, now=NOW, executions_in_window=200)
    assert len(result.patterns) == 3
    groups = {}
    for (_, _, truth), record in zip(complaints, records, strict=True):
        groups.setdefault(truth, set()).add(result.pattern_of[record.record_id])
    assert all(len(ids) == 1 for ids in groups.values())
    assert len({next(iter(ids)) for ids in groups.values()}) == 3
    by_label = {p.label: p for p in result.patterns}
    assert any("date" in label.split() for label in by_label)
    assert any("order" in label.split() for label in by_label)
    assert [p.size for p in result.patterns] == [4, 3, 3]  # ranked by recent severity, size


def test_result_does_not_depend_on_the_order_records_arrive_in() -> None:
    corpus = generate_corpus(seed=5, n_records=500, now=NOW)
    shuffled = list(corpus.records)
    random.Random(0).shuffle(shuffled)
    first = mine_patterns(corpus.records, now=NOW, executions_in_window=1_000)
    second = mine_patterns(shuffled, now=NOW, executions_in_window=1_000)
    assert [p.to_dict() for p in first.patterns] == [p.to_dict() for p in second.patterns]


def test_pattern_reports_its_evidence() -> None:
    corpus = generate_corpus(seed=6, n_records=600, now=NOW, versions=(4, 5))
    result = mine_patterns(corpus.records, now=NOW, executions_in_window=400)
    top = result.patterns[0]
    members = [r for r in corpus.records if result.pattern_of.get(r.record_id) == top.pattern_id]
    assert top.size == len(members) == sum(top.trend_counts)
    assert len(top.trend_counts) == MiningConfig().n_windows
    assert top.first_seen == min(r.occurred_at for r in members)
    assert top.last_seen == max(r.occurred_at for r in members)
    assert set(top.versions) == {r.version for r in members}
    assert top.severity_score == pytest.approx(sum(r.severity for r in members))
    recent = [r for r in members if r.occurred_at > NOW - DAY]
    in_window = [r for r in corpus.records if r.occurred_at > NOW - DAY]
    assert result.share_window is not None and result.share_window.is_latest
    assert result.share_window.records == len(in_window)
    assert top.window_records == len(recent)
    assert top.share == pytest.approx(len(recent) / len(in_window))
    assert top.recent_severity_score == pytest.approx(sum(r.severity for r in recent))
    assert 1 <= len(top.examples) <= 3
    assert len({e.reason for e in top.examples}) == len(top.examples)
    assert top.representative_reason in {r.reason for r in members}
    assert top.examples[0].reason == top.representative_reason
    scores = [(p.recent_severity_score, p.size) for p in result.patterns]
    assert scores == sorted(scores, reverse=True)


def test_medoid_is_the_member_most_similar_to_all_others() -> None:
    # Three phrasings of one complaint; the middle one shares words with both others.
    reasons = ["answer is too long", "answer is too long and verbose",
               "too long and verbose", "answer is too long and verbose"]
    records = [FailureRecord(record_id=f"m{i}", kind="correction", occurred_at=NOW - i,
                             version=1, reason=r) for i, r in enumerate(reasons)]
    result = mine_patterns(records, now=NOW, executions_in_window=10,
                           config=dataclasses.replace(MiningConfig(), min_cluster_size=2))
    assert len(result.patterns) == 1
    assert result.patterns[0].representative_reason == "answer is too long and verbose"
