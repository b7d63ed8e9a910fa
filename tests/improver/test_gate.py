"""The offline gate: pairwise judgments in both orders, a sign test, nothing passes unjudged."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from scipy.stats import binom

from improver.critique import Message
from improver.gate import JUDGE_SYSTEM, GateCase, run_gate, sign_test_p

CASES = [GateCase(f"question {i}", {"q": f"q{i}"}, "dates must be in ISO format",
                  f"2026-0{i % 9 + 1}-01") for i in range(10)]
CONTROL = "Answer {{ q }}."
CANDIDATE = "Answer {{ q }}. Write every date in ISO format."


def _model(judge: str) -> tuple[list[Sequence[Message]], object]:
    """Return (calls, complete): answers mark the ISO prompt; ``judge`` picks the verdict."""
    calls: list[Sequence[Message]] = []

    def complete(messages: Sequence[Message]) -> str:
        calls.append(messages)
        if messages[0]["content"] != JUDGE_SYSTEM:
            return "iso answer" if "ISO" in messages[0]["content"] else "plain answer"
        user = messages[1]["content"]
        a = user.split("<answer_a>\n", 1)[1].split("\n</answer_a>", 1)[0]
        if judge == "first":  # a judge with a position bias: always the first shown
            return "A"
        if judge == "follows":
            return "A" if a == "iso answer" else "B"
        return "TIE"
    return calls, complete


def test_the_sign_test_is_the_binomial_upper_tail() -> None:
    for wins, losses in [(0, 0), (3, 0), (7, 3), (10, 10), (2, 9)]:
        expected = 1.0 if wins + losses == 0 else binom.sf(wins - 1, wins + losses, 0.5)
        assert sign_test_p(wins, losses) == pytest.approx(expected, abs=1e-12)


def test_a_candidate_the_judge_prefers_in_both_orders_wins_every_case() -> None:
    calls, complete = _model("follows")
    result = run_gate(CONTROL, CANDIDATE, CASES, complete)  # type: ignore[arg-type]
    assert (result.wins, result.losses, result.ties) == (10, 0, 0)
    assert result.passed and result.p_value == pytest.approx(0.5**10)
    assert len(calls) == 4 * len(CASES)  # two answers and two judgments per case


def test_a_judge_biased_to_the_first_answer_cancels_out_into_ties() -> None:
    _, complete = _model("first")
    result = run_gate(CONTROL, CANDIDATE, CASES, complete)  # type: ignore[arg-type]
    assert (result.wins, result.losses, result.ties) == (0, 0, 10)
    assert not result.passed


def test_a_candidate_no_better_than_control_does_not_pass() -> None:
    _, complete = _model("follows")
    result = run_gate(CANDIDATE, CONTROL, CASES, complete)  # type: ignore[arg-type]
    assert result.losses == 10 and not result.passed


def test_a_provider_failure_leaves_the_rest_unjudged_and_only_judged_cases_count() -> None:
    _, good = _model("follows")
    calls = 0

    def flaky(messages: Sequence[Message]) -> str:
        nonlocal calls
        calls += 1
        if calls > 4:  # the first case is judged, then the budget is gone
            raise RuntimeError("budget exhausted")
        return good(messages)  # type: ignore[operator, no-any-return]

    result = run_gate(CONTROL, CANDIDATE, CASES, flaky)
    assert (result.wins, result.skipped) == (1, 9)
    assert result.passed  # one clear win, no loss: the counts say how little was judged
    assert "1 wins, 0 losses" in result.summary()


def test_cases_that_do_not_render_are_skipped_not_judged() -> None:
    _, complete = _model("follows")
    result = run_gate("Answer {{ missing }}.", CANDIDATE, CASES[:3], complete)  # type: ignore[arg-type]
    assert result.skipped == 3 and not result.passed
