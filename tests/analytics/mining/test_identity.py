"""A pattern keeps its id across runs; new complaints get new ids; gone ones are resolved."""

from __future__ import annotations

import json

import pytest

from analytics.mining import FailureRecord, MiningResult, Pattern, mine_patterns
from analytics.mining.identity import (
    centroid_similarity,
    match_to_previous,
    new_pattern_id,
    sparse_centroid,
)
from analytics.mining.synthetic import (
    DEFAULT_MODES,
    FailureMode,
    SyntheticCorpus,
    generate_corpus,
)

NOW = 1_700_000_000.0
DAY = 86_400.0

SIGNATURE = FailureMode(
    name="missing_signature",
    key_terms=("signature",),
    category="formatting",
    families=(
        ("the email signature is missing at the end",
         "no signature block at the bottom of the reply"),
        ("forgot to add our company signature",
         "company signature missing again"),
        ("signature left out, every reply needs it",
         "always end with the support signature"),
    ),
)


def _by_mode(corpus: SyntheticCorpus, result: MiningResult) -> dict[str, str]:
    """Return, per mode name, the pattern id holding most of the mode's records."""
    votes: dict[str, dict[str, int]] = {}
    for record, label in zip(corpus.records, corpus.truth, strict=True):
        pid = result.pattern_of.get(record.record_id)
        if label >= 0 and pid is not None:
            mode_votes = votes.setdefault(corpus.modes[label].name, {})
            mode_votes[pid] = mode_votes.get(pid, 0) + 1
    return {mode: max(v, key=v.__getitem__) for mode, v in votes.items()}


def _assert_known_patterns_kept_their_ids(first: MiningResult, second: MiningResult) -> None:
    """Most records of each sizeable first-run pattern sit under the same id in the second."""
    for pattern in first.patterns:
        if pattern.size < 20:
            continue  # a handful of one-offs sharing filler words is no lasting complaint
        members = [rid for rid, pid in first.pattern_of.items() if pid == pattern.pattern_id]
        now_under = [second.pattern_of.get(rid) for rid in members]
        assert max(set(now_under), key=now_under.count) == pattern.pattern_id, pattern.label


def _replayed(patterns: tuple[Pattern, ...]) -> list[Pattern]:
    """Return the patterns as the service reads them back from the event log."""
    return [Pattern.from_dict(json.loads(json.dumps(p.to_dict()))) for p in patterns]


def test_pattern_keeps_its_id_when_more_of_the_same_complaints_arrive() -> None:
    first_corpus = generate_corpus(seed=21, n_records=500, now=NOW)
    first = mine_patterns(first_corpus.records, now=NOW, executions_in_window=500)
    more = generate_corpus(seed=22, n_records=500, now=NOW + DAY, id_prefix="s")
    records = first_corpus.records + more.records
    second = mine_patterns(records, now=NOW + DAY, executions_in_window=500,
                           previous=_replayed(first.patterns))
    _assert_known_patterns_kept_their_ids(first, second)
    # New records of each known complaint land in the pattern that complaint had.
    assert _by_mode(more, second) == _by_mode(first_corpus, second)
    statuses = {p.pattern_id: p.status for p in second.patterns}
    assert all(statuses[pid] != "new" for pid in _by_mode(more, second).values())
    first_seen = {p.pattern_id: p.first_seen for p in first.patterns}
    for p in second.patterns:
        if p.pattern_id in first_seen:
            assert p.first_seen <= first_seen[p.pattern_id]
            if p.size >= 20:  # its oldest records aged out of the windows; the date stays
                assert p.first_seen == first_seen[p.pattern_id] < NOW + DAY - 7 * DAY


def test_new_complaint_gets_a_new_id_and_status_new() -> None:
    base = generate_corpus(seed=23, n_records=500, now=NOW)
    first = mine_patterns(base.records, now=NOW, executions_in_window=500)
    novel = generate_corpus(seed=24, n_records=40, now=NOW + DAY, modes=(SIGNATURE,),
                            noise_fraction=0.0, id_prefix="n")
    second = mine_patterns(base.records + novel.records, now=NOW + DAY,
                           executions_in_window=500, previous=_replayed(first.patterns))
    novel_id = _by_mode(novel, second)["missing_signature"]
    assert novel_id not in {p.pattern_id for p in first.patterns}
    novel_pattern = next(p for p in second.patterns if p.pattern_id == novel_id)
    assert novel_pattern.status == "new"
    assert "signature" in novel_pattern.label.split()
    _assert_known_patterns_kept_their_ids(first, second)


