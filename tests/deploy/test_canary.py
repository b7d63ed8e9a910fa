"""The analysis tick: each rule of DESIGN.md section 6 on hand-built statistics."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from typing import Any

import pytest

from analytics.compare import compare_strata
from analytics.moments import Moments
from deploy.canary import decide, decide_many
from deploy.policy import CanaryPolicy, Guardrail
from deploy.state import DeploymentState, Phase, evolve, start
from deploy.stats import ArmStats

T0 = 10_000.0
POLICY = CanaryPolicy(min_samples_per_step=100, min_step_seconds=600)


def _normal(n: int, mean: float, sd: float) -> Moments:
    # Exactly the moments of n observations with this mean and sample standard deviation.
    return Moments.from_summary(n, mean, sd)


def arm(
    n: int,
    success: float = 0.80,
    *,
    errors: float = 0.02,
    corrections: float = 0.05,
    latency: float = 7.0,
    cost: float = 0.002,
    score: float | None = None,
    assignments: int | None = None,
) -> ArmStats:
    """Return the statistics of ``n`` executions with exactly these rates and means."""
    return ArmStats(
        assignments=n if assignments is None else assignments,
        executions=n,
        success=Moments.from_proportion(round(success * n), n),
        score=_normal(n, score, 0.2) if score is not None else Moments(),
        log_latency=_normal(n, latency, 0.5),
        cost=_normal(n, cost, 0.001),
        errors=Moments.from_proportion(round(errors * n), n),
        corrections=round(corrections * n),
    )


def deployment(
    policy: CanaryPolicy = POLICY,
    *,
    candidates: int = 1,
    step: int = 0,
    phase: Phase = Phase.RUNNING,
    actor: str = "promptd",
) -> DeploymentState:
    """Return a deployment at ``step`` (started at T0) in ``phase``."""
    started = start(
        "dep-1",
        "p",
        1,
        list(range(2, 2 + candidates)),
        policy,
        actor=actor,
        now=T0,
        requires_approval=phase == Phase.PENDING_APPROVAL,
    )
    state = evolve(None, "deployment.started", started.payload, T0)
    ids = {"deployment_id": "dep-1"}
    for target in range(1, step + 1):
        # One step at a time, as the canary moves: stratum and step index then coincide,
        # so the statistics below are keyed by either.
        state = evolve(state, "deployment.stepped", {**ids, "step_index": target}, T0)
    extra = {
        Phase.PAUSED: ("deployment.paused", ids),
        Phase.AWAITING_PROMOTION: ("deployment.awaiting_promotion", {**ids, "winner": "c1"}),
        Phase.ROLLED_BACK: ("deployment.rolled_back", ids),
        Phase.PROMOTED: ("deployment.promoted", {**ids, "winner": "c1"}),
    }.get(phase)
    if extra:
        state = evolve(state, extra[0], extra[1], T0)
    assert state is not None and state.phase == phase
    return state


def split(state: DeploymentState, total: int, **arms: dict[str, Any]) -> dict[str, ArmStats]:
    """Return one step's statistics with ``total`` executions split exactly by the weights."""
    return {
        name: arm(round(total * weight / 10_000), **arms.get(name, {}))
        for name, weight in state.weights().items()
    }


LATER = T0 + 600  # the minimum time of a step has passed


def test_no_decision_while_pending_approval_or_after_the_end() -> None:
    for phase in (Phase.PENDING_APPROVAL, Phase.ROLLED_BACK, Phase.PROMOTED):
        state = deployment(phase=phase)
        assert decide(state, {0: split(state, 40_000)}, LATER).event_type is None


def test_keeps_collecting_until_every_arm_has_its_minimum_samples() -> None:
    state = deployment()
    decision = decide(state, {0: split(state, 3_600)}, LATER)  # candidate: 90 of 100
    assert decision.event_type is None
    assert "c1 has 90 of 100" in decision.reason


def test_keeps_collecting_until_the_step_has_run_its_minimum_time() -> None:
    state = deployment()
    decision = decide(state, {0: split(state, 8_000)}, T0 + 599)
    assert decision.event_type is None and "599s of 600s" in decision.reason


def test_advances_one_step_when_there_is_no_harm_and_minimums_are_met() -> None:
    state = deployment()
    decision = decide(state, {0: split(state, 8_000)}, LATER)
    assert decision.event_type == "deployment.stepped"
    assert decision.payload["step_index"] == 1 and decision.payload["actor"] == "promptd"
    assert decision.payload["weights"] == {"control": 8_750, "c1": 1_250}
    after = evolve(state, "deployment.stepped", decision.payload, LATER)
    assert after is not None and after.step_index == 1


