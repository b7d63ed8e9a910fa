"""The offline gate: recorded failures replayed through candidate and control, judged pairwise.

Before a machine-written candidate reaches live traffic (when an LLM is configured), up to K
recorded inputs that reviewers corrected are answered by the model twice — once with the
control's prompt, once with the candidate's — and the model judges which answer follows the
reviewer's correction, in both presentation orders: the candidate wins a case only if it is
preferred both times, loses only if the control is, and ties otherwise (which cancels the
judge's position bias). A candidate goes to the canary only if it wins more cases than it
loses; the one-sided sign-test p-value is reported with the counts. Pure apart from the
injected ``complete`` call (the rewriter's, with its retries and budget).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from improver.critique import Message
from improver.render_budget import DEFAULT_BUDGET, RenderBudget
from improver.templates import TemplateError, render_template

Complete = Callable[[Sequence[Message]], str]
_VERDICT = re.compile(r"\b(A|B|TIE)\b")
JUDGE_SYSTEM = ("You compare two answers to the same input against a reviewer's correction of "
                "an earlier answer. Reply with exactly one word: A, B or TIE.")


@dataclass(frozen=True, slots=True)
class GateCase:
    """One recorded input a reviewer corrected: what the agent got and what should have been."""

    input_text: str
    variables: Mapping[str, Any]
    reason: str
    corrected_output: str


@dataclass(frozen=True, slots=True)
class GateResult:
    """How a candidate did against control on the replayed cases."""

    wins: int
    losses: int
    ties: int
    skipped: int  # cases that could not be rendered or answered
    p_value: float  # one-sided sign test: P(wins >= observed | no difference)

    @property
    def passed(self) -> bool:
        """Return whether the candidate won more cases than it lost."""
        return self.wins > self.losses

    def summary(self) -> str:
        """Return the counts as one line for rationales and the CLI."""
        verdict = "passed" if self.passed else "failed"
        return (f"offline gate {verdict}: {self.wins} wins, {self.losses} losses, {self.ties} "
                f"ties over {self.wins + self.losses + self.ties} replayed corrections "
                f"(sign test p={self.p_value:.3g})")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored with the candidate."""
        return {"wins": self.wins, "losses": self.losses, "ties": self.ties,
                "skipped": self.skipped, "p_value": self.p_value, "passed": self.passed}


def sign_test_p(wins: int, losses: int) -> float:
    """Return P(X >= wins) for X ~ Binomial(wins + losses, 1/2) (1.0 with no decided case)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def answer_messages(prompt: str, case: GateCase) -> list[Message]:
    """Return the conversation that answers one recorded input with a rendered prompt."""
    return [{"role": "system", "content": prompt}, {"role": "user", "content": case.input_text}]


def judge_messages(case: GateCase, first: str, second: str) -> list[Message]:
    """Return the pairwise judgment of two answers (``first`` shown as A)."""
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": (
        f"<input>\n{case.input_text}\n</input>\n"
        f"<reviewer_note>\n{case.reason}\n</reviewer_note>\n"
        f"<corrected_answer>\n{case.corrected_output}\n</corrected_answer>\n"
        f"<answer_a>\n{first}\n</answer_a>\n<answer_b>\n{second}\n</answer_b>\n"
        "Which answer, A or B, better does what the reviewer asked for?")}]


def verdict(reply: str) -> str | None:
    """Return "A", "B" or "TIE" from a judge's reply (None when it names none)."""
    match = _VERDICT.search(reply.upper())
    return match.group(1) if match else None


def run_gate(control: str, candidate: str, cases: Sequence[GateCase], complete: Complete, *,
             budget: RenderBudget = DEFAULT_BUDGET) -> GateResult:
    """Return the candidate's wins, losses and ties against control on ``cases``.

    ``complete`` raises on a failed call (budget spent, provider down): that case and every
    later one count as skipped; only judged cases count, so a gate that could judge nothing
    passes nothing.
    """
    wins = losses = ties = skipped = 0
    for i, case in enumerate(cases):
        try:
            old = render_template(control, dict(case.variables), budget=budget)
            new = render_template(candidate, dict(case.variables), budget=budget)
        except TemplateError:
            skipped += 1
            continue
        try:
            a = complete(answer_messages(old, case))
            b = complete(answer_messages(new, case))
            forward = verdict(complete(judge_messages(case, a, b)))
            backward = verdict(complete(judge_messages(case, b, a)))
        except Exception:  # the provider's failure ends the gate; the rest is unjudged
            skipped += len(cases) - i
            break
        if forward == "B" and backward == "A":
            wins += 1
        elif forward == "A" and backward == "B":
            losses += 1
        else:
            ties += 1
    return GateResult(wins, losses, ties, skipped, sign_test_p(wins, losses))
