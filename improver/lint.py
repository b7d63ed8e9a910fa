"""Lint: the checks a candidate template must pass before it may be deployed."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from improver.chat import Message, chat_source, keeps_structure
from improver.render_budget import DEFAULT_BUDGET, RenderBudget
from improver.templates import (
    MissingVariableError,
    RenderBudgetExceeded,
    TemplateError,
    TemplateSecurityError,
    parse_template,
    render_template,
    template_tokens,
)

# Lint codes, stable so the service can count and log them.
SYNTAX = "syntax"
SECURITY = "security"
RENDER = "render"
DROPPED_VARIABLE = "dropped_variable"
TOO_LONG = "too_long"
EMPTY = "empty"
UNCHANGED = "unchanged"
REJECTED_BEFORE = "rejected_before"
BUDGET = "budget"
STRUCTURE = "structure"

_MAX_RENDER_ISSUES = 3  # one broken sample says enough; a flood of them says nothing more
_SAMPLE_ITEMS = 3  # a sample variable iterates as this many samples...
_SAMPLE_DEPTH = 2  # ...down to this depth, so recursive loops over it end


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Limits a candidate must respect."""

    max_chars: int = 20_000
    # The budget every render of the deployed template will run under (the daemon's).
    render_budget: RenderBudget = DEFAULT_BUDGET


@dataclass(frozen=True, slots=True)
class LintIssue:
    """One reason a candidate may not be deployed."""

    code: str
    message: str


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def normalised_text(text: str) -> str:
    """Return the text with whitespace collapsed and Jinja tags spaced canonically."""
    text = unicodedata.normalize("NFKC", text)
    try:
        tokens = template_tokens(text)
    except TemplateError:
        return _collapse(text)
    parts: list[str] = []
    for kind, value in tokens:
        if kind == "data":
            parts.append(_collapse(value))
        elif kind != "whitespace":
            parts.append(value.strip())
    # A single space between tokens makes "{{x}}" and "{{ x }}" the same text.
    return " ".join(part for part in parts if part)


def normalised_hash(text: str) -> str:
    """Return the sha256 hex digest of the normalised text (whitespace-insensitive)."""
    return hashlib.sha256(normalised_text(text).encode("utf-8")).hexdigest()


class _Sample:
    """A stand-in for a variable no execution was recorded with, shaped like any data.

    Attributes, items and calls give the sample back and iteration gives a few more, so
    the template's loops and branches run as they would on real data of a small size.
    """

    __slots__ = ("_depth",)
    # Names the sandbox and Jinja probe on callables; a sample has none of them.
    _PROBES = frozenset({"jinja_pass_arg", "unsafe_callable", "alters_data"})

    def __init__(self, depth: int = 0) -> None:
        self._depth = depth

    def __getattr__(self, name: str) -> _Sample:
        if name.startswith("_") or name in _Sample._PROBES:
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> _Sample:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _Sample:
        return self

    def __iter__(self) -> Any:
        count = _SAMPLE_ITEMS if self._depth < _SAMPLE_DEPTH else 0
        return iter([_Sample(self._depth + 1) for _ in range(count)])

    def __len__(self) -> int:
        return _SAMPLE_ITEMS if self._depth < _SAMPLE_DEPTH else 0

    def __str__(self) -> str:
        return "sample"


def budget_issues(
    text: str,
    recorded_variables: Sequence[Mapping[str, Any]] = (),
    *,
    budget: RenderBudget = DEFAULT_BUDGET,
) -> tuple[LintIssue, ...]:
    """Return a BUDGET issue if the template exceeds ``budget`` on its recorded variables.

    With nothing recorded it renders once with sample variables, judging only the budget
    (a sample is not real data, so a missing attribute there is not a fault).
    """
    if recorded_variables:
        issues = _render_issues(text, recorded_variables, budget)
        return tuple(issue for issue in issues if issue.code == BUDGET)
    try:
        names = parse_template(text).variables
        render_template(text, {name: _Sample() for name in names}, budget=budget)
    except RenderBudgetExceeded as exc:
        return (LintIssue(BUDGET, f"with sample variables: {exc}"),)
    except TemplateError:
        pass
    return ()


def _render_issues(
    text: str, recorded_variables: Sequence[Mapping[str, Any]], budget: RenderBudget
) -> list[LintIssue]:
    issues: list[LintIssue] = []
    seen: set[str] = set()
    for index, variables in enumerate(recorded_variables):
        try:
            render_template(text, variables, budget=budget)
        except MissingVariableError as exc:
            message = (
                f"uses variable {exc.variable!r} that recorded execution #{index} did not send"
            )
            code = RENDER
        except RenderBudgetExceeded as exc:
            message, code = f"recorded execution #{index}: {exc}", BUDGET
        except TemplateSecurityError as exc:
            message, code = f"recorded execution #{index}: {exc}", SECURITY
        except TemplateError as exc:
            message, code = f"does not render with recorded execution #{index}: {exc}", RENDER
        else:
            continue
        key = code + re.sub(r"#\d+", "#", message)  # the same fault in many samples is one issue
        if key in seen:
            continue
        seen.add(key)
        issues.append(LintIssue(code, message))
        if len(issues) >= _MAX_RENDER_ISSUES:
            break
    return issues


