"""Rollouts: deployments, admin decisions, manual rollback, history, candidates, policies."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import ValidationError

from analytics.intervals import wilson_interval
from deploy.assignment import BUCKETS, CONTROL
from deploy.canary import decide
from deploy.policy import CanaryPolicy, merge_policy
from deploy.state import DeploymentState
from deploy.stats import ArmStats
from service.contract import CommandBody, DeploymentCreate, PolicyBody, RollbackBody
from service.contract.rollouts import (
    CandidateList,
    Deployment,
    DeploymentActionResult,
    DeploymentDetail,
    DeploymentList,
    History,
    PolicyView,
    RollbackResult,
)
from service.http.deps import Admin, CommandsDep, DaemonDep
from service.http.errors import ApiError, error_responses, refuse_nul, validation_details
from service.http.prompts import NamePath, _prompt
from service.runtime.daemon import Daemon

router = APIRouter(prefix="/v1", tags=["rollout"],
                   responses=error_responses(401, 403, 413, 422))
_COMMAND_ERRORS = error_responses(400, 404, 409, 503)


def _policy(base: CanaryPolicy, overrides: dict[str, Any]) -> CanaryPolicy:
    try:
        return merge_policy(base, overrides)
    except ValidationError as exc:
        details = [{"field": f"policy.{d['field']}", "message": d["message"]}
                   for d in validation_details(exc.errors())]
        raise ApiError(422, "validation_error",
                       "invalid policy: " + "; ".join(f"{d['field']}: {d['message']}"
                                                      for d in details), details) from exc


def _deployment(daemon: Daemon, deployment_id: str) -> DeploymentState:
    state = daemon.queries.deployment(deployment_id)
    if state is None:
        raise ApiError(404, "not_found", f"unknown deployment {deployment_id!r}")
    return state


def _arm_table(state: DeploymentState,
               stats: dict[int, dict[str, ArmStats]]) -> list[dict[str, Any]]:
    rows = []
    for arm in state.arms:
        total = ArmStats()
        for per_arm in stats.values():
            total = total + per_arm.get(arm.name, ArmStats())
        n, successes = total.success.n, round(total.success.total)
        lo, hi = wilson_interval(successes, n) if n else (0.0, 1.0)
        rows.append({
            "arm": arm.name, "version": arm.version, "executions": total.executions,
            "success_rate": successes / n if n else None, "success_ci": [lo, hi],
            "correction_rate": total.corrections / total.executions if total.executions else None,
            "error_rate": total.errors.mean if total.errors.n else None,
            "eliminated": arm.name in state.eliminated,
            "weight": state.weights().get(arm.name, 0) / 10_000,
        })
    return rows


def _candidate_share(weights: dict[str, int]) -> float:
    return sum(w for arm, w in weights.items() if arm != CONTROL) / BUCKETS


def present(state: DeploymentState) -> dict[str, Any]:
    """Return a deployment in the API's one vocabulary for rollouts.

    Traffic is a fraction of all requests (``weights``, ``candidate_share``: the share
    served by candidates), and steps count from 1 (``step`` of ``steps``). ``policy.steps``
    stays as the policy was written: percentages of the full comparison split, which
    ``candidate_share_by_step`` translates.
    """
    out = state.to_json()
    weights = state.weights()
    del out["step_index"], out["step_percent"]
    out["weights"] = {arm: w / BUCKETS for arm, w in weights.items()}
    out["candidate_share"] = _candidate_share(weights)
    out["step"] = state.step_index + 1
    out["steps"] = len(state.policy.steps)
    out["candidate_share_by_step"] = [
        _candidate_share(state.weights_at(i, state.eliminated))
        for i in range(len(state.policy.steps))]
    return out


def deployment_view(daemon: Daemon, state: DeploymentState, *, detail: bool) -> dict[str, Any]:
    """Return a deployment's JSON, with per-arm statistics and the pending decision."""
    out = present(state)
    out["plan"] = state.policy.plan()
    if not detail:
        return out
    stats = daemon.queries.step_stats(state.deployment_id)
    out["arms_stats"] = _arm_table(state, dict(stats))
    if not state.is_terminal:
        preview = decide(state, stats, daemon.clock())
        out["next_decision"] = {"event": preview.event_type, "reason": preview.reason,
                                "evidence": preview.evidence}
    return out


@router.post("/deployments", status_code=201, response_model=Deployment,
             responses=_COMMAND_ERRORS,
             summary="Start a canary deployment")
def create_deployment(body: DeploymentCreate, daemon: DaemonDep, commands: CommandsDep,
                      who: Admin) -> dict[str, Any]:
    """Append deployment.started for hand-picked versions.

    409 if a deployment is already running, unless it is machine-written and ``supersede``
    is true (the default): a person's deployment supersedes it (it ends as superseded, in the
    same append). The 409's detail names the deployment that holds the prompt.
    """
    _prompt(daemon, body.prompt)
    overrides = dict(body.policy)
    if body.steps is not None:
        overrides["steps"] = body.steps
    policy = _policy(commands.policy_for(body.prompt), overrides)
    outcome = commands.deploy(body.prompt, body.versions, policy, actor=who.actor,
                              requires_approval=body.requires_approval,
                              supersede=body.supersede)
    return deployment_view(daemon, _deployment(daemon, str(outcome.answer)), detail=False)


