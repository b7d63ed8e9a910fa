"""Awkward input gets a defined result, never a crash."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.mining import FailureRecord, MiningConfig, MiningResult, Pattern, mine_patterns
from analytics.mining.text import TRUNCATION_MARKER

NOW = 1_700_000_000.0


def _record(i: int, reason: str | None, **fields: Any) -> FailureRecord:
    base: dict[str, Any] = {"record_id": f"r{i}", "kind": "correction",
                            "occurred_at": NOW - 60 * i, "version": 1, "reason": reason}
    base.update(fields)
    return FailureRecord(**base)


def _mine(records: list[FailureRecord], **kwargs: Any) -> MiningResult:
    return mine_patterns(records, now=NOW, executions_in_window=10, **kwargs)


def test_empty_corpus_gives_no_patterns() -> None:
    result = _mine([], window_executions=[10] * 7)
    assert result.patterns == () and result.resolved == () and result.anomalies == ()
    assert (result.records_used, result.records_ignored, result.unclustered) == (0, 0, 0)
    assert len(result.windows) == 7


def test_a_single_correction_is_no_recurring_pattern_unless_configured() -> None:
    one = [_record(0, "the date is wrong")]
    result = _mine(one)
    assert result.patterns == () and result.unclustered == 1
    single = _mine(one, config=MiningConfig(min_cluster_size=1))
    assert [p.size for p in single.patterns] == [1]
    assert single.patterns[0].label == "date wrong"


def test_identical_reasons_form_one_pattern() -> None:
    result = _mine([_record(i, "The date is wrong") for i in range(50)])
    assert [p.size for p in result.patterns] == [50]
    assert result.patterns[0].label == "date wrong"
    assert len(result.patterns[0].examples) == 1  # examples have distinct reasons


def test_empty_reasons_group_by_category_and_empty_records_stay_unclustered() -> None:
    records = ([_record(i, "", category="Tone") for i in range(5)]
               + [_record(10 + i, None, category="format") for i in range(4)]
               + [_record(20 + i, "   ") for i in range(3)])
    result = _mine(records)
    assert sorted((p.size, p.label) for p in result.patterns) == [(4, "format"), (5, "tone")]
    assert result.unclustered == 3


def test_unicode_and_emoji_are_kept_and_emoji_only_reasons_stay_unclustered() -> None:
    records = ([_record(i, f"answer too long 😡 #{i}") for i in range(5)]
               + [_record(10 + i, f"wrong currency € symbol 💶 ticket {i}") for i in range(5)]
               + [_record(20 + i, "😡🔥😡") for i in range(4)])
    result = _mine(records)
    assert sorted(p.size for p in result.patterns) == [5, 5]
    assert {"😡" in p.representative_reason for p in result.patterns} == {True, False}
    assert result.unclustered == 4


def test_a_100_kb_reason_is_truncated_with_a_marker() -> None:
    huge = "the date format is wrong " * 4_100  # ~100 kB
    config = MiningConfig(max_example_chars=500)
    result = _mine([_record(i, huge + str(i), input_text=huge) for i in range(4)], config=config)
    [pattern] = result.patterns
    marker_prefix = TRUNCATION_MARKER.split("{")[0]
    assert pattern.representative_reason.startswith(huge[:500])
    assert marker_prefix in pattern.representative_reason
    assert len(pattern.representative_reason) < 600
    example = pattern.examples[0]
    assert example.input_text is not None and len(example.input_text) < 600
    assert len(json.dumps(pattern.to_dict())) < 10_000  # the log stays small


def test_non_english_complaints_cluster_by_language_and_meaning() -> None:
    groups = [
        ["la fecha está en formato incorrecto", "formato de fecha incorrecto, usar ISO",
         "la fecha debe estar en formato ISO"],
        ["Die Antwort ist viel zu lang", "Antwort zu lang, bitte kürzer",
         "viel zu lange Antwort"],
        ["日期格式错误", "日期格式不对，请使用ISO", "请使用ISO日期格式"],
    ]
    records = [_record(10 * g + i, text) for g, texts in enumerate(groups)
               for i, text in enumerate(texts)]
    result = _mine(records)
    members = {}
    for g, texts in enumerate(groups):
        members[g] = {result.pattern_of.get(f"r{10 * g + i}") for i in range(len(texts))}
    assert all(len(ids) == 1 and None not in ids for ids in members.values())
    assert len(set().union(*members.values())) == 3
    labels = {p.label for p in result.patterns}
    assert any("fecha" in label for label in labels)


def test_bad_times_and_severities_are_ignored_or_defaulted() -> None:
    records = ([_record(i, "date wrong", occurred_at=math.nan) for i in range(3)]
               + [_record(5 + i, "date wrong", occurred_at=NOW - 1e8) for i in range(2)]
               + [_record(10 + i, "date wrong", severity=math.nan) for i in range(2)]
               + [_record(12 + i, "date wrong", severity=-4.0) for i in range(2)]
               + [_record(14, "date wrong", severity=math.inf)])
    result = _mine(records)
    assert (result.records_used, result.records_ignored) == (5, 5)
    [pattern] = result.patterns
    # NaN counts as the default 1, negatives as 0, infinity is capped to stay JSON-safe.
    assert pattern.severity_score == pytest.approx(2.0 + 1e9)
    assert math.isfinite(pattern.severity_score)


def test_lone_surrogates_and_control_characters_survive_json() -> None:
    records = [_record(i, "date \ud800 wrong\x00 format") for i in range(3)]
    [pattern] = _mine(records).patterns
    text = json.dumps(pattern.to_dict(), ensure_ascii=False)
    text.encode("utf-8")  # would raise on a lone surrogate
    assert Pattern.from_dict(json.loads(text)).label == pattern.label


def test_misconfiguration_and_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="distance_threshold"):
        MiningConfig(distance_threshold=0.0)
    with pytest.raises(ValueError, match="n_windows"):
        MiningConfig(n_windows=0)
    with pytest.raises(ValueError, match="now"):
        mine_patterns([], now=math.nan, executions_in_window=1)
    with pytest.raises(ValueError, match="window_executions"):
        mine_patterns([], now=NOW, executions_in_window=1, window_executions=[1, 2])


def test_share_is_over_records_so_a_wrong_execution_count_cannot_break_it() -> None:
    records = [_record(i, "the date is wrong") for i in range(3)]
    for executions in (0, 1, 10_000):
        [pattern] = mine_patterns(records, now=NOW, executions_in_window=executions).patterns
        assert pattern.share == 1.0 and pattern.window_records == 3


_text = st.one_of(st.none(), st.text(max_size=80),
                  st.sampled_from(["date wrong", "too long", "", "😀", "日期格式错误"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_text, st.one_of(st.none(), st.text(max_size=10)),
                          st.floats(allow_nan=True, allow_infinity=True),
                          st.sampled_from(["correction", "failure"])), max_size=25))
def test_any_text_gives_a_consistent_result(rows: list[tuple]) -> None:
    records = [_record(i, reason, category=category, severity=severity, kind=kind)
               for i, (reason, category, severity, kind) in enumerate(rows)]
    result = _mine(records, window_executions=[10] * 7)
    assert result.records_used + result.records_ignored == len(records)
    clustered = sum(p.size for p in result.patterns)
    assert clustered + result.unclustered + result.counted_failures == result.records_used
    assert len(result.pattern_of) == clustered
    for p in result.patterns:
        assert 0.0 <= p.share <= 1.0
        assert Pattern.from_dict(json.loads(json.dumps(p.to_dict()))) == p
        assert math.isfinite(p.severity_score) and math.isfinite(p.trend_z)