def test_rollback_when_candidate_is_worse_beyond_tolerance() -> None:
    state = deployment(step=3)
    decision = decide(state, {3: split(state, 4_000, c1={"success": 0.60})}, T0 + 1)
    assert decision.event_type == "deployment.rolled_back"
    assert decision.payload["trigger"] == "harm"
    assert "success_rate" in decision.reason
    harm = decision.evidence["arms"]["c1"]["metrics"]["success_rate"]
    assert harm["upper"] < 0 and harm["p"] < 0.05 and harm["n_candidate"] == 2_000


def test_guardrail_regression_rolls_back_even_when_the_primary_is_fine() -> None:
    state = deployment(step=3)
    decision = decide(state, {3: split(state, 4_000, c1={"latency": 7.3})}, T0 + 1)
    assert decision.event_type == "deployment.rolled_back"
    assert "latency" in decision.reason


@pytest.mark.parametrize(("tolerance", "rolled_back"), [(0.02, False), (0.0, True)])
def test_a_guardrail_loss_within_its_tolerance_is_accepted(
    tolerance: float, rolled_back: bool
) -> None:
    policy = POLICY.model_copy(
        update={"guardrails": (Guardrail(metric="error_rate", tolerance=tolerance),)}
    )
    state = deployment(policy, step=3)
    # Errors 2% -> 3% on 20,000 executions each: clearly worse, but by less than 2 points.
    decision = decide(state, {3: split(state, 40_000, c1={"errors": 0.03})}, T0 + 1)
    assert (decision.event_type == "deployment.rolled_back") is rolled_back


@pytest.mark.parametrize(("cost", "rolled_back"), [(0.00205, False), (0.0026, True)])
def test_relative_cost_tolerance_scales_with_controls_cost(cost: float, rolled_back: bool) -> None:
    policy = POLICY.model_copy(
        update={"guardrails": (Guardrail(metric="cost", tolerance=0.10, relative=True),)}
    )
    state = deployment(policy, step=3)
    decision = decide(state, {3: split(state, 40_000, c1={"cost": cost})}, T0 + 1)
    assert (decision.event_type == "deployment.rolled_back") is rolled_back


def test_sample_ratio_mismatch_halts_before_the_step_advances() -> None:
    state = deployment(step=1)
    # 880 of 7,880 executions in the candidate where its weight promises 12.5% (985):
    # chi-square p ~ 4e-4, below the 0.001 threshold.
    decision = decide(state, {1: {"control": arm(7_000), "c1": arm(880)}}, LATER)
    assert (decision.event_type, decision.payload["trigger"]) == ("deployment.rolled_back", "srm")
    assert decision.evidence["srm"]["mismatch"] is True
    assert decision.evidence["srm"]["p"] < 0.001


def test_a_moderate_mismatch_waits_for_the_step_boundary_but_a_gross_one_halts_at_once() -> None:
    state = deployment(step=1)
    moderate = {"control": arm(7_000), "c1": arm(880)}
    assert decide(state, {1: moderate}, T0 + 1).event_type is None
    gross = {"control": arm(7_000), "c1": arm(600)}
    decision = decide(state, {1: gross}, T0 + 1)
    assert (decision.event_type, decision.payload["trigger"]) == ("deployment.rolled_back", "srm")


def test_promotes_at_the_last_step_when_shown_non_inferior() -> None:
    state = deployment(step=3)
    decision = decide(state, {3: split(state, 40_000, c1={"success": 0.81})}, LATER)
    assert decision.event_type == "deployment.promoted"
    assert (decision.payload["winner"], decision.payload["version"]) == ("c1", 2)
    assert decision.evidence["arms"]["c1"]["promotion"]["lower"] > -0.01


def test_waits_for_promotion_approval_when_the_gate_is_on() -> None:
    state = deployment(POLICY.model_copy(update={"approval_before_promotion": True}), step=3)
    decision = decide(state, {3: split(state, 40_000, c1={"success": 0.81})}, LATER)
    assert decision.event_type == "deployment.awaiting_promotion"
    assert decision.payload["winner"] == "c1"


def test_required_improvement_is_not_met_by_mere_non_inferiority() -> None:
    policy = POLICY.model_copy(update={"require_improvement": True})
    state = deployment(policy, step=3)
    # 19,000 per arm: below the maximum of 20,000, so still waiting rather than inconclusive.
    assert decide(state, {3: split(state, 38_000)}, LATER).event_type is None
    better = decide(state, {3: split(state, 38_000, c1={"success": 0.83})}, LATER)
    assert (better.event_type, better.payload["trigger"]) == ("deployment.promoted", "improvement")


