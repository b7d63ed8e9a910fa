"""Response bodies of the rollout and pattern routes, with a real example of each.

One vocabulary for traffic: a fraction of all requests (``weights``, ``candidate_share``),
and steps counted from 1 (``step`` of ``steps``). Like every admin answer they allow fields
beyond the documented ones (see ``responses``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from deploy.policy import CanaryPolicy

from .responses import T0, with_example

_DEP = "dep-01a23702-5b4a-7000-a90f-0252798eeff0"


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class DeploymentArm(_Body):
    """An arm of a deployment."""

    name: str = Field(description="control, c1, c2 or c3")
    version: int = Field(description="the prompt version it serves")


_PLAN = CanaryPolicy().plan()  # the default policy's, as GET .../policy shows it
_DEPLOYMENT: dict[str, Any] = {
    "deployment_id": _DEP, "prompt": "support/triage",
    "arms": [{"name": "control", "version": 3}, {"name": "c1", "version": 4}],
    "phase": "running", "step": 1, "steps": 4, "candidate_share": 0.025,
    "candidate_share_by_step": [0.025, 0.125, 0.25, 0.5],
    "weights": {"control": 0.975, "c1": 0.025}, "step_started_at": T0, "started_at": T0,
    "eliminated": [], "machine_written": True, "winner": None, "ended_at": None,
    "outcome_reason": "", "policy": {"steps": [5.0, 25.0, 50.0, 100.0],
                                     "min_samples_per_step": 200},
    "plan": _PLAN}


class Deployment(_Body):
    """A canary deployment: control plus one to three candidates."""

    model_config = with_example(_DEPLOYMENT)
    deployment_id: str = Field(description="its id (a unique prefix names it in the CLI)")
    prompt: str = Field(description="the prompt it deploys")
    arms: list[DeploymentArm] = Field(description="control first, then the candidates")
    phase: str = Field(description="pending_approval, running, awaiting_promotion, paused, "
                       "promoted, rolled_back or superseded")
    step: int = Field(description="the current step, counted from 1")
    stratum: int = Field(0, description="the stretch of constant weights now: a new one opens "
                         "at every step and elimination (statistics compare arms within one)")
    steps: int = Field(description="how many steps the ramp has")
    candidate_share: float = Field(description="share of all traffic the candidates get now")
    candidate_share_by_step: list[float] = Field(
        description="share of all traffic the candidates get at each step")
    weights: dict[str, float] = Field(description="arm -> share of all traffic now (sums to 1)")
    step_started_at: float = Field(description="when the current step began (unix seconds)")
    started_at: float = Field(description="when traffic started (unix seconds)")
    eliminated: list[str] = Field(description="candidate arms out of the race")
    machine_written: bool = Field(description="true when promptd started it for a candidate "
                                  "it wrote")
    winner: str | None = Field(None, description="the arm promoted (or awaiting promotion)")
    ended_at: float | None = Field(None, description="when it ended (unix seconds)")
    outcome_reason: str = Field(description="why it ended as it did")
    policy: dict[str, JsonValue] = Field(
        description="its canary policy; steps are percentages of the full comparison split")
    plan: dict[str, JsonValue] = Field(
        description="what the policy implies: planned and maximum samples per arm, the "
        "sequences' tuning and the alpha of each test by number of candidates")


class ArmRow(_Body):
    """One arm's evidence, summed over the steps."""

    arm: str = Field(description="control, c1, c2 or c3")
    version: int = Field(description="the version it serves")
    executions: int = Field(description="executions reported by it")
    success_rate: float | None = Field(None, description="successes / executions with an outcome")
    success_ci: list[float] = Field(description="95% Wilson interval of the success rate")
    correction_rate: float | None = Field(None, description="corrections / executions")
    error_rate: float | None = Field(None, description="share of executions with an error")
    eliminated: bool = Field(description="out of the race")
    weight: float = Field(description="its share of all traffic now")


class NextDecision(_Body):
    """What the next canary tick would decide on the evidence so far."""

    event: str | None = Field(None, description="the event it would append, none for no change")
    reason: str = Field(description="why")
    evidence: dict[str, JsonValue] = Field(description="the statistics behind it")


