"""Decisions on deployments: start one, an admin's command, a canary tick, the improver's.

Deployments live in their prompt's stream, so the invariants that span a prompt and its
deployments — one running deployment per prompt, a promotion moves production from what it
is now, a rollback sees the deployment it stops — are all decided on one stream version.
The rules themselves are the pure functions of ``deploy``; this module turns their
``Decision`` into typed events and refuses what the aggregate does not allow.
"""

from __future__ import annotations

from collections.abc import Sequence

from deploy.canary import command
from deploy.decision import Decision, TransitionError
from deploy.policy import CanaryPolicy
from deploy.state import DeploymentState, start
from service.commands.aggregates import PromptAggregate
from service.commands.handler import CommandRefused, Decide, Outcome
from service.contract import system, uuid7

PRODUCTION = "production"


def new_deployment_id() -> str:
    """Return a fresh deployment id (readable prefix, time-ordered suffix)."""
    return f"dep-{uuid7()}"


def decision_events(agg: PromptAggregate, state: DeploymentState,
                    d: Decision) -> list[system.SystemEvent]:
    """Return the typed events of a deployment decision: a promotion also moves production."""
    assert d.event_type is not None
    events = [system.from_decision(state.prompt, d.event_type, d.payload)]
    if d.event_type == system.DeploymentPromoted.TYPE:
        winner = str(d.payload["winner"])
        events.append(system.LabelMoved(
            prompt=state.prompt, label=PRODUCTION, version=state.version_of(winner),
            previous=agg.production, kind="promotion", deployment_id=state.deployment_id,
            reason=f"deployment {state.deployment_id} promoted {winner}",
            actor=str(d.payload.get("actor", system.SYSTEM_ACTOR))))
    return events


def stop(agg: PromptAggregate, state: DeploymentState, *, actor: str,
         reason: str) -> list[system.SystemEvent]:
    """Return the events rolling back ``state`` by an admin (production unchanged)."""
    try:
        d = command(state, "rollback", actor=actor, now=0.0, reason=reason)
    except TransitionError as exc:
        raise CommandRefused(409, "conflict", exc.reason) from exc
    return decision_events(agg, state, d)


def start_deployment(prompt: str, versions: Sequence[int], policy: CanaryPolicy, *,
                     actor: str, requires_approval: bool | None, machine_written: bool,
                     reason: str = "", supersede_machine: bool = True,
                     deployment_id: str | None = None) -> Decide[PromptAggregate]:
    """Return the decision starting a canary of ``versions`` against production.

    One deployment at a time: a running one is a 409 naming it — except that a person's
    deployment supersedes a machine-written one (``supersede_machine``): it ends as
    ``superseded`` with the person as actor, in the same append. Without
    ``supersede_machine`` every running deployment is a 409 (a person queueing behind it).
    """
    dep_id = deployment_id or new_deployment_id()

    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        if not agg.created:
            raise CommandRefused(404, "not_found", f"unknown prompt {prompt!r}")
        control = agg.production
        if control is None:
            raise CommandRefused(409, "conflict", f"prompt {prompt!r} has no production version")
        for v in versions:
            if v not in agg.versions:
                raise CommandRefused(404, "not_found", f"prompt {prompt!r} has no version {v}",
                                     [{"field": "versions", "message": f"no version {v}"}])
            if v == control:
                raise CommandRefused(422, "validation_error",
                                     f"versions: v{v} is already production (the control arm)",
                                     [{"field": "versions", "message": "candidate equals control"}])
        if len(set(versions)) != len(versions):
            raise CommandRefused(422, "validation_error", "versions: each version at most once",
                                 [{"field": "versions", "message": "duplicate version"}])
        events: list[system.SystemEvent] = []
        active = agg.active_deployment
        if active is not None:
            if not (supersede_machine and active.machine_written and not machine_written):
                # The detail names the holder, so a client queueing behind it (``promptd
                # deploy --wait``) can tell "held" from any other conflict.
                raise CommandRefused(409, "conflict", f"prompt {prompt!r} already has deployment "
                                     f"{active.deployment_id} ({active.phase.value}); one at a "
                                     "time", [{"field": "prompt",
                                               "message": f"held by {active.deployment_id}"}])
            events.append(system.DeploymentSuperseded(
                prompt=prompt, deployment_id=active.deployment_id, by=dep_id, actor=actor,
                trigger="superseded",
                reason=f"superseded by {actor}'s deployment {dep_id}"))
        d = start(dep_id, prompt, control, list(versions), policy, actor=actor, now=0.0,
                  requires_approval=requires_approval, machine_written=machine_written,
                  reason=reason)
        assert d.event_type is not None
        events.append(system.from_decision(prompt, d.event_type, d.payload))
        return Outcome(events, answer=dep_id)
    return decide


