"""The deployment fold: every event moves the state exactly as the log says, and no further."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.policy import CanaryPolicy
from deploy.state import DeploymentState, Phase, evolve, fold, start

T0 = 1_000.0


def _started(candidates: int = 1, *, approval: bool = False, **policy: Any) -> DeploymentState:
    event = start(
        "dep-1",
        "support/triage",
        3,
        list(range(4, 4 + candidates)),
        CanaryPolicy(**policy),
        actor="promptd",
        now=T0,
        requires_approval=approval,
    )
    state = evolve(None, event.event_type or "", event.payload, T0)
    assert state is not None
    return state


def _apply(state: DeploymentState, event_type: str, at: float, **fields: Any) -> DeploymentState:
    after = evolve(state, event_type, {"deployment_id": state.deployment_id, **fields}, at)
    assert after is not None
    return after


def test_started_event_is_json_and_folds_into_a_running_deployment_at_step_zero() -> None:
    event = start("dep-1", "p", 3, [4, 5], CanaryPolicy(), actor="promptd", now=T0)
    payload = json.loads(json.dumps(event.payload))
    state = evolve(None, "deployment.started", payload, T0)
    assert state is not None
    assert (state.phase, state.step_index, state.started_at) == (Phase.RUNNING, 0, T0)
    assert [(a.name, a.version) for a in state.arms] == [("control", 3), ("c1", 4), ("c2", 5)]
    assert state.machine_written is True
    assert state.policy == CanaryPolicy()
    assert payload["actor"] == "promptd" and payload["reason"]


def test_started_by_an_admin_counts_as_human_written() -> None:
    event = start("dep-1", "p", 3, [4], CanaryPolicy(), actor="alice", now=T0)
    assert event.payload["machine_written"] is False


@pytest.mark.parametrize("versions", [[], [4, 5, 6, 7]])
def test_start_rejects_no_candidates_or_more_than_three(versions: list[int]) -> None:
    with pytest.raises(ValueError, match="1 to 3 candidates"):
        start("dep-1", "p", 3, versions, CanaryPolicy(), actor="promptd", now=T0)


def test_approval_gate_holds_traffic_at_control_until_approved() -> None:
    state = _started(approval=True)
    assert state.phase == Phase.PENDING_APPROVAL
    assert state.weights() == {"control": 10_000}
    approved = _apply(state, "deployment.approved", T0 + 50)
    assert approved.phase == Phase.RUNNING
    assert approved.step_started_at == T0 + 50  # the step clock starts with the traffic
    assert approved.weights() == {"control": 9_750, "c1": 250}


def test_generic_approval_granted_for_this_deployment_also_approves() -> None:
    state = _started(approval=True)
    assert _apply(state, "approval.granted", T0 + 1).phase == Phase.RUNNING
    other = evolve(state, "approval.granted", {"deployment_id": "dep-2"}, T0 + 1)
    assert other == state


def test_stepped_moves_to_the_named_step_and_restarts_the_step_clock() -> None:
    state = _apply(_started(), "deployment.stepped", T0 + 60, from_step=0, step_index=1)
    assert (state.step_index, state.step_started_at) == (1, T0 + 60)
    assert state.weights() == {"control": 8_750, "c1": 1_250}


def test_duplicate_or_backward_step_is_ignored() -> None:
    state = _apply(_started(), "deployment.stepped", T0 + 60, from_step=0, step_index=1)
    again = _apply(state, "deployment.stepped", T0 + 70, from_step=0, step_index=1)
    assert again == state


def test_pause_and_resume_keep_the_step_and_its_weights() -> None:
    state = _apply(_started(), "deployment.stepped", T0 + 60, from_step=0, step_index=1)
    paused = _apply(state, "deployment.paused", T0 + 70)
    assert paused.phase == Phase.PAUSED and paused.weights() == state.weights()
    resumed = _apply(paused, "deployment.resumed", T0 + 80)
    assert resumed.phase == Phase.RUNNING and resumed.step_started_at == T0 + 60


def test_eliminated_arm_gives_its_traffic_back_to_control() -> None:
    state = _started(3)
    out = _apply(state, "deployment.arm_eliminated", T0 + 5, arm="c2")
    assert out.eliminated == ("c2",) and out.eliminated_in_step == (("c2", 0),)
    assert out.weights() == {"control": 9_750, "c1": 125, "c3": 125}


def test_last_live_arm_is_never_eliminated() -> None:
    state = _started(1)
    assert _apply(state, "deployment.arm_eliminated", T0 + 5, arm="c1").eliminated == ()


def test_awaiting_promotion_then_approval_promotes_the_held_winner() -> None:
    state = _apply(_started(2), "deployment.awaiting_promotion", T0 + 5, winner="c2")
    assert (state.phase, state.winner) == (Phase.AWAITING_PROMOTION, "c2")
    promoted = _apply(state, "deployment.approved", T0 + 9)
    assert (promoted.phase, promoted.winner, promoted.ended_at) == (Phase.PROMOTED, "c2", T0 + 9)
    assert promoted.weights() == {"c2": 10_000}


def test_eliminating_the_held_winner_returns_the_deployment_to_the_race() -> None:
    state = _apply(_started(2), "deployment.awaiting_promotion", T0 + 5, winner="c2")
    out = _apply(state, "deployment.arm_eliminated", T0 + 6, arm="c2")
    assert (out.phase, out.winner, out.eliminated) == (Phase.RUNNING, None, ("c2",))


def test_promoted_gives_the_winner_all_traffic_and_records_why() -> None:
    state = _apply(_started(), "deployment.promoted", T0 + 9, winner="c1", reason="shown")
    assert state.phase == Phase.PROMOTED and state.weights() == {"c1": 10_000}
    assert (state.outcome_reason, state.ended_at) == ("shown", T0 + 9)


def test_rolled_back_returns_all_traffic_to_control() -> None:
    state = _apply(_started(2), "deployment.rolled_back", T0 + 9, reason="harm")
    assert state.phase == Phase.ROLLED_BACK and state.weights() == {"control": 10_000}


def test_rejected_at_the_start_gate_ends_the_deployment_without_traffic() -> None:
    state = _apply(_started(approval=True), "deployment.rejected", T0 + 9)
    assert state.phase == Phase.ROLLED_BACK and state.weights() == {"control": 10_000}


def test_rejection_is_ignored_once_running() -> None:
    state = _started()
    assert _apply(state, "deployment.rejected", T0 + 9) == state


@pytest.mark.parametrize(
    ("event_type", "fields"),
    [
        ("deployment.stepped", {"from_step": 0, "step_index": 1}),
        ("deployment.promoted", {"winner": "c1"}),
        ("deployment.resumed", {}),
        ("deployment.paused", {}),
        ("deployment.approved", {}),
    ],
)
def test_events_after_a_rollback_do_not_resurrect_the_deployment(
    event_type: str, fields: dict[str, Any]
) -> None:
    ended = _apply(_started(), "deployment.rolled_back", T0 + 9)
    assert _apply(ended, event_type, T0 + 10, **fields) == ended


def test_unrelated_events_leave_the_state_alone() -> None:
    state = _started()
    assert evolve(state, "execution", {"deployment_id": "dep-1"}, T0 + 1) == state
    assert evolve(None, "deployment.stepped", {"deployment_id": "dep-1"}, T0) is None
    second_start = start("dep-1", "p", 1, [9], CanaryPolicy(), actor="x", now=T0)
    assert evolve(state, "deployment.started", second_start.payload, T0 + 1) == state


def test_fold_equals_evolving_one_event_at_a_time() -> None:
    started = start("dep-1", "p", 3, [4], CanaryPolicy(), actor="promptd", now=T0)
    events = [
        ("deployment.started", started.payload, T0),
        ("deployment.stepped", {"deployment_id": "dep-1", "step_index": 1}, T0 + 10),
        ("deployment.paused", {"deployment_id": "dep-1"}, T0 + 20),
    ]
    state = fold(events)
    assert state is not None
    assert (state.phase, state.step_index, state.last_changed_at) == (Phase.PAUSED, 1, T0 + 20)


def test_full_split_of_any_candidate_count_gives_every_arm_an_equal_share() -> None:
    for candidates, share in [(1, 5_000), (2, 3_333), (3, 2_500)]:
        state = _started(candidates)
        weights = state.weights_at(state.policy.last_step)
        assert all(weights[a.name] == share for a in state.candidates)
        assert sum(weights.values()) == 10_000


def test_state_to_json_is_json_serialisable() -> None:
    text = json.dumps(_started(2).to_json())
    assert json.loads(text)["weights"] == {"control": 9_668, "c1": 166, "c2": 166}


def test_weights_are_a_fresh_dict_each_time() -> None:
    state = _started()
    state.weights()["c1"] = 0
    assert state.weights() == {"control": 9_750, "c1": 250}
    with pytest.raises(KeyError, match="no arm 'c7'"):
        state.version_of("c7")


def test_every_change_of_weights_starts_a_new_stratum_and_nothing_else_does() -> None:
    state = _started(2, approval=True)
    assert (state.stratum, state.stratum_steps) == (0, (0,))  # control only, awaiting
    state = _apply(state, "deployment.approved", T0 + 1)
    assert (state.stratum, state.step_index) == (1, 0)  # traffic starts: new weights
    state = _apply(state, "deployment.stepped", T0 + 2, from_step=0, step_index=1)
    state = _apply(state, "deployment.paused", T0 + 3)
    state = _apply(state, "deployment.resumed", T0 + 4)
    assert (state.stratum, state.step_index) == (2, 1)  # a pause keeps the weights
    state = _apply(state, "deployment.arm_eliminated", T0 + 5, arm="c2")
    assert (state.stratum, state.step_index) == (3, 1)  # an elimination mid-step does not
    assert state.stratum_steps == (0, 0, 1, 1)
    assert state.strata_of_step(1) == (2, 3)
    assert state.to_json()["stratum"] == 3


def test_without_eliminations_stratum_and_step_coincide() -> None:
    state = _started(1)
    for step in (1, 2, 3):
        state = _apply(state, "deployment.stepped", T0 + step, from_step=step - 1,
                       step_index=step)
        assert state.stratum == state.step_index == step