class DeploymentDetail(Deployment):
    """A deployment with each arm's evidence and the pending decision."""

    model_config = with_example({**_DEPLOYMENT, "arms_stats": [
        {"arm": "control", "version": 3, "executions": 1950, "success_rate": 0.81,
         "success_ci": [0.792, 0.827], "correction_rate": 0.031, "error_rate": 0.002,
         "eliminated": False, "weight": 0.975},
        {"arm": "c1", "version": 4, "executions": 52, "success_rate": 0.865,
         "success_ci": [0.747, 0.933], "correction_rate": 0.019, "error_rate": 0.0,
         "eliminated": False, "weight": 0.025}],
        "next_decision": {"event": None, "reason": "c1 needs 200 executions in this step, "
                          "has 52", "evidence": {}}})
    arms_stats: list[ArmRow] = Field(description="each arm's evidence")
    next_decision: NextDecision | None = Field(
        None, description="what a tick would decide now (absent once it has ended)")


class DeploymentList(_Body):
    """Deployments, oldest first."""

    model_config = with_example({"deployments": [_DEPLOYMENT]})
    deployments: list[Deployment] = Field(description="the deployments asked for")


class DeploymentActionResult(_Body):
    """What an admin's decision on a deployment did."""

    model_config = with_example({"deployment_id": _DEP, "event": "deployment.stepped",
                             "reason": "promoted by an admin: step 1 -> 2",
                             "deployment": {**_DEPLOYMENT, "step": 2, "candidate_share": 0.125,
                                            "weights": {"control": 0.875, "c1": 0.125}}})
    deployment_id: str = Field(description="the deployment")
    event: str | None = Field(None, description="the event appended")
    reason: str = Field(description="why, as recorded")
    deployment: Deployment = Field(description="the deployment after it")


class RollbackResult(_Body):
    """What a prompt rollback did."""

    model_config = with_example({"prompt": "support/triage", "deployment_rolled_back": _DEP,
                             "production": 3, "changed": True, "note": None})
    prompt: str = Field(description="the prompt")
    deployment_rolled_back: str | None = Field(None, description="the deployment it stopped")
    production: int = Field(description="the production version now")
    changed: bool = Field(description="false when there was nothing left to roll back")
    note: str | None = Field(None, description="why nothing changed, when nothing did")


class HistoryEntry(_Body):
    """One decision or change in a prompt's timeline (fields depend on its type)."""

    position: int = Field(description="the event's position in the log")
    type: str = Field(description="the event's type")
    actor: str = Field(description="who decided: promptd, or token:<id>")
    actor_name: str | None = Field(None, description="the name of the actor's token, if any")
    recorded_at: float = Field(description="when (unix seconds)")
    version: int | None = Field(None, description="the version concerned")
    label: str | None = Field(None, description="the label moved")
    previous: int | None = Field(None, description="the version the label left")
    kind: str | None = Field(None, description="how a label moved: set, promotion or rollback")
    protected: bool | None = Field(None, description="a label's protection after the change")
    strategy: str | None = Field(None, description="how a version was written")
    author: str | None = Field(None, description="who wrote a version")
    reason: str | None = Field(None, description="why (first 300 characters)")
    rationale: str | None = Field(None, description="a version's rationale (first 300)")
    deployment_id: str | None = Field(None, description="the deployment concerned")
    step_index: int | None = Field(None, description="the step moved to, 0-based as logged")
    winner: str | None = Field(None, description="the arm promoted")
    arm: str | None = Field(None, description="the arm concerned")
    trigger: str | None = Field(None, description="what caused an automatic decision")
    patterns: int | None = Field(None, description="patterns in a mining snapshot")
    top: list[str] | None = Field(None, description="the labels of its top patterns")
    overrides: dict[str, JsonValue] | None = Field(None, description="a policy's overrides")
    arms: list[DeploymentArm] | None = Field(None, description="a deployment's arms")
    records: int | None = Field(None, description="records mined")
    full: bool | None = Field(None, description="a promotion that skipped the remaining steps")
    requires_approval: bool | None = Field(None, description="a deployment waiting for approval")