def admin_command(prompt: str, deployment_id: str, name: str, *, actor: str, full: bool = False,
                  arm: str | None = None, reason: str = "") -> Decide[PromptAggregate]:
    """Return the decision of an admin's approve/reject/promote/pause/resume/rollback."""
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        state = agg.deployments.get(deployment_id)
        if state is None:
            raise CommandRefused(404, "not_found", f"unknown deployment {deployment_id!r}")
        try:
            d = command(state, name, actor=actor, now=0.0,  # type: ignore[arg-type]
                        full=full, arm=arm, reason=reason)
        except TransitionError as exc:
            raise CommandRefused(409, "conflict", exc.reason) from exc
        return Outcome(decision_events(agg, state, d), answer=d)
    return decide


def tick_decision(state: DeploymentState, d: Decision) -> Decide[PromptAggregate]:
    """Return a canary tick's decision, valid only on the deployment state it was made on.

    The tick decides on read models; if the deployment changed since (an admin's rollback, a
    pause, another replica's tick), the decision no longer applies and nothing is appended:
    the next tick decides again on what is true then.
    """
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        if agg.deployments.get(state.deployment_id) != state:
            return Outcome([], answer=None)
        return Outcome(decision_events(agg, state, d), answer=d)
    return decide


def propose_candidates(prompt: str, base_version: int, candidates: Sequence[system.VersionCreated],
                       proposals: Sequence[system.CandidateProposed], policy: CanaryPolicy, *,
                       gated: bool, reason: str,
                       rejections: Sequence[str | None] = ()) -> Decide[PromptAggregate]:
    """Return the improver's decision: new versions, their proposals, and their canary.

    Version numbers are assigned here, on the aggregate; nothing is proposed if a deployment
    is active or production moved away from the version the candidates were written for.
    ``rejections`` (one per candidate, None for a candidate that may go live) records the
    candidates the offline gate refused: stored and marked rejected, never canaried.
    """
    refused = list(rejections) or [None] * len(candidates)

    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        if agg.active_deployment is not None or agg.production != base_version:
            return Outcome([], answer=[])
        first = agg.latest_version + 1
        numbers = list(range(first, first + len(candidates)))
        events: list[system.SystemEvent] = []
        live: list[int] = []
        for number, version, proposal, why in zip(numbers, candidates, proposals, refused,
                                                  strict=True):
            events.append(version.model_copy(update={"version": number}))
            events.append(proposal.model_copy(update={"version": number}))
            if why is None:
                live.append(number)
            else:
                events.append(system.CandidateRejected(prompt=prompt, version=number,
                                                       reason=why, actor=system.SYSTEM_ACTOR))
        if not live:
            return Outcome(events, answer=[])
        numbers = live
        d = start(new_deployment_id(), prompt, base_version, numbers, policy,
                  actor=system.SYSTEM_ACTOR, now=0.0, requires_approval=gated,
                  machine_written=True, reason=reason.format(
                      versions=", ".join(f"v{v}" for v in numbers)))
        assert d.event_type is not None
        events.append(system.from_decision(prompt, d.event_type, d.payload))
        return Outcome(events, answer=numbers)
    return decide
