"""Proposing candidates: run the strategies in priority order, lint, de-duplicate, keep k."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from analytics.mining.model import Pattern
from improver.few_shot import FEW_SHOT, few_shot
from improver.layouts import (
    CONTEXT_FIRST,
    INSTRUCTION_FIRST,
    SANDWICH,
    context_first,
    instruction_first,
    sandwich,
)
from improver.lint import LintConfig, lint_candidate, normalised_hash
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


def _run(
    name: str, base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    try:
        return STRATEGIES[name](base, patterns, config)
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
        parse_template(base.template)
    except TemplateError as exc:
        reason = f"the current version does not parse: {exc}"
        return (), (*skipped, *(Skipped(n, reason) for n in names))
    if len(base.template) > config.lint.max_chars:
        reason = (
            f"the current version is {len(base.template):,} chars, already over the "
            f"{config.lint.max_chars:,}-char limit"
        )
        return (), (*skipped, *(Skipped(n, reason) for n in names))

    accepted: list[Candidate] = []
    seen: dict[str, str] = {}
    rejected = frozenset(rejected_hashes)
    base_digest = normalised_hash(base.template)

    def consider(result: Candidate | Skipped) -> None:
        if isinstance(result, Skipped):
            skipped.append(result)
            return
        if normalised_hash(result.template) == base_digest:
            skipped.append(Skipped(result.strategy, "nothing new: the candidate equals the "
                                                    "current version after normalisation"))
            return
        issues = lint_candidate(
            result.template,
            parent_text=base.template,
            recorded_variables=recorded_variables,
            rejected_hashes=rejected,
            config=config.lint,
        )
        if issues:
            skipped.append(
                Skipped(result.strategy, "lint: " + "; ".join(i.message for i in issues))
            )
            return
        digest = normalised_hash(result.template)
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
