"""What the improver takes and gives: plain frozen dataclasses and the strategy signature."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from analytics.mining.model import Pattern
from improver.chat import Message, chat_source


@dataclass(frozen=True, slots=True)
class BaseVersion:
    """The prompt version a candidate is written from: a text template, or chat messages."""

    prompt: str
    version: int
    template: str  # "" for a chat prompt
    messages: tuple[Message, ...] | None = None
    config: Mapping[str, Any] | None = None  # the model config it runs with

    @property
    def source(self) -> str:
        """Return the prompt's text: the template, or the messages under ``[role]`` lines."""
        return self.template if self.messages is None else chat_source(self.messages)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed new version, with why it was written and which patterns it addresses.

    A chat candidate has ``messages`` (and an empty template). ``config`` is None to keep
    the parent's: a strategy sets it only to change the model config on purpose, and only
    strategies the improver's config names may (see ``ImproverConfig.config_strategies``).
    """

    template: str
    strategy: str
    rationale: str
    addressed_pattern_ids: tuple[str, ...]
    parent_version: int
    messages: tuple[Message, ...] | None = None
    config: Mapping[str, Any] | None = None

    @property
    def source(self) -> str:
        """Return the candidate's text (as ``BaseVersion.source``): what lint and hashes see."""
        return self.template if self.messages is None else chat_source(self.messages)


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