@router.get("/deployments", response_model=DeploymentList, summary="List deployments")
def list_deployments(daemon: DaemonDep, _: Admin,
                     all: bool = Query(False, description="include ended ones"),
                     prompt: str | None = Query(None),
                     id_prefix: str | None = Query(
                         None, max_length=64, description="only ids starting with this"),
                     limit: int | None = Query(None, ge=1, le=10_000,
                                               description="at most this many")) -> dict[str, Any]:
    """Return live deployments (or every deployment with all=true), oldest first."""
    refuse_nul(prompt=prompt, id_prefix=id_prefix)
    states = daemon.queries.deployments(prompt=prompt, active_only=not all, id_prefix=id_prefix,
                                        limit=limit)
    return {"deployments": [deployment_view(daemon, s, detail=False) for s in states]}


@router.get("/deployments/{deployment_id}", response_model=DeploymentDetail,
            responses=error_responses(404),
            summary="Show a deployment with per-arm statistics")
def show_deployment(deployment_id: str, daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return the deployment, per-arm rates with intervals, and the decision a tick would take."""
    return deployment_view(daemon, _deployment(daemon, deployment_id), detail=True)


@router.post("/deployments/{deployment_id}/{action}", response_model=DeploymentActionResult,
             responses=_COMMAND_ERRORS,
             summary="Admin decision on a deployment")
def deployment_action(
    deployment_id: str,
    action: Literal["approve", "reject", "promote", "pause", "resume", "rollback"],
    daemon: DaemonDep, commands: CommandsDep, who: Admin, body: CommandBody | None = None,
) -> dict[str, Any]:
    """Apply approve/reject/promote/pause/resume/rollback; 409 with the reason if not allowed.

    Decided on the deployment as it is now: a tick or another admin that changed it first
    makes this one decide again (and answer 409 if the change forbids it).
    """
    body = body or CommandBody()
    outcome = commands.deployment_command(deployment_id, action, actor=who.actor,
                                          full=body.full, arm=body.arm, reason=body.reason)
    d = outcome.answer
    return {"deployment_id": deployment_id, "event": d.event_type, "reason": d.reason,
            "deployment": deployment_view(daemon, _deployment(daemon, deployment_id),
                                          detail=False)}


@router.post("/prompts/{name:path}/rollback", response_model=RollbackResult,
             responses=_COMMAND_ERRORS,
             summary="Roll a prompt back")
def rollback_prompt(name: NamePath, body: RollbackBody, daemon: DaemonDep,
                    commands: CommandsDep, who: Admin) -> dict[str, Any]:
    """Stop the running deployment, or move production back one step of its history.

    With no deployment running, production goes to the version it had before the move that
    made the current one current (twice goes back twice; it never toggles). ``from`` (the
    production version the caller saw) and ``deployment`` (the deployment it saw running)
    make a repeated rollback a no-op instead of a second step back; ``to`` names a version.
    """
    _prompt(daemon, name)
    outcome = commands.rollback(name, to=body.to, expected_from=body.from_,
                                deployment_id=body.deployment,
                                reason=body.reason, actor=who.actor)
    answer = outcome.answer
    return {"prompt": name, "deployment_rolled_back": answer["deployment"],
            "production": answer["production"], "changed": bool(outcome.events),
            "note": answer.get("already")}


@router.get("/prompts/{name:path}/history", response_model=History,
            responses=error_responses(404),
            summary="Timeline of versions and decisions")
def prompt_history(name: NamePath, daemon: DaemonDep, _: Admin,
                   limit: int = Query(500, ge=1, le=10_000)) -> dict[str, Any]:
    """Return versions, label moves, deployments and decisions, with who made each."""
    _prompt(daemon, name)
    history = daemon.queries.timeline(name, limit)
    tokens = daemon.live.tokens
    for entry in history:
        # Actors are recorded as "token:<id>"; people know their tokens by name.
        kind, _, token_id = entry["actor"].partition(":")
        record = tokens.get(token_id) if kind == "token" else None
        entry["actor_name"] = (record.name or None) if record is not None else None
    return {"prompt": name, "history": history}


@router.get("/prompts/{name:path}/candidates", response_model=CandidateList,
            responses=error_responses(404),
            summary="Candidate versions of a prompt")
def prompt_candidates(name: NamePath, daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return the machine-written candidates of a prompt with their rationale and fate."""
    _prompt(daemon, name)
    return {"candidates": daemon.queries.candidates(name)}


@router.get("/candidates", response_model=CandidateList,
            summary="Candidate versions of every prompt")
def all_candidates(daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return every machine-written candidate, newest first."""
    return {"candidates": daemon.queries.candidates()}


@router.get("/prompts/{name:path}/policy", response_model=PolicyView,
            responses=error_responses(404),
            summary="The prompt's canary policy")
def get_policy(name: NamePath, daemon: DaemonDep, commands: CommandsDep,
               _: Admin) -> dict[str, Any]:
    """Return the effective policy and the stored overrides."""
    _prompt(daemon, name)
    overrides = daemon.queries.policy_overrides(name)
    policy = commands.policy_for(name)
    return {"prompt": name, "overrides": overrides, "policy": policy.to_json(),
            "plan": policy.plan()}


@router.put("/prompts/{name:path}/policy", response_model=PolicyView,
            responses=error_responses(400, 404, 503),
            summary="Set the prompt's canary policy overrides")
def put_policy(name: NamePath, body: PolicyBody, daemon: DaemonDep, commands: CommandsDep,
               who: Admin) -> dict[str, Any]:
    """Validate and store overrides (policy.set); they apply to the next deployment."""
    _prompt(daemon, name)
    policy = _policy(daemon.default_policy, body.overrides)
    commands.set_policy(name, body.overrides, who.actor)
    return {"prompt": name, "overrides": body.overrides, "policy": policy.to_json(),
            "plan": policy.plan()}