@pytest.mark.parametrize(
    ("actor", "on_inconclusive", "event_type"),
    [
        ("promptd", None, "deployment.rolled_back"),
        ("alice", None, "deployment.awaiting_promotion"),
        ("promptd", "promote", "deployment.promoted"),
    ],
)
def test_inconclusive_at_the_maximum_samples_follows_the_policy(
    actor: str, on_inconclusive: str | None, event_type: str
) -> None:
    policy = POLICY.model_copy(
        update={
            "require_improvement": True,
            "max_samples_per_arm": 2_000,
            "on_inconclusive": on_inconclusive,
        }
    )
    state = deployment(policy, step=3, actor=actor)
    decision = decide(state, {3: split(state, 4_000)}, LATER)
    assert decision.event_type == event_type
    assert decision.payload["trigger"] == "inconclusive"
    waiting = decide(state, {3: split(state, 3_998)}, LATER)  # 1,999 per arm
    assert waiting.event_type is None


def test_paused_deployment_rolls_back_on_harm_but_never_advances() -> None:
    state = deployment(phase=Phase.PAUSED)
    assert decide(state, {0: split(state, 8_000)}, LATER).event_type is None
    harmed = decide(state, {0: split(state, 80_000, c1={"success": 0.6})}, LATER)
    assert harmed.event_type == "deployment.rolled_back"


def test_awaiting_promotion_still_rolls_back_on_harm() -> None:
    state = deployment(step=3, phase=Phase.AWAITING_PROMOTION)
    assert decide(state, {3: split(state, 40_000)}, LATER).event_type is None
    harmed = decide(state, {3: split(state, 40_000, c1={"errors": 0.2})}, LATER)
    assert harmed.event_type == "deployment.rolled_back"


def test_arm_worse_than_another_is_eliminated() -> None:
    state = deployment(candidates=2, step=3)
    stats = split(
        state, 30_000, control={"success": 0.70}, c1={"success": 0.80}, c2={"success": 0.72}
    )
    decision = decide(state, {3: stats}, T0 + 1)
    assert decision.event_type == "deployment.arm_eliminated"
    assert (decision.payload["arm"], decision.payload["trigger"]) == ("c2", "elimination")
    assert decision.evidence["elimination"]["beaten_by"] == "c1"


def test_harmful_arm_is_eliminated_while_the_others_continue() -> None:
    state = deployment(candidates=2, step=3)
    stats = split(state, 30_000, c2={"success": 0.70})
    decision = decide(state, {3: stats}, T0 + 1)
    assert (decision.event_type, decision.payload["arm"]) == ("deployment.arm_eliminated", "c2")
    assert decision.payload["trigger"] == "harm"
    after = evolve(state, decision.event_type or "", decision.payload, T0 + 1)
    assert after is not None and after.weights() == {"control": 6_667, "c1": 3_333}


def test_survivor_is_chosen_by_the_weighted_objective() -> None:
    policy = POLICY.model_copy(update={"non_inferiority_margin": 0.05})
    state = deployment(policy, candidates=2, step=3)
    # c1 is a hair better on success but makes more errors; errors weigh 1 in the objective.
    stats = split(state, 15_000, c1={"success": 0.81, "errors": 0.03}, c2={"errors": 0.01})
    decision = decide(state, {3: stats}, LATER)
    assert (decision.event_type, decision.payload["winner"]) == ("deployment.promoted", "c2")
    arms = decision.evidence["arms"]
    assert arms["c2"]["objective"] > arms["c1"]["objective"]


def test_small_samples_never_conclude() -> None:
    state = deployment(step=3)
    tiny = {"control": arm(25, success=1.0), "c1": arm(25, success=0.0)}
    assert decide(state, {3: tiny}, T0 + 1).event_type is None


def test_mean_score_can_be_the_primary_metric() -> None:
    policy = POLICY.model_copy(update={"primary_metric": "mean_score"})
    state = deployment(policy, step=3)
    decision = decide(
        state, {3: split(state, 4_000, control={"score": 0.7}, c1={"score": 0.6})}, T0 + 1
    )
    assert decision.event_type == "deployment.rolled_back" and "mean_score" in decision.reason


def test_data_are_compared_within_steps_and_post_stratified() -> None:
    # Step 0 ran in a bad hour for everyone (success 0.5) with little candidate traffic;
    # step 1 in a good hour (0.9). Pooled, the candidate looks better than it is; within
    # steps it is identical to control, so nothing may be concluded against it.
    state = deployment(step=1)
    stats = {
        0: {"control": arm(9_750, success=0.5), "c1": arm(250, success=0.5)},
        1: {"control": arm(8_750, success=0.9), "c1": arm(1_250, success=0.9)},
    }
    decision = decide(state, stats, T0 + 1)
    estimate = decision.evidence["arms"]["c1"]["metrics"]["success_rate"]["estimate"]
    assert estimate == pytest.approx(0.0, abs=1e-12)


