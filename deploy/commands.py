"""Admin commands on a deployment: approve, reject, promote, pause, resume, rollback.

Pure like the tick: a command returns the event to append, or raises ``TransitionError``
(the service answers 409) with a reason naming what the deployment's phase allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from deploy.decision import Decision, TransitionError, decision
from deploy.state import TERMINAL, DeploymentState, Phase

CommandName = Literal["approve", "reject", "promote", "pause", "resume", "rollback"]
COMMANDS: tuple[str, ...] = ("approve", "reject", "promote", "pause", "resume", "rollback")


def command(
    state: DeploymentState,
    name: CommandName,
    *,
    actor: str,
    now: float,
    full: bool = False,
    reason: str = "",
    arm: str | None = None,
) -> Decision:
    """Return the event an admin command produces; raises ``TransitionError`` if not allowed.

    ``promote`` moves a running deployment one step forward, or promotes it at the last
    step, when awaiting approval, or with ``full`` (skip the remaining steps); with several
    live candidates ``arm`` names the winner.
    """
    del now  # the event's recorded time is what the fold uses
    phase = state.phase
    why = reason or f"{name} by {actor}"

    def event(event_type: str, **fields: Any) -> Decision:
        return decision(event_type, state.deployment_id, actor=actor, reason=why, **fields)

    if name not in COMMANDS:
        raise TransitionError(f"unknown command {name!r}; commands are {', '.join(COMMANDS)}")
    if phase in TERMINAL:
        raise TransitionError(
            f"deployment {state.deployment_id} is already {phase.value}; "
            f"cannot {name} it (start a new deployment instead)"
        )
    if name == "approve":
        if phase == Phase.PENDING_APPROVAL:
            return event("deployment.approved")
        if phase == Phase.AWAITING_PROMOTION and state.winner is not None:
            return event(
                "deployment.promoted",
                winner=state.winner,
                version=state.version_of(state.winner),
                full=True,
                trigger="approved",
            )
        raise TransitionError(f"nothing to approve: deployment is {phase.value}")
    if name == "reject":
        if phase in (Phase.PENDING_APPROVAL, Phase.AWAITING_PROMOTION):
            return event("deployment.rejected")
        raise TransitionError(
            f"nothing to reject: deployment is {phase.value} (use rollback to stop it)"
        )
    if name == "pause":
        if phase == Phase.RUNNING:
            return event("deployment.paused")
        raise TransitionError(f"only a running deployment can be paused; it is {phase.value}")
    if name == "resume":
        if phase == Phase.PAUSED:
            return event("deployment.resumed")
        raise TransitionError(f"only a paused deployment can be resumed; it is {phase.value}")
    if name == "rollback":
        return event("deployment.rolled_back", trigger="admin")
    return _promote_command(state, event, full=full, arm=arm)


def _promote_command(
    state: DeploymentState, event: Callable[..., Decision], *, full: bool, arm: str | None
) -> Decision:
    if state.phase == Phase.PENDING_APPROVAL:
        raise TransitionError("deployment is pending approval; approve it before promoting")
    live = [a.name for a in state.live_candidates]
    if arm is not None and arm not in live:
        raise TransitionError(f"{arm!r} is not a live candidate arm (live: {', '.join(live)})")
    if state.phase == Phase.AWAITING_PROMOTION and arm is None:
        arm = state.winner
    if full or state.at_last_step or state.phase == Phase.AWAITING_PROMOTION:
        if arm is None:
            if len(live) > 1:
                raise TransitionError(f"several live arms ({', '.join(live)}): name the winner")
            arm = live[0]
        return event(
            "deployment.promoted",
            winner=arm,
            version=state.version_of(arm),
            full=full,
            trigger="admin",
        )
    target = state.step_index + 1
    return event(
        "deployment.stepped",
        from_step=state.step_index,
        step_index=target,
        step_percent=state.policy.steps[target],
        weights=state.weights_at(target, state.eliminated),
        trigger="admin",
    )
