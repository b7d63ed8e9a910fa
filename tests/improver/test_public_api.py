"""The package's public surface is exactly what ``__all__`` says."""

from __future__ import annotations

import improver

EXPECTED = {
    "DEFAULT_PRIORITY",
    "LLM_REWRITER",
    "STRATEGIES",
    "BaseVersion",
    "BudgetExhausted",
    "Candidate",
    "ImproverConfig",
    "LLMRewriter",
    "LintConfig",
    "LintIssue",
    "MissingVariableError",
    "ParsedTemplate",
    "RenderBudget",
    "RenderBudgetExceeded",
    "RewriterConfig",
    "RewriterError",
    "Skipped",
    "Strategy",
    "StrategyConfig",
    "TemplateError",
    "TemplateSecurityError",
    "Usage",
    "budget_issues",
    "escape_literal",
    "lint_candidate",
    "normalised_hash",
    "parse_template",
    "propose_candidates",
    "render_template",
    "template_variables",
}


def test_all_lists_exactly_the_public_api() -> None:
    assert set(improver.__all__) == EXPECTED
    assert len(improver.__all__) == len(EXPECTED)


def test_every_name_in_all_resolves() -> None:
    for name in improver.__all__:
        assert getattr(improver, name) is not None


def test_the_security_error_is_a_template_error_and_a_value_error() -> None:
    assert issubclass(improver.TemplateSecurityError, improver.TemplateError)
    assert issubclass(improver.MissingVariableError, improver.TemplateError)
    assert issubclass(improver.TemplateError, ValueError)
