"""The simulated world: tasks, hidden failure modes, and what a prompt's text changes.

Pure and seeded: given a prompt text and an input, ``outcome`` says whether the simulated
LLM call succeeded, how long it took and what it cost. A failure mode hurts the inputs that
trigger it unless the prompt carries guidance addressing it (one of its ``fix_terms``);
some edits are harmful (``HARM_MARKERS``, and a seeded share of all texts), so rollback has
something to catch.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

SIMULATION_TAG = "[simulation]"


@dataclass(frozen=True)
class FailureMode:
    """A hidden way the agent fails, who triggers it, and what fixes it."""

    name: str
    category: str
    trigger_share: float  # share of inputs that can hit this mode
    fail_without_guidance: float
    fail_with_guidance: float
    fix_terms: tuple[str, ...]  # any of these in the prompt (case-insensitive) is guidance
    reasons: tuple[str, ...]  # how correctors describe it, in varied paraphrases
    topic_words: tuple[str, ...]  # words that appear in triggering inputs


MODES: tuple[FailureMode, ...] = (
    FailureMode(
        "date_format", "format", 0.22, 0.55, 0.05, ("iso", "yyyy-mm-dd"),
        ("the date is not in ISO format", "dates must be written in ISO 8601 format",
         "wrong date format, expected ISO YYYY-MM-DD", "please give the date in ISO format",
         "date format is wrong: use ISO"),
        ("deadline", "date", "when", "schedule")),
    FailureMode(
        "missing_citation", "citation", 0.22, 0.55, 0.05, ("citation", "cite"),
        ("the answer is missing a citation of the policy", "no citation to the policy document",
         "cite the policy section you rely on", "missing citation: which policy says so?",
         "answers about policy need a citation"),
        ("policy", "refund", "warranty", "allowed")),
    FailureMode(
        "complaint_tone", "tone", 0.18, 0.6, 0.06, ("apolog", "empath"),
        ("tone too curt for an upset customer; apologise first",
         "the reply should apologise and show empathy for the complaint",
         "no apology to an angry customer", "cold tone on a complaint, needs an apology",
         "be empathetic and apologise when the customer complains"),
        ("angry", "complaint", "unacceptable", "disappointed")),
    FailureMode(
        "too_long", "length", 0.2, 0.5, 0.05, ("concise", "too long"),
        ("the answer is too long for a simple question", "far too long; keep it concise",
         "reply is too long, the customer wanted one line", "too long and rambling, be concise",
         "answer too long for a yes/no question"),
        ("quick", "simple", "yes or no", "short")),
)

# Text an admin might add that hurts every answer (the demo's hand-deployed bad version).
HARM_MARKERS: dict[str, float] = {"answer in one word": 0.30, "never ask questions": 0.12}
BASE_FAILURE = 0.05
NOISE_WORDS = ("honestly", "again", "as usual", "FYI", "btw", "imo", "(ticket reviewed)")


@dataclass(frozen=True)
class Task:
    """One simulated request: its text, variables and which modes it triggers."""

    task_id: int
    subject: str
    question: str
    category: str
    modes: tuple[str, ...]

    @property
    def variables(self) -> dict[str, str]:
        """Return the variables an agent renders the prompt with."""
        return {"question": self.question, "category": self.category}


@dataclass(frozen=True)
class Outcome:
    """What the simulated LLM call did."""

    success: bool
    failed_mode: str | None
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    output_text: str


class World:
    """A seeded population of tasks and the rules that decide their outcomes."""

    def __init__(self, seed: int = 0, *, harmful_share: float = 0.15,
                 subjects: int = 5_000) -> None:
        self.seed = seed
        self.harmful_share = harmful_share
        self.subjects = subjects
        self._rng = random.Random(seed)
        self._harm_cache: dict[str, float] = {}

    def next_task(self, task_id: int) -> Task:
        """Return a new task; which modes it triggers is drawn from the seeded generator."""
        rng = self._rng
        modes = tuple(m.name for m in MODES if rng.random() < m.trigger_share)
        words = [rng.choice(m.topic_words) for m in MODES if m.name in modes]
        category = next((m.category for m in MODES if m.name in modes), "general")
        topic = " ".join(words) or rng.choice(("account", "login", "invoice", "shipping"))
        question = f"customer question #{task_id} about {topic}"
        return Task(task_id, f"user-{rng.randrange(self.subjects)}", question, category, modes)

    @staticmethod
    def addressed(prompt_text: str) -> frozenset[str]:
        """Return the modes a (rendered) prompt carries guidance for."""
        lower = prompt_text.lower()
        return frozenset(m.name for m in MODES if any(t in lower for t in m.fix_terms))

    def harm(self, template: str) -> float:
        """Return the success penalty of a prompt version (by its template), cached."""
        penalty = self._harm_cache.get(template)
        if penalty is None:
            lower = template.lower()
            penalty = sum(p for marker, p in HARM_MARKERS.items() if marker in lower)
            # A seeded share of machine edits is harmful in a way no keyword reveals: the
            # canary, not the text, has to catch it. Versions without a learned section
            # (the base, hand-written ones) carry only the visible markers.
            if "## " in template:
                digest = hashlib.sha256(f"{self.seed}:{template}".encode()).digest()
                penalty += 0.15 if digest[0] / 256 < self.harmful_share else 0.0
            self._harm_cache[template] = penalty
        return penalty

    def is_harmful(self, template: str) -> bool:
        """Return whether a version carries a harm penalty (the benchmark's bookkeeping)."""
        return self.harm(template) > 0

    def outcome(self, rendered: str, task: Task, rng: random.Random,
                template: str | None = None) -> Outcome:
        """Return the outcome of ``task`` with this rendered prompt of version ``template``."""
        addressed, penalty = self.addressed(rendered), self.harm(template or rendered)
        failed_mode = None
        for mode in MODES:
            if mode.name in task.modes:
                guided = mode.name in addressed
                p = mode.fail_with_guidance if guided else mode.fail_without_guidance
                if rng.random() < p:
                    failed_mode = mode.name
                    break
        success = failed_mode is None and rng.random() >= BASE_FAILURE + penalty
        # Longer prompts cost more and take longer: guidance is not free.
        # The agent sends context with every call (history, retrieved documents), so the
        # prompt is a part of the input, as in real deployments.
        input_tokens = len(rendered) // 4 + 600
        output_tokens = int(rng.lognormvariate(4.5, 0.4))
        latency = rng.lognormvariate(math.log(400 + 0.6 * input_tokens + 8 * output_tokens), 0.25)
        cost = input_tokens * 0.15e-6 + output_tokens * 0.6e-6
        output = f"{SIMULATION_TAG} answer to {task.question}"
        return Outcome(success, failed_mode, latency, input_tokens, output_tokens, cost, output)

    def oracle_text(self, base: str) -> str:
        """Return the base prompt plus guidance for every hidden mode (the benchmark's ceiling)."""
        rules = "\n".join(f"- {m.reasons[0]} ({' '.join(m.fix_terms)})" for m in MODES)
        return f"{base}\nRules:\n{rules}\n"

    def correction_for(self, mode_name: str, rng: random.Random) -> tuple[str, str, str]:
        """Return (category, reason, corrected output) as a simulated corrector writes them."""
        mode = next(m for m in MODES if m.name == mode_name)
        reason = rng.choice(mode.reasons)
        if rng.random() < 0.5:
            reason = f"{reason} {rng.choice(NOISE_WORDS)}"
        return mode.category, reason, f"{SIMULATION_TAG} corrected answer ({mode.name} fixed)"

    def expected_success(self, prompt_text: str) -> float:
        """Return the success probability of a version over the task population.

        Exact for guidance outside Jinja conditionals; a conditional's guidance is counted as
        always present, so contextual versions come out slightly optimistic.
        """
        addressed, penalty = self.addressed(prompt_text), self.harm(prompt_text)
        # Modes are drawn independently; the first triggered mode that fires fails the task.
        p_no_mode_failure = 1.0
        for m in MODES:
            fail = m.fail_with_guidance if m.name in addressed else m.fail_without_guidance
            p_no_mode_failure *= 1 - m.trigger_share * fail
        return p_no_mode_failure * max(0.0, 1 - BASE_FAILURE - penalty)
