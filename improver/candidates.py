"""Proposing candidates: run the strategies in priority order, lint, de-duplicate, keep k."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from analytics.mining.model import Pattern
from improver.chat import chat_variables
from improver.chat_strategies import CHAT_STRATEGIES
from improver.few_shot import FEW_SHOT, few_shot
from improver.layouts import (
    CONTEXT_FIRST,
    INSTRUCTION_FIRST,
    SANDWICH,
    context_first,
    instruction_first,
    sandwich,
)
from improver.lint import (
    UNCHANGED,
    LintConfig,
    LintIssue,
    lint_candidate,
    lint_chat_candidate,
    normalised_hash,
)
from improver.model import BaseVersion, Candidate, Skipped, Strategy, StrategyConfig
from improver.replacement import REPLACEMENT, replacement
from improver.rules import ADDITIVE, CONTEXTUAL, additive, contextual
from improver.templates import TemplateError, parse_template

__all__ = [
    "DEFAULT_PRIORITY",
    "STRATEGIES",
    "BaseVersion",
    "Candidate",
    "ImproverConfig",
    "Skipped",
    "Strategy",
    "StrategyConfig",
    "propose_candidates",
]

STRATEGIES: Mapping[str, Strategy] = MappingProxyType(
    {
        ADDITIVE: additive,
        FEW_SHOT: few_shot,
        REPLACEMENT: replacement,
        INSTRUCTION_FIRST: instruction_first,
        CONTEXT_FIRST: context_first,
        SANDWICH: sandwich,
        CONTEXTUAL: contextual,
    }
)

# Direct fixes for the mined patterns first, layout experiments last: a layout change
# addresses no pattern by itself, so it only earns a slot when the fixes do not fill k.
DEFAULT_PRIORITY: tuple[str, ...] = (
    ADDITIVE,
    FEW_SHOT,
    CONTEXTUAL,
    REPLACEMENT,
    SANDWICH,
    INSTRUCTION_FIRST,
    CONTEXT_FIRST,
)


@dataclass(frozen=True, slots=True)
class ImproverConfig:
    """Strategy knobs, lint limits and the order strategies are tried in."""

    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    lint: LintConfig = field(default_factory=LintConfig)
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    # The strategies allowed to change a version's model config (a model-swap experiment,
    # say); a candidate of any other strategy that changes it is refused.
    config_strategies: frozenset[str] = frozenset()


def _run(
    name: str, base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    table = CHAT_STRATEGIES if base.messages is not None else STRATEGIES
    try:
        return table[name](base, patterns, config)
    except TemplateError as exc:
        return Skipped(name, f"template error: {exc}")
    except Exception as exc:  # one faulty strategy must not stop the others; the reason is logged
        return Skipped(name, f"strategy failed: {type(exc).__name__}: {exc}")


def propose_candidates(
    base: BaseVersion,
    patterns: Sequence[Pattern],
    *,
    k: int = 3,
    strategies: Sequence[str] | None = None,
    recorded_variables: Sequence[Mapping[str, Any]] = (),
    rejected_hashes: Collection[str] = (),
    config: ImproverConfig = ImproverConfig(),
    extra: Sequence[Candidate | Skipped] = (),
) -> tuple[tuple[Candidate, ...], tuple[Skipped, ...]]:
    """Return up to k linted, distinct candidates (one per strategy) and why others gave none.

    ``extra`` holds results made elsewhere (the LLM rewriter); they are linted like the
    rest and considered first.
    """
    names = tuple(strategies) if strategies is not None else config.priority
    skipped: list[Skipped] = [Skipped(n, "unknown strategy") for n in names if n not in STRATEGIES]
    names = tuple(dict.fromkeys(n for n in names if n in STRATEGIES))
    if not patterns:
        return (), (*skipped, *(Skipped(n, "no patterns to address") for n in names))
    try:
        if base.messages is None:
            parse_template(base.template)
        else:
            chat_variables(base.messages)
    except TemplateError as exc:
        reason = f"the current version does not parse: {exc}"
        return (), (*skipped, *(Skipped(n, reason) for n in names))
    if len(base.source) > config.lint.max_chars:
        reason = (
            f"the current version is {len(base.source):,} chars, already over the "
            f"{config.lint.max_chars:,}-char limit"
        )
        return (), (*skipped, *(Skipped(n, reason) for n in names))

    accepted: list[Candidate] = []
    seen: dict[str, str] = {}
    rejected = frozenset(rejected_hashes)
    base_digest = normalised_hash(base.source)

    def consider(result: Candidate | Skipped) -> None:
        if isinstance(result, Skipped):
            skipped.append(result)
            return
        if normalised_hash(result.source) == base_digest and not _changes_config(base, result):
            skipped.append(Skipped(result.strategy, "nothing new: the candidate equals the "
                                                    "current version after normalisation"))
            return
        if _changes_config(base, result) and result.strategy not in config.config_strategies:
            skipped.append(Skipped(result.strategy, "changes the model config, which only "
                                                    "strategies allowed to may"))
            return
        issues = _lint(base, result, recorded_variables, rejected, config.lint)
        if issues:
            skipped.append(
                Skipped(result.strategy, "lint: " + "; ".join(i.message for i in issues))
            )
            return
        digest = normalised_hash(result.source)
        if _changes_config(base, result):
            digest += json.dumps(dict(result.config or {}), sort_keys=True)
        if digest in seen:
            skipped.append(Skipped(result.strategy, f"same text as the {seen[digest]} candidate"))
            return
        seen[digest] = result.strategy
        accepted.append(result)

    for result in extra:
        if len(accepted) >= k:
            break
        consider(result)
    for name in names:
        if len(accepted) >= k:
            break
        consider(_run(name, base, patterns, config.strategy))
    return tuple(accepted), tuple(skipped)


def _changes_config(base: BaseVersion, candidate: Candidate) -> bool:
    return candidate.config is not None and dict(candidate.config) != dict(base.config or {})


def _lint(base: BaseVersion, candidate: Candidate, recorded: Sequence[Mapping[str, Any]],
          rejected: Collection[str], config: LintConfig) -> tuple[LintIssue, ...]:
    if (base.messages is None) != (candidate.messages is None):
        kind = "a chat prompt" if base.messages is not None else "a text prompt"
        return (LintIssue("structure", f"the current version is {kind}; a candidate keeps "
                                       "its kind"),)
    if base.messages is not None and candidate.messages is not None:
        issues = lint_chat_candidate(candidate.messages, parent=base.messages,
                                     recorded_variables=recorded, rejected_hashes=rejected,
                                     config=config)
    else:
        issues = lint_candidate(candidate.template, parent_text=base.template,
                                recorded_variables=recorded, rejected_hashes=rejected,
                                config=config)
    if _changes_config(base, candidate):  # the same text on another model is a change
        issues = tuple(i for i in issues if i.code != UNCHANGED)
    return issues