class History(_Body):
    """A prompt's timeline, oldest first."""

    model_config = with_example({"prompt": "support/triage", "history": [
        {"position": 3, "type": "label.moved", "actor": "token:5d41402abc4b",
         "actor_name": "alice", "recorded_at": T0, "version": 1, "label": "production"},
        {"position": 950, "type": "deployment.rolled_back", "actor": "promptd",
         "actor_name": None, "recorded_at": T0 + 900, "deployment_id": _DEP,
         "reason": "c1 is worse on success_rate beyond its tolerance"}]})
    prompt: str = Field(description="the prompt")
    history: list[HistoryEntry] = Field(description="its timeline, oldest first")


class Candidate(_Body):
    """A machine-written version and its fate."""

    prompt: str = Field(description="the prompt")
    version: int = Field(description="the candidate version")
    strategy: str = Field(description="the improver's strategy")
    rationale: str = Field(description="why it was written")
    addressed_patterns: list[str] = Field(description="failure patterns it addresses")
    status: str = Field(description="proposed, in_canary, promoted, lost, eliminated, "
                        "rolled_back, superseded or rejected")
    deployment_id: str | None = Field(None, description="the deployment that tried it")
    proposed_at: float = Field(description="when it was proposed (unix seconds)")
    updated_at: float = Field(description="when its status last changed")


class CandidateList(_Body):
    """Machine-written candidates, newest first."""

    model_config = with_example({"candidates": [{
        "prompt": "support/triage", "version": 4, "strategy": "additive",
        "rationale": "reviewers flagged dates not in ISO format",
        "addressed_patterns": ["p-date-iso"], "status": "in_canary", "deployment_id": _DEP,
        "proposed_at": T0, "updated_at": T0}]})
    candidates: list[Candidate] = Field(description="the candidates, newest first")


class PolicyView(_Body):
    """A prompt's canary policy: the overrides stored and the policy they make."""

    model_config = with_example({"prompt": "support/triage",
                             "overrides": {"steps": [10, 50, 100]},
                             "policy": {"steps": [10.0, 50.0, 100.0], "alpha": 0.05,
                                        "min_samples_per_step": 200},
                             "plan": _PLAN})
    prompt: str = Field(description="the prompt")
    overrides: dict[str, JsonValue] = Field(description="the overrides stored for it")
    policy: dict[str, JsonValue] = Field(description="the effective policy (defaults plus "
                                         "overrides); steps are percentages of the full "
                                         "comparison split")
    plan: dict[str, JsonValue] = Field(
        description="what the policy implies: planned and maximum samples per arm, the "
        "sequences' tuning and the alpha of each test by number of candidates")


class PatternExampleOut(_Body):
    """A worked example of a pattern."""

    input_text: str | None = Field(None, description="what the agent got")
    output_text: str | None = Field(None, description="what it answered")
    corrected_output: str | None = Field(None, description="what a reviewer said it should be")
    reason: str = Field("", description="the reviewer's reason, or the failure's error")


class PatternContextOut(_Body):
    """The recorded input variable whose values tell a pattern's records from the rest."""

    variable: str = Field(description="the execution variable")
    values: list[str] = Field(description="its values over-represented in the pattern")
    coverage: float = Field(description="share of the pattern's records having these values")
    association: float = Field(description="Cramer's V of membership against the variable")
    p_value: float = Field(description="chi-square test of independence")
    support: int = Field(description="pattern records that carry the variable")


class ShareWindowOut(_Body):
    """The window shares were computed on: the latest one with any pattern-able record."""

    start: float = Field(description="window start (unix seconds, exclusive)")
    end: float = Field(description="window end (unix seconds, inclusive)")
    records: int = Field(description="corrections and failures in it")
    is_latest: bool = Field(description="false when the latest window was empty "
                            "(traffic stopped), so shares come from an older one")


