"""What the improver takes and gives: plain frozen dataclasses and the strategy signature."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from analytics.mining.model import Pattern


@dataclass(frozen=True, slots=True)
class BaseVersion:
    """The prompt version a candidate is written from."""

    prompt: str
    version: int
    template: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed new template, with why it was written and which patterns it addresses."""

    template: str
    strategy: str
    rationale: str
    addressed_pattern_ids: tuple[str, ...]
    parent_version: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A strategy that produced no candidate, and why (the service logs the reason)."""

    strategy: str
    reason: str


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Knobs shared by the rule-based strategies."""

    max_patterns: int = 3  # how many of the top-ranked patterns one candidate addresses
    max_reason_chars: int = 300  # a feedback item quotes its statement up to this length
    feedback_examples: bool = True  # a terse feedback item gets one short corrected example
    max_examples: int = 4  # worked examples added by few-shot
    max_example_field_chars: int = 800  # an example whose input or output is longer is skipped
    max_examples_section_chars: int = 4_000  # bound on the whole worked-examples section
    min_shared_terms: int = 2  # words an instruction must share with a complaint to be implicated
    replacement_mode: Literal["rewrite", "remove"] = "rewrite"


Strategy: TypeAlias = Callable[
    [BaseVersion, Sequence[Pattern], StrategyConfig], Candidate | Skipped
]
