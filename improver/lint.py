"""Lint: the checks a candidate template must pass before it may be deployed."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from improver.templates import (
    MissingVariableError,
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

_MAX_RENDER_ISSUES = 3  # one broken sample says enough; a flood of them says nothing more


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Limits a candidate must respect."""

    max_chars: int = 20_000


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


def _render_issues(text: str, recorded_variables: Sequence[Mapping[str, Any]]) -> list[LintIssue]:
    issues: list[LintIssue] = []
    seen: set[str] = set()
    for index, variables in enumerate(recorded_variables):
        try:
            render_template(text, variables)
        except MissingVariableError as exc:
            message = (
                f"uses variable {exc.variable!r} that recorded execution #{index} did not send"
            )
            code = RENDER
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
    issues.extend(_render_issues(text, recorded_variables))
    return tuple(issues)
