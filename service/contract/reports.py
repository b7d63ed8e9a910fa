"""The body of ``GET /v1/report``: every prompt over a window, to take away.

Rates are fractions with 95% Wilson intervals; times are unix seconds. Counts are kept by the
hour, so they start at ``counted_from``, the start of the hour that holds ``since``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .responses import T0


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class Rate(_Body):
    """A rate and its interval."""

    rate: float | None = Field(None, description="the fraction (null without executions)")
    ci: list[float] = Field(description="its 95% Wilson interval [low, high]")


class Metrics(_Body):
    """What executions did in the window."""

    executions: int = Field(description="executions reported")
    successes: int = Field(description="of them successful")
    errors: int = Field(description="of them with an error_type")
    corrections: int = Field(description="corrections reported")
    success: Rate = Field(description="success rate")
    correction: Rate = Field(description="corrections per execution")
    error: Rate = Field(description="error rate")
    cost_usd: float = Field(description="total reported cost")
    cost_per_success_usd: float | None = Field(None, description="cost / successful executions")
    mean_latency_ms: float | None = Field(None, description="mean reported latency")


class VersionReport(Metrics):
    """One version's window."""

    version: int = Field(description="the version")
    production: bool = Field(description="whether it is production now")


class Shipped(_Body):
    """A move of the production label in the window."""

    at: float = Field(description="when")
    version: int = Field(description="the version made production")
    previous: int | None = Field(None, description="the version it replaced")
    kind: str = Field(description="set (by hand), promotion (a deployment won) or rollback")
    actor: str = Field(description="who moved it")
    actor_name: str | None = Field(None, description="the name of the actor's token, if any")
    reason: str = Field(description="why")


class Ended(_Body):
    """A deployment that ended in the window."""

    at: float = Field(description="when")
    deployment_id: str | None = Field(None, description="the deployment")
    outcome: str = Field(description="promoted, rolled_back, superseded or rejected")
    versions: list[int] = Field(description="its candidate versions")
    actor: str = Field(description="who decided")
    actor_name: str | None = Field(None, description="the name of the actor's token, if any")
    reason: str = Field(description="why, as recorded (a rollback's statistics)")


class PatternLine(_Body):
    """A failure pattern of the prompt's latest mining snapshot."""

    pattern_id: str = Field(description="stable across mining runs")
    label: str = Field(description="short, from the cluster's distinctive terms")
    size: int = Field(description="records in it")
    share: float = Field(description="its records in the latest window / its executions")
    severity_score: float = Field(description="severity-weighted size")
    status: str = Field(description="its trend: new, growing, stable, shrinking, resolved")
    trend_counts: list[int] = Field(description="records per mining window, oldest first")
    versions: list[int] = Field(description="versions it was seen on")


class PromptReport(_Body):
    """One prompt over the window."""

    prompt: str = Field(description="the prompt")
    production: int | None = Field(None, description="its production version now")
    production_at_start: int | None = Field(None, description="its production version at the start")
    totals: Metrics = Field(description="every version together")
    versions: list[VersionReport] = Field(description="each version that ran in the window")
    shipped: list[Shipped] = Field(description="production label moves, oldest first")
    deployments_ended: list[Ended] = Field(description="deployments that ended, oldest first")
    decisions: dict[str, int] = Field(description="what promptd and admins decided, by type")
    patterns: list[PatternLine] = Field(description="top failure patterns, ranked")


class Ranked(_Body):
    """A prompt's place by success rate."""

    prompt: str = Field(description="the prompt")
    executions: int = Field(description="its executions in the window")
    success: Rate = Field(description="its success rate")


class ReportTotals(_Body):
    """The whole window at a glance."""

    prompts: int = Field(description="prompts reported")
    executions: int = Field(description="executions")
    corrections: int = Field(description="corrections")
    versions_shipped: int = Field(description="production label moves")
    promotions: int = Field(description="deployments promoted")
    rollbacks: int = Field(description="deployments rolled back")


_RATE: dict[str, Any] = {"rate": 0.84, "ci": [0.819, 0.859]}
_METRICS: dict[str, Any] = {
    "executions": 1200, "successes": 1008, "errors": 4, "corrections": 31, "success": _RATE,
    "correction": {"rate": 0.026, "ci": [0.018, 0.036]},
    "error": {"rate": 0.003, "ci": [0.001, 0.009]}, "cost_usd": 0.41,
    "cost_per_success_usd": 0.000407, "mean_latency_ms": 812.5}


class Report(_Body):
    """Every prompt over a window: rates with intervals, what shipped, what was decided."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "since": T0 - 7 * 86400, "until": T0, "counted_from": T0 - 7 * 86400, "prompt": None,
        "totals": {"prompts": 1, "executions": 1200, "corrections": 31, "versions_shipped": 1,
                   "promotions": 1, "rollbacks": 0},
        "top": [{"prompt": "support/triage", "executions": 1200, "success": _RATE}],
        "bottom": [{"prompt": "support/triage", "executions": 1200, "success": _RATE}],
        "prompts": [{
            "prompt": "support/triage", "production": 3, "production_at_start": 1,
            "totals": _METRICS,
            "versions": [{"version": 3, "production": True, **_METRICS}],
            "shipped": [{"at": T0 - 86400, "version": 3, "previous": 1, "kind": "promotion",
                         "actor": "promptd", "reason": "c1 non-inferior at the last step"}],
            "deployments_ended": [{"at": T0 - 86400, "deployment_id":
                                   "dep-01a23702-5b4a-7000-a90f-0252798eeff0",
                                   "outcome": "promoted", "versions": [3], "actor": "promptd",
                                   "reason": "c1 non-inferior at the last step"}],
            "decisions": {"deployment.promoted": 1, "deployment.started": 1},
            "patterns": [{"pattern_id": "p-date-iso", "label": "date iso format", "size": 41,
                          "share": 0.034, "severity_score": 82.0, "status": "shrinking",
                          "trend_counts": [10, 9, 5, 3], "versions": [1, 3]}]}]}]})

    since: float = Field(description="the window's start as asked")
    until: float = Field(description="its end (now)")
    counted_from: float = Field(description="where the counts start: the hour holding since")
    prompt: str | None = Field(None, description="the one prompt asked for, or null for all")
    totals: ReportTotals = Field(description="the whole window at a glance")
    top: list[Ranked] = Field(description="the prompts with the best success rate, best first")
    bottom: list[Ranked] = Field(description="those with the worst, worst first")
    prompts: list[PromptReport] = Field(description="each prompt, by name")


__all__ = ["Ended", "Metrics", "PatternLine", "PromptReport", "Ranked", "Rate", "Report",
           "ReportTotals", "Shipped", "VersionReport"]