def test_complaint_that_stops_is_reported_resolved_and_regains_its_id_when_it_returns() -> None:
    modes = DEFAULT_MODES[:4]
    both = generate_corpus(seed=25, n_records=400, now=NOW, modes=modes, noise_fraction=0.0)
    first = mine_patterns(both.records, now=NOW, executions_in_window=500)
    gone = _by_mode(both, first)[modes[0].name]
    without = [r for r, t in zip(both.records, both.truth, strict=True) if t != 0]
    second = mine_patterns(without, now=NOW, executions_in_window=500,
                           previous=_replayed(first.patterns))
    assert [p.pattern_id for p in second.resolved] == [gone]
    resolved = second.resolved[0]
    assert resolved.status == "resolved"
    assert resolved.size == 0 and resolved.share == 0.0 and sum(resolved.trend_counts) == 0
    assert gone not in {p.pattern_id for p in second.patterns}

    snapshot = _replayed(second.patterns + second.resolved)
    third = mine_patterns(both.records, now=NOW, executions_in_window=500, previous=snapshot)
    assert _by_mode(both, third)[modes[0].name] == gone
    assert third.resolved == ()  # already-resolved patterns are not reported again


def test_replaying_the_same_inputs_gives_identical_ids_and_patterns() -> None:
    corpus = generate_corpus(seed=26, n_records=500, now=NOW)
    runs = [mine_patterns(corpus.records, now=NOW, executions_in_window=500) for _ in range(2)]
    assert [p.to_dict() for p in runs[0].patterns] == [p.to_dict() for p in runs[1].patterns]
    assert len({p.pattern_id for p in runs[0].patterns}) == len(runs[0].patterns)


def test_centroid_is_json_safe_short_and_unit_length() -> None:
    corpus = generate_corpus(seed=27, n_records=500, now=NOW)
    result = mine_patterns(corpus.records, now=NOW, executions_in_window=500)
    for p in result.patterns:
        assert 0 < len(p.centroid) <= 50
        assert sum(w * w for _, w in p.centroid) == pytest.approx(1.0, abs=1e-4)
        weights = [w for _, w in p.centroid]
        assert weights == sorted(weights, reverse=True)
        assert Pattern.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_similarity_of_sparse_centroids_is_their_cosine() -> None:
    a = sparse_centroid({"date": 3.0, "format": 4.0}, top=50)
    b = sparse_centroid({"date": 1.0, "iso": 1.0}, top=50)
    assert a == (("format", 0.8), ("date", 0.6))
    assert centroid_similarity(a, a) == pytest.approx(1.0)
    assert centroid_similarity(a, b) == pytest.approx(0.6 / 2**0.5)
    assert centroid_similarity(a, ()) == 0.0


def test_when_a_pattern_splits_the_closer_half_keeps_the_id() -> None:
    old = _pattern("pat_old", {"refund": 1.0, "policy": 1.0, "window": 1.0})
    halves = [sparse_centroid({"refund": 1.0, "policy": 0.2, "window": 0.1}, top=50),
              sparse_centroid({"refund": 1.0, "policy": 1.0, "window": 0.8}, top=50)]
    assert match_to_previous(halves, [old], min_similarity=0.5) == [None, 0]


def test_dissimilar_clusters_do_not_inherit_an_id() -> None:
    old = _pattern("pat_old", {"refund": 1.0, "policy": 1.0})
    current = [sparse_centroid({"timeout": 1.0, "tool": 1.0, "refund": 0.1}, top=50)]
    assert match_to_previous(current, [old], min_similarity=0.5) == [None]


def test_new_ids_are_content_derived_and_avoid_taken_ones() -> None:
    centroid = sparse_centroid({"date": 2.0, "format": 1.0, "iso": 1.5}, top=50)
    reordered = sparse_centroid({"date": 2.0, "format": 1.5, "iso": 1.0}, top=50)
    first = new_pattern_id(centroid, taken=set())
    assert first.startswith("pat_") and first == new_pattern_id(reordered, taken=set())
    second = new_pattern_id(centroid, taken={first})
    assert second != first and second.startswith(first)


def _pattern(pid: str, weights: dict[str, float]) -> Pattern:
    return Pattern(pattern_id=pid, label="", terms=(), representative_reason="", size=1,
                   share=0.0, severity_score=1.0, trend_counts=(1,), trend_slope=0.0,
                   trend_z=0.0, status="stable", first_seen=0.0, last_seen=0.0, versions=(1,),
                   categories=(), centroid=sparse_centroid(weights, top=50))


def test_a_failure_record_is_mined_like_a_correction() -> None:
    records = [FailureRecord(record_id=f"f{i}", kind="failure", occurred_at=NOW - 60 * i,
                             version=2, reason=f"Read timeout after {10 + i}s calling crm",
                             error_type="TimeoutError") for i in range(5)]
    result = mine_patterns(records, now=NOW, executions_in_window=50)
    assert len(result.patterns) == 1
    assert result.patterns[0].error_types == ("timeouterror",)
    # Every term is equally distinctive here; the one the error type names leads the label.
    assert result.patterns[0].label.split()[:2] == ["read", "timeout"]