def lint_candidate(
    text: str,
    *,
    parent_text: str,
    recorded_variables: Sequence[Mapping[str, Any]] = (),
    rejected_hashes: Collection[str] = (),
    config: LintConfig = LintConfig(),
) -> tuple[LintIssue, ...]:
    """Return every reason the candidate may not be deployed; empty means it passes."""
    if not isinstance(text, str):
        return (LintIssue(SYNTAX, f"a template is text, not {type(text).__name__}"),)
    issues: list[LintIssue] = []
    if not text.strip():
        issues.append(LintIssue(EMPTY, "the template is empty"))
    if len(text) > config.max_chars:
        issues.append(
            LintIssue(TOO_LONG, f"{len(text):,} chars, over the {config.max_chars:,}-char limit")
        )
    digest = normalised_hash(text)
    if digest == normalised_hash(parent_text):
        issues.append(LintIssue(UNCHANGED, "identical to its parent (after normalisation)"))
    if digest in rejected_hashes:
        issues.append(LintIssue(REJECTED_BEFORE, "identical to a candidate rejected before"))
    try:
        parsed = parse_template(text)
    except TemplateSecurityError as exc:
        issues.append(LintIssue(SECURITY, str(exc)))
        return tuple(issues)
    except TemplateError as exc:
        issues.append(LintIssue(SYNTAX, f"does not parse: {exc}"))
        return tuple(issues)
    try:
        parent_variables = parse_template(parent_text).variables
    except TemplateError:
        parent_variables = frozenset()  # a broken parent has no variables we can hold it to
    for name in sorted(parent_variables - parsed.variables):
        issues.append(
            LintIssue(DROPPED_VARIABLE, f"drops variable {name!r} that the current version uses")
        )
    if recorded_variables:
        issues.extend(_render_issues(text, recorded_variables, config.render_budget))
    else:
        issues.extend(budget_issues(text, budget=config.render_budget))
    return tuple(issues)


def _message_variables(messages: Sequence[Message]) -> frozenset[str]:
    names: set[str] = set()
    for m in messages:
        # A broken parent message holds nothing we can hold the candidate to.
        if not m.is_placeholder:
            with suppress(TemplateError):
                names |= parse_template(m.content).variables
    return frozenset(names)


def lint_chat_candidate(
    messages: Sequence[Message],
    *,
    parent: Sequence[Message],
    recorded_variables: Sequence[Mapping[str, Any]] = (),
    rejected_hashes: Collection[str] = (),
    config: LintConfig = LintConfig(),
) -> tuple[LintIssue, ...]:
    """Return every reason a chat candidate may not be deployed; empty means it passes.

    Every message is held to what a text template is (parses in the sandbox, renders with
    the recorded variables under the budget, not empty), the whole prompt to the length
    limit, and the conversation to its parent's structure: roles in the same order, every
    placeholder kept; the one thing a candidate may add is user/assistant example pairs.
    """
    issues: list[LintIssue] = []
    source = chat_source(messages)
    if len(source) > config.max_chars:
        issues.append(LintIssue(
            TOO_LONG, f"{len(source):,} chars, over the {config.max_chars:,}-char limit"))
    digest = normalised_hash(source)
    if digest == normalised_hash(chat_source(parent)):
        issues.append(LintIssue(UNCHANGED, "identical to its parent (after normalisation)"))
    if digest in rejected_hashes:
        issues.append(LintIssue(REJECTED_BEFORE, "identical to a candidate rejected before"))
    if not keeps_structure(parent, messages):
        issues.append(LintIssue(STRUCTURE, "changes the conversation's roles or placeholders "
                                           "(only user/assistant example pairs may be added)"))
    variables: set[str] = set()
    for index, m in enumerate(messages):
        if m.is_placeholder:
            continue
        where = f"messages[{index}] ({m.role}): "
        if not m.content.strip():
            issues.append(LintIssue(EMPTY, where + "the content is empty"))
            continue
        try:
            variables |= parse_template(m.content).variables
        except TemplateSecurityError as exc:
            issues.append(LintIssue(SECURITY, where + str(exc)))
            continue
        except TemplateError as exc:
            issues.append(LintIssue(SYNTAX, where + f"does not parse: {exc}"))
            continue
        found = (_render_issues(m.content, recorded_variables, config.render_budget)
                 if recorded_variables else budget_issues(m.content,
                                                          budget=config.render_budget))
        issues.extend(LintIssue(i.code, where + i.message) for i in found)
    for name in sorted(_message_variables(parent) - variables):
        issues.append(LintIssue(DROPPED_VARIABLE,
                                f"drops variable {name!r} that the current version uses"))
    return tuple(issues)