def test_evidence_is_strict_json_with_n_estimate_bounds_p_and_srm() -> None:
    state = deployment(step=3)
    decision = decide(state, {3: split(state, 4_000, c1={"success": 0.60})}, T0 + 1)
    text = json.dumps(decision.payload, allow_nan=False)
    evidence = json.loads(text)["evidence"]
    metric = evidence["arms"]["c1"]["metrics"]["success_rate"]
    assert set(metric) >= {"n_control", "n_candidate", "estimate", "lower", "upper", "p"}
    assert evidence["srm"]["p"] > 0.001
    assert set(evidence["arms"]["c1"]["metrics"]) == {
        "success_rate",
        "correction_rate",
        "error_rate",
        "latency",
        "cost",
    }


def test_deciding_many_deployments_at_once_equals_deciding_each() -> None:
    cases = [
        (deployment(), {0: split(deployment(), 8_000)}),
        (deployment(step=3), {3: split(deployment(step=3), 4_000, c1={"success": 0.6})}),
        (
            deployment(candidates=2, step=3),
            {
                3: split(
                    deployment(candidates=2, step=3),
                    30_000,
                    control={"success": 0.7},
                    c1={"success": 0.8},
                    c2={"success": 0.72},
                )
            },
        ),
        (deployment(phase=Phase.PROMOTED), {}),
    ]
    together = decide_many(cases, LATER)
    assert together == [decide(state, stats, LATER) for state, stats in cases]


def test_a_tick_leaves_the_garbage_collector_as_it_found_it() -> None:
    state = deployment()
    stats = {0: split(state, 8_000)}
    assert gc.isenabled()
    decide(state, stats, LATER)
    assert gc.isenabled()
    gc.disable()
    try:
        decide(state, stats, LATER)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_required_improvement_is_not_met_by_a_clear_non_inferiority() -> None:
    # 200,000 identical executions per arm: shown within a point of control beyond doubt,
    # and not shown better. Only the requirement stands between this and a promotion.
    policy = POLICY.model_copy(update={"max_samples_per_arm": 1_000_000})
    plain = deployment(policy, step=3)
    stats = {3: split(plain, 400_000)}
    promoted = decide(plain, stats, LATER)
    assert (promoted.event_type, promoted.payload["trigger"]) == (
        "deployment.promoted", "non_inferior",
    )
    strict = deployment(policy.model_copy(update={"require_improvement": True}), step=3)
    decision = decide(strict, stats, LATER)
    assert decision.event_type is None
    assert "not yet shown an improvement" in decision.reason


def test_of_several_harmful_arms_the_most_clearly_harmful_is_eliminated_first() -> None:
    state = deployment(candidates=3, step=3)
    stats = split(state, 40_000, c2={"success": 0.60}, c3={"success": 0.74})
    decision = decide(state, {3: stats}, T0 + 1)
    assert (decision.event_type, decision.payload["trigger"]) == (
        "deployment.arm_eliminated", "harm",
    )
    harmed = decision.evidence["arms"]
    assert harmed["c2"]["metrics"]["success_rate"]["p"] < harmed["c3"]["metrics"][
        "success_rate"]["p"] < 0.001  # both shown harmful; c2 far more clearly
    assert decision.payload["arm"] == "c2"


def test_an_arm_is_not_eliminated_on_evidence_only_a_test_against_the_best_would_accept() -> None:
    # c1 looks best; c2 and c3 trail it by 1.75 points on 15,000 executions each. Tested
    # against the best-looking arm alone (Holm over k - 1 = 2 pairs), c2 would go at
    # p <= alpha / 2. Every pair at alpha / (k (k - 1)) keeps it: the data chose c1.
    state = deployment(candidates=3, step=3)
    stats = split(state, 60_000, c1={"success": 12_263 / 15_000})
    policy = state.policy
    c1, c2 = stats["c1"].success, stats["c2"].success
    pair_alpha = policy.alpha_split(3).selection
    against_best = compare_strata([(c1, c2)], kind="proportion", side="less",
                                  alpha=policy.alpha, n_star=policy.promotion_n_star)
    every_pair = compare_strata([(c1, c2)], kind="proportion", side="two-sided",
                                alpha=2 * pair_alpha, n_star=policy.promotion_n_star)
    assert against_best.p_value <= policy.alpha / 2
    assert every_pair.p_value > 2 * pair_alpha
    decision = decide(state, {3: stats}, T0 + 1)
    assert decision.event_type is None, decision.reason


