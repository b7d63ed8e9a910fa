"""From a messy corpus to candidates: what the shipped text says, read as a model would."""

from __future__ import annotations

import re
from functools import cache

import pytest

from analytics.mining import Pattern, mine_patterns
from analytics.mining.messy import generate_messy_corpus
from improver import BaseVersion, Candidate, propose_candidates, render_template
from improver.feedback import FEEDBACK_INTRO

NOW = 1_700_000_000.0
TEMPLATE = ("You are a support agent for ACME.\n"
            "Answer the customer's question helpfully.\n\n"
            "Question: {{ question }}\n\nAnswer:\n")
RECORDED = [{"question": "q", "locale": loc, "channel": "chat", "plan": "pro"}
            for loc in ("en", "de", "es")]
# What no shipped text may contain: noise, a fixed verb in front of a request, the
# placeholder of uncommented failures, a bare "ok" taught as the right answer.
NOISE = re.compile(r"\b(thx|thanks|weekly|sync|sprint|useless|n/a)\b", re.IGNORECASE)
POLARITY = re.compile(r"\bavoid\b:?\s+(please|use|always|state|give|reply|answer)\b",
                      re.IGNORECASE)
BARE_OK = re.compile(r"(→|Correct output:)\s*\"?ok\b", re.IGNORECASE)


@cache
def _candidates(seed: int) -> tuple[tuple[Pattern, ...], tuple[Candidate, ...]]:
    corpus = generate_messy_corpus(seed=seed, n_records=3_000, now=NOW)
    patterns = mine_patterns(corpus.records, now=NOW, executions_in_window=0).patterns
    candidates, _skipped = propose_candidates(BaseVersion("support", 1, TEMPLATE), patterns, k=7,
                                              recorded_variables=RECORDED)
    return patterns, candidates


def _texts(candidate: Candidate) -> list[str]:
    return [render_template(candidate.template, v) for v in RECORDED]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_shipped_text_carries_noise_a_polarity_error_or_the_failure_placeholder(
        seed: int) -> None:
    _patterns, candidates = _candidates(seed)
    assert {"additive", "few_shot", "contextual"} <= {c.strategy for c in candidates}
    for candidate in candidates:
        for text in _texts(candidate):
            assert not NOISE.search(text), (candidate.strategy, NOISE.search(text))
            assert not POLARITY.search(text), (candidate.strategy, POLARITY.search(text))
            assert "unsuccessful execution" not in text.lower()
            assert not BARE_OK.search(text), candidate.strategy


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rules_are_reviewer_feedback_in_the_prompts_language(seed: int) -> None:
    _patterns, candidates = _candidates(seed)
    additive = next(c for c in candidates if c.strategy == "additive")
    section = additive.template.split(FEEDBACK_INTRO, 1)[1].split("\n\n", 1)[0]
    items = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(items) == 3
    for item in items:
        assert not item.startswith("- Avoid")
        assert re.match(r"- [A-Z]", item)  # a sentence, capitalised
        statement = item[2:].split(" Example:", 1)[0]
        assert statement.endswith(".")
        assert not re.search(r"[äöüßñ¿¡]|\b(el|der|die|das|und|que)\b", statement)  # English
    assert any("ISO" in item for item in items)
    assert any("legal" in item for item in items)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_contextual_shows_the_language_feedback_only_for_the_locales_it_concerns(
        seed: int) -> None:
    patterns, candidates = _candidates(seed)
    language = next(p for p in patterns if p.context is not None and
                    p.context.variable == "locale")
    contextual = next(c for c in candidates if c.strategy == "contextual")
    assert language.pattern_id in contextual.addressed_pattern_ids
    english, german, spanish = _texts(contextual)
    statement = next(text for lang, text in language.statements if lang == "en")
    assert statement in german and statement in spanish and statement not in english
    assert "locale" in contextual.rationale
