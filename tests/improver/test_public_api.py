"""The package's public surface is exactly what ``__all__`` says."""

from __future__ import annotations

import subprocess
import sys

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


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_rendering_a_template_loads_no_strategy_mining_or_scientific_stack() -> None:
    # The agent SDK imports improver.templates; it must stay light.
    loaded = _modules_loaded_by("import improver.templates")
    heavy = {"numpy", "scipy", "sklearn", "httpx", "improver.candidates", "improver.rewriter"}
    # The package roots load their names lazily (analytics.lazy); no statistics or mining.
    analytics = {m for m in loaded if m.startswith("analytics.") and m != "analytics.lazy"}
    assert not loaded & heavy and not analytics, (loaded & heavy, analytics)


def test_a_name_loads_its_module_on_first_use_and_unknown_names_fail() -> None:
    loaded = _modules_loaded_by("import improver; improver.propose_candidates")
    assert "improver.candidates" in loaded
    assert "propose_candidates" in dir(improver)
    try:
        improver.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")