def test_sample_ratio_check_counts_distinct_subjects_not_executions() -> None:
    # A few heavy users make the candidate's executions look 30% short of its share; the
    # subjects assigned to it are exactly on it.
    state = deployment(step=1)
    stats = {1: {"control": replace(arm(7_000), subjects=1_750),
                 "c1": replace(arm(700), subjects=250)}}
    decision = decide(state, stats, LATER)
    assert decision.evidence["srm"]["unit"] == "subjects"
    assert decision.evidence["srm"]["observed"] == {"control": 1_750, "c1": 250}
    assert decision.event_type == "deployment.stepped"


def test_without_subject_counts_the_check_falls_back_to_what_the_data_has() -> None:
    state = deployment(step=1)
    counted = decide(state, {1: {"control": arm(7_000), "c1": arm(1_000)}}, LATER)
    assert counted.evidence["srm"]["unit"] == "assignments"
    local = {"control": arm(7_000, assignments=0), "c1": arm(700, assignments=0)}
    decision = decide(state, {1: local}, LATER)
    assert decision.evidence["srm"]["unit"] == "executions"
    assert (decision.event_type, decision.payload["trigger"]) == ("deployment.rolled_back", "srm")


def test_an_elimination_starts_a_new_stratum_checked_with_its_own_weights() -> None:
    state = deployment(candidates=2, step=1)
    ids = {"deployment_id": "dep-1", "arm": "c2"}
    after = evolve(state, "deployment.arm_eliminated", ids, T0 + 100)
    assert after is not None and (after.step_index, after.stratum) == (1, 2)
    # Stratum 1 ran at 1/12 per candidate, stratum 2 with c2's traffic back in control.
    weights = after.weights()
    assert weights == {"control": 9_167, "c1": 833}
    stats = {
        1: {"control": arm(2_500), "c1": arm(250), "c2": arm(250)},
        2: {"control": arm(5_500), "c1": arm(500)},
    }
    decision = decide(after, stats, LATER)
    srm = decision.evidence["srm"]
    assert srm["expected_share"] == {"control": 9_167.0, "c1": 833.0}  # control checked too
    assert srm["observed"] == {"control": 5_500, "c1": 500}
    assert decision.event_type == "deployment.stepped"  # 750 per arm over the step's strata


def test_by_default_an_inconclusive_canary_ends_at_the_planned_horizon() -> None:
    policy = POLICY.model_copy(
        update={"non_inferiority_margin": 0.05, "require_improvement": True}
    )
    state = deployment(policy, step=3)
    horizon = state.policy.planned_samples_per_arm
    assert state.policy.sample_cap == horizon < 20_000
    # The candidate equals control: never harmful, never shown better.
    waiting = decide(state, {3: split(state, 2 * (horizon - 10))}, LATER)
    assert waiting.event_type is None
    ended = decide(state, {3: split(state, 2 * horizon)}, LATER)
    assert (ended.event_type, ended.payload["trigger"]) == ("deployment.rolled_back",
                                                             "inconclusive")
    assert f"inconclusive at {horizon} samples per arm" in ended.reason


def test_without_detail_only_decisions_that_change_something_carry_evidence() -> None:
    collecting = deployment()
    harmed = deployment(step=3)
    cases = [
        (collecting, {0: split(collecting, 3_600)}),
        (harmed, {3: split(harmed, 4_000, c1={"success": 0.6})}),
    ]
    full = decide_many(cases, LATER)
    lean = decide_many(cases, LATER, detail=False)
    assert [(d.event_type, d.reason) for d in lean] == [(d.event_type, d.reason) for d in full]
    assert lean[0].evidence == {} and full[0].evidence["arms"]["c1"]["metrics"]
    assert lean[1] == full[1]  # an event keeps its whole evidence


def test_a_relative_tolerance_waits_for_controls_data() -> None:
    state = deployment(step=3)
    no_cost = {name: replace(stats, cost=Moments()) for name, stats in split(state, 4_000).items()}
    checked = decide(state, {3: no_cost}, T0 + 1).evidence["arms"]["c1"]["metrics"]
    assert "cost" not in checked and {"success_rate", "latency"} <= set(checked)
    with_cost = decide(state, {3: split(state, 4_000)}, T0 + 1).evidence["arms"]["c1"]["metrics"]
    assert with_cost["cost"]["null"] == pytest.approx(0.10 * 0.002, rel=0.05)
