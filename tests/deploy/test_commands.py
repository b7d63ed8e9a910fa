"""Admin commands: each allowed transition yields its event; every other one is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.canary import COMMANDS, TransitionError, command
from deploy.policy import CanaryPolicy
from deploy.state import DeploymentState, Phase, evolve, start

T0 = 1_000.0


def _state(phase: Phase, *, candidates: int = 1, step: int = 0) -> DeploymentState:
    gated = phase == Phase.PENDING_APPROVAL
    event = start(
        "dep-1",
        "p",
        3,
        list(range(4, 4 + candidates)),
        CanaryPolicy(),
        actor="promptd",
        now=T0,
        requires_approval=gated,
    )
    state = evolve(None, "deployment.started", event.payload, T0)
    assert state is not None
    ids = {"deployment_id": "dep-1"}
    follow: list[tuple[str, dict[str, Any]]] = []
    if step:
        follow.append(("deployment.stepped", {**ids, "step_index": step}))
    follow += {
        Phase.PAUSED: [("deployment.paused", ids)],
        Phase.AWAITING_PROMOTION: [("deployment.awaiting_promotion", {**ids, "winner": "c1"})],
        Phase.PROMOTED: [("deployment.promoted", {**ids, "winner": "c1"})],
        Phase.ROLLED_BACK: [("deployment.rolled_back", ids)],
    }.get(phase, [])
    for event_type, payload in follow:
        state = evolve(state, event_type, payload, T0 + 1)
        assert state is not None
    assert state.phase == phase
    return state


def _run(state: DeploymentState, name: str, **kwargs: Any) -> tuple[str, DeploymentState]:
    decision = command(state, name, actor="alice", now=T0 + 5, **kwargs)  # type: ignore[arg-type]
    assert decision.event_type is not None
    payload = json.loads(json.dumps(decision.payload))
    assert payload["deployment_id"] == "dep-1" and payload["actor"] == "alice"
    assert payload["reason"]
    after = evolve(state, decision.event_type, payload, T0 + 5)
    assert after is not None
    return decision.event_type, after


@pytest.mark.parametrize(
    ("phase", "name", "event_type", "phase_after"),
    [
        (Phase.PENDING_APPROVAL, "approve", "deployment.approved", Phase.RUNNING),
        (Phase.AWAITING_PROMOTION, "approve", "deployment.promoted", Phase.PROMOTED),
        (Phase.PENDING_APPROVAL, "reject", "deployment.rejected", Phase.ROLLED_BACK),
        (Phase.AWAITING_PROMOTION, "reject", "deployment.rejected", Phase.ROLLED_BACK),
        (Phase.RUNNING, "pause", "deployment.paused", Phase.PAUSED),
        (Phase.PAUSED, "resume", "deployment.resumed", Phase.RUNNING),
        (Phase.PENDING_APPROVAL, "rollback", "deployment.rolled_back", Phase.ROLLED_BACK),
        (Phase.RUNNING, "rollback", "deployment.rolled_back", Phase.ROLLED_BACK),
        (Phase.PAUSED, "rollback", "deployment.rolled_back", Phase.ROLLED_BACK),
        (Phase.AWAITING_PROMOTION, "rollback", "deployment.rolled_back", Phase.ROLLED_BACK),
        (Phase.AWAITING_PROMOTION, "promote", "deployment.promoted", Phase.PROMOTED),
    ],
)
def test_allowed_command_emits_its_event_and_moves_the_phase(
    phase: Phase, name: str, event_type: str, phase_after: Phase
) -> None:
    emitted, after = _run(_state(phase), name)
    assert (emitted, after.phase) == (event_type, phase_after)


@pytest.mark.parametrize(
    ("phase", "name", "message"),
    [
        (Phase.RUNNING, "approve", "nothing to approve"),
        (Phase.PAUSED, "approve", "nothing to approve"),
        (Phase.RUNNING, "reject", "nothing to reject"),
        (Phase.PAUSED, "pause", "only a running deployment"),
        (Phase.AWAITING_PROMOTION, "pause", "only a running deployment"),
        (Phase.RUNNING, "resume", "only a paused deployment"),
        (Phase.PENDING_APPROVAL, "promote", "approve it before promoting"),
        (Phase.ROLLED_BACK, "promote", "already rolled_back"),
        (Phase.ROLLED_BACK, "rollback", "already rolled_back"),
        (Phase.ROLLED_BACK, "approve", "already rolled_back"),
        (Phase.PROMOTED, "rollback", "already promoted"),
        (Phase.PROMOTED, "pause", "already promoted"),
        (Phase.RUNNING, "launch", "unknown command"),
    ],
)
def test_invalid_command_raises_transition_error_with_a_reason(
    phase: Phase, name: str, message: str
) -> None:
    with pytest.raises(TransitionError, match=message) as raised:
        command(_state(phase), name, actor="alice", now=T0)  # type: ignore[arg-type]
    assert message in raised.value.reason


def test_every_command_is_refused_once_the_deployment_has_ended() -> None:
    for phase in (Phase.PROMOTED, Phase.ROLLED_BACK):
        for name in COMMANDS:
            with pytest.raises(TransitionError):
                command(_state(phase), name, actor="alice", now=T0)  # type: ignore[arg-type]


def test_promote_while_running_advances_exactly_one_step() -> None:
    emitted, after = _run(_state(Phase.RUNNING), "promote")
    assert emitted == "deployment.stepped"
    assert (after.phase, after.step_index) == (Phase.RUNNING, 1)


def test_promote_full_skips_the_remaining_steps() -> None:
    emitted, after = _run(_state(Phase.RUNNING), "promote", full=True)
    assert emitted == "deployment.promoted"
    assert (after.phase, after.winner) == (Phase.PROMOTED, "c1")


def test_promote_at_the_last_step_promotes() -> None:
    emitted, after = _run(_state(Phase.RUNNING, step=3), "promote")
    assert (emitted, after.phase) == ("deployment.promoted", Phase.PROMOTED)


def test_promote_with_several_live_arms_needs_the_winner_named() -> None:
    state = _state(Phase.RUNNING, candidates=2, step=3)
    with pytest.raises(TransitionError, match="name the winner"):
        command(state, "promote", actor="alice", now=T0)
    with pytest.raises(TransitionError, match="not a live candidate"):
        command(state, "promote", actor="alice", now=T0, arm="c3")
    _, after = _run(state, "promote", arm="c2")
    assert (after.phase, after.winner) == (Phase.PROMOTED, "c2")


def test_custom_reason_is_recorded_in_the_event() -> None:
    decision = command(_state(Phase.RUNNING), "rollback", actor="bob", now=T0, reason="pager")
    assert decision.payload["reason"] == "pager" and decision.payload["trigger"] == "admin"