class PatternOut(_Body):
    """A recurring failure: a cluster of corrections and failed executions."""

    pattern_id: str = Field(description="stable across mining runs")
    label: str = Field(description="short, from the cluster's distinctive terms")
    terms: list[str] = Field(description="distinctive terms, most distinctive first")
    representative_reason: str = Field(description="the reason nearest the cluster's centre")
    size: int = Field(description="records in the cluster, all windows")
    share: float = Field(description="its records in the latest window / that window's "
                         "executions")
    severity_score: float = Field(description="sum of its records' weights (a correction's "
                                  "severity: low 1, medium 2, high 3, critical 5; a failure 1)")
    recent_severity_score: float = Field(description="the same, latest window (the ranking)")
    trend_counts: list[int] = Field(description="records per window, oldest first")
    trend_slope: float = Field(description="least-squares slope of trend_counts per window")
    trend_z: float = Field(description="slope over its standard error")
    status: str = Field(description="new, growing, stable, shrinking or resolved")
    first_seen: float = Field(description="its oldest record (unix seconds)")
    last_seen: float = Field(description="its newest record (unix seconds)")
    versions: list[int] = Field(description="versions it was seen on")
    categories: list[str] = Field(description="correction categories in it")
    error_types: list[str] = Field(description="error types in it")
    examples: list[PatternExampleOut] = Field(description="worked examples")
    statements: list[tuple[str, str]] = Field(
        [], description="clean reviewer feedback as (language, statement), the dominant "
        "language first; empty when no reason states a problem")
    language: str = Field("", description="ISO 639-1 code of the reasons' dominant language")
    noise: str = Field("", description="why the pattern is noise and gives no guidance "
                       "(empty when it is not)")
    corrections: int = Field(0, description="records that are reviewer corrections")
    window_records: int = Field(0, description="its records in the share window")
    context: PatternContextOut | None = Field(
        None, description="the input variable that separates the pattern, if one does")


class Anomaly(_Body):
    """A window whose rate is far above what the trailing windows lead one to expect."""

    metric: str = Field(description="the rate: failure_rate or correction_rate")
    window_start: float = Field(description="the window's start (unix seconds)")
    rate: float = Field(description="its rate")
    baseline_mean: float = Field(description="the trailing windows' mean rate")
    z: float = Field(description="how many standard deviations above")


class PatternsSnapshot(_Body):
    """The latest mining snapshot of a prompt."""

    model_config = with_example({
        "prompt": "support/triage", "mined_at": T0, "position": 1040,
        "patterns": [{"pattern_id": "p-date-iso", "label": "date iso format",
                      "terms": ["iso", "date", "format"],
                      "representative_reason": "the date is not in ISO format", "size": 41,
                      "share": 0.034, "severity_score": 82.0, "recent_severity_score": 20.0,
                      "trend_counts": [3, 5, 9, 10], "trend_slope": 2.4, "trend_z": 3.1,
                      "status": "growing", "first_seen": T0 - 7200, "last_seen": T0,
                      "versions": [3], "categories": ["format"], "error_types": [],
                      "examples": [{"input_text": "when is my refund due?",
                                    "output_text": "on 3/4", "corrected_output": "2026-03-04"}]}],
        "resolved": [], "anomalies": []})
    prompt: str = Field(description="the prompt")
    mined_at: float | None = Field(None, description="when it was mined (null: never)")
    position: int | None = Field(None, description="the snapshot event's position")
    patterns: list[PatternOut] = Field(description="active patterns, ranked")
    resolved: list[PatternOut] = Field(description="patterns that stopped recurring")
    anomalies: list[Anomaly] = Field(description="windows with a sudden regression")
    share_window: ShareWindowOut | None = Field(
        None, description="the window shares were computed on")
    counted_failures: int = Field(
        0, description="failed executions without an error type: counted in rates and "
        "anomalies, never in a pattern (nobody said what went wrong)")


__all__ = [
    "Anomaly",
    "ArmRow",
    "Candidate",
    "CandidateList",
    "Deployment",
    "DeploymentActionResult",
    "DeploymentArm",
    "DeploymentDetail",
    "DeploymentList",
    "History",
    "HistoryEntry",
    "NextDecision",
    "PatternContextOut",
    "PatternExampleOut",
    "PatternOut",
    "PatternsSnapshot",
    "PolicyView",
    "RollbackResult",
    "ShareWindowOut",
]
