"""Whole deployments on simulated traffic: error rates, power, SRM, restarts.

Each scenario runs many independent deployments with a fixed seed through the same
decide / evolve loop the service runs. Bounds on observed rates come from the binomial
distribution of a count over ``RUNS`` runs: a rate guaranteed to be at most ``p`` exceeds
``binom.ppf(0.999, RUNS, p)`` runs with probability under 0.001.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from scipy.stats import binom

from analytics.compare import compare
from analytics.moments import Moments
from analytics.power import sample_size_two_proportions
from deploy.canary import decide
from deploy.policy import CanaryPolicy
from deploy.state import Phase, evolve, fold
from deploy.testing import (
    ArmBehaviour,
    CanaryRun,
    RecurringUsers,
    new_deployment,
    run_canaries,
    simulate_traffic,
)

RUNS = 400
ALPHA = 0.05
# Default statistics; only the clock is shortened (two analysis ticks per step) and the
# maximum sample size lowered, so a run takes a dozen ticks.
SIM = CanaryPolicy(min_step_seconds=600, max_samples_per_arm=10_000, alpha=ALPHA)
SAME = {"control": ArmBehaviour(), "c1": ArmBehaviour()}


def _outcomes(runs: list[CanaryRun]) -> Counter[tuple[str, str | None]]:
    assert all(run.state.is_terminal for run in runs), "every simulated deployment must end"
    return Counter((run.state.phase.value, run.trigger) for run in runs)


def _at_most(rate: float, runs: int = RUNS) -> int:
    """Return the most runs a true rate of at most ``rate`` plausibly produces."""
    return int(binom.ppf(0.999, runs, rate))


def test_identical_candidate_is_rolled_back_for_harm_in_at_most_alpha_of_runs() -> None:
    outcomes = _outcomes(
        run_canaries(np.random.default_rng(11), SIM, SAME, runs=RUNS, requests_per_tick=4_000)
    )
    assert outcomes[("rolled_back", "harm")] <= _at_most(ALPHA)
    # SRM can only fire by chance here: at most 4 decision points at 0.001 and the
    # per-tick tripwire at 1e-5 over at most 20 ticks.
    assert outcomes[("rolled_back", "srm")] <= _at_most(4 * 0.001 + 20 * 1e-5)


def test_identical_candidate_is_promoted_as_an_improvement_in_at_most_alpha_of_runs() -> None:
    policy = SIM.model_copy(update={"require_improvement": True})
    outcomes = _outcomes(
        run_canaries(np.random.default_rng(12), policy, SAME, runs=RUNS, requests_per_tick=4_000)
    )
    assert outcomes[("promoted", "improvement")] <= _at_most(ALPHA)
    assert outcomes[("rolled_back", "harm")] <= _at_most(ALPHA)


def test_regression_from_80_to_70_percent_success_is_rolled_back_in_95_percent_of_runs() -> None:
    behaviours = {"control": ArmBehaviour(success=0.80), "c1": ArmBehaviour(success=0.70)}
    runs = run_canaries(
        np.random.default_rng(13), SIM, behaviours, runs=RUNS, requests_per_tick=2_000
    )
    outcomes = _outcomes(runs)
    rolled_back = sum(n for (phase, _), n in outcomes.items() if phase == "rolled_back")
    assert rolled_back >= 0.95 * RUNS
    assert outcomes[("rolled_back", "harm")] >= 0.90 * RUNS  # for the right reason
    # Caught on the small early steps, long before the candidate sees its maximum.
    assert np.median([run.exposures("c1") for run in runs]) < 1_000


def test_improvement_from_70_to_80_percent_success_is_promoted_in_90_percent_of_runs() -> None:
    behaviours = {"control": ArmBehaviour(success=0.70), "c1": ArmBehaviour(success=0.80)}
    outcomes = _outcomes(
        run_canaries(np.random.default_rng(14), SIM, behaviours, runs=RUNS, requests_per_tick=2_000)
    )
    assert outcomes[("promoted", "non_inferior")] >= 0.90 * RUNS


def test_injected_sample_ratio_mismatch_halts_the_deployment() -> None:
    # A fifth of the candidate's executions never reach the log and the SDK assigns
    # locally, so the daemon sees the candidate under-exposed; its outcomes look fine.
    behaviours = {"control": ArmBehaviour(), "c1": ArmBehaviour(lost=0.2)}
    runs = run_canaries(
        np.random.default_rng(15),
        SIM,
        behaviours,
        runs=50,
        requests_per_tick=4_000,
        count_assignments=False,
    )
    assert _outcomes(runs) == Counter({("rolled_back", "srm"): 50})
    assert all(run.events[-1][1]["evidence"]["srm"]["mismatch"] for run in runs)


def test_best_of_three_candidates_is_promoted() -> None:
    behaviours = {
        "control": ArmBehaviour(success=0.70),
        "c1": ArmBehaviour(success=0.70),
        "c2": ArmBehaviour(success=0.80),
        "c3": ArmBehaviour(success=0.75),
    }
    runs = run_canaries(
        np.random.default_rng(16), SIM, behaviours, runs=100, requests_per_tick=4_000
    )
    winners = Counter(run.state.winner for run in runs if run.state.phase == Phase.PROMOTED)
    assert winners["c2"] >= 90
    eliminated = Counter(
        e[1]["arm"] for run in runs for e in run.events if e[0] == "deployment.arm_eliminated"
    )
    assert eliminated["c1"] >= 90  # the weakest arm is dropped along the way


def test_state_rebuilt_from_the_log_takes_the_same_next_decision() -> None:
    rng = np.random.default_rng(17)
    behaviours = {
        "control": ArmBehaviour(success=0.70),
        "c1": ArmBehaviour(success=0.60),
        "c2": ArmBehaviour(success=0.80),
    }
    state, started = new_deployment(SIM, candidates=2)
    log = [started]
    stats: dict[int, dict] = {}
    now = 0.0
    seen = set()
    while not state.is_terminal and now < 100 * SIM.analysis_interval_seconds:
        step = stats.setdefault(state.stratum, {})
        for arm, arm_stats in simulate_traffic(rng, state.weights(), behaviours, 2_000).items():
            step[arm] = step[arm] + arm_stats if arm in step else arm_stats
        now += SIM.analysis_interval_seconds
        # A restart: the daemon reads the log back (as JSON) and folds it from scratch.
        rebuilt = fold(json.loads(json.dumps(log)))
        assert rebuilt == state
        decision = decide(state, stats, now)
        assert decide(rebuilt, stats, now) == decision
        if decision.event_type is not None:
            seen.add(decision.event_type)
            log.append((decision.event_type, decision.payload, now))
            after = evolve(state, decision.event_type, decision.payload, now)
            assert after is not None
            state = after
    assert {"deployment.stepped", "deployment.arm_eliminated"} <= seen
    assert state.is_terminal


# The statistics users get (planned horizon, tunings, alpha split); only the clock is
# shortened, and traffic raised so that a run takes a dozen ticks.
DEFAULTS = CanaryPolicy(min_step_seconds=600)


def test_identical_candidate_is_promoted_as_non_inferior_in_90_percent_of_runs() -> None:
    outcomes = _outcomes(
        run_canaries(np.random.default_rng(21), DEFAULTS, SAME, runs=RUNS,
                     requests_per_tick=20_000)
    )
    assert outcomes[("promoted", "non_inferior")] >= binom.ppf(0.001, RUNS, 0.90)


def test_candidate_one_point_better_is_promoted_in_95_percent_of_runs() -> None:
    behaviours = {"control": ArmBehaviour(success=0.80), "c1": ArmBehaviour(success=0.81)}
    outcomes = _outcomes(
        run_canaries(np.random.default_rng(22), DEFAULTS, behaviours, runs=RUNS,
                     requests_per_tick=20_000)
    )
    assert outcomes[("promoted", "non_inferior")] >= binom.ppf(0.001, RUNS, 0.95)


def test_candidate_two_points_worse_is_rolled_back_for_harm_before_the_cap() -> None:
    behaviours = {"control": ArmBehaviour(success=0.80), "c1": ArmBehaviour(success=0.78)}
    runs = run_canaries(np.random.default_rng(23), DEFAULTS, behaviours, runs=RUNS,
                        requests_per_tick=20_000)
    outcomes = _outcomes(runs)
    assert outcomes[("rolled_back", "harm")] >= binom.ppf(0.001, RUNS, 0.90)
    assert all(run.exposures("c1") < DEFAULTS.sample_cap for run in runs if run.trigger == "harm")


def test_ten_point_regression_is_caught_in_under_0_6_of_the_fixed_horizon_n() -> None:
    # The defaults exactly, at 400 requests per 5-minute tick: the candidate sees 10 per
    # tick at the 2.5% first step, where a large harm must be caught.
    behaviours = {"control": ArmBehaviour(success=0.80), "c1": ArmBehaviour(success=0.70)}
    runs = run_canaries(np.random.default_rng(24), CanaryPolicy(), behaviours, runs=RUNS,
                        requests_per_tick=400)
    assert _outcomes(runs)[("rolled_back", "harm")] == RUNS
    fixed = sample_size_two_proportions(0.80, 0.70, alpha=ALPHA, power=0.8).n_candidate
    quick = sum(run.exposures("c1") <= 0.6 * fixed for run in runs)
    # The median is at most 0.6 n exactly when at least half the runs stop by then.
    assert quick >= binom.ppf(0.001, RUNS, 0.5)


def test_three_identical_candidates_lose_an_arm_in_at_most_alpha_of_runs() -> None:
    behaviours = {"control": ArmBehaviour(), **{c: ArmBehaviour() for c in ("c1", "c2", "c3")}}
    runs = run_canaries(np.random.default_rng(25), SIM, behaviours, runs=RUNS,
                        requests_per_tick=8_000)
    _outcomes(runs)
    lost = sum(
        any(e[0] == "deployment.arm_eliminated" for e in run.events) or run.trigger == "harm"
        for run in runs
    )
    assert lost <= _at_most(ALPHA)


def test_recurring_sticky_subjects_do_not_trip_the_sample_ratio_check() -> None:
    # 1,000 subjects with heavy-tailed visits, three candidates, local SDK assignment.
    behaviours = {"control": ArmBehaviour(), **{c: ArmBehaviour() for c in ("c1", "c2", "c3")}}
    runs = run_canaries(np.random.default_rng(26), SIM, behaviours, runs=100,
                        requests_per_tick=2_000, users=RecurringUsers(users=1_000),
                        max_ticks=200)
    ticks = max(run.ticks for run in runs)
    # A chance mismatch: at most 4 decision points at 0.001 and the tripwire each tick.
    mismatches = sum(run.trigger == "srm" for run in runs)
    assert mismatches <= _at_most(4 * 0.001 + ticks * 1e-5, 100)
    assert all(run.last_decision.evidence["srm"]["unit"] == "subjects" for run in runs
               if run.last_decision is not None and run.last_decision.evidence)


def test_executions_of_returning_subjects_are_too_clustered_for_a_chi_square() -> None:
    # The same traffic counted by executions (a projection that records no subjects):
    # the reason the check counts subjects.
    behaviours = {"control": ArmBehaviour(), **{c: ArmBehaviour() for c in ("c1", "c2", "c3")}}
    runs = run_canaries(np.random.default_rng(26), SIM, behaviours, runs=100,
                        requests_per_tick=2_000,
                        users=RecurringUsers(users=1_000, count_subjects=False),
                        max_ticks=200)
    assert sum(run.trigger == "srm" for run in runs) >= 50


def test_a_drift_shared_by_all_arms_fools_a_pooled_comparison_but_not_the_canary() -> None:
    # Success falls for everyone while the candidate's share grows step by step: pooled,
    # the candidate's traffic is mostly late (worse); within strata it equals control.
    runs = run_canaries(np.random.default_rng(27), SIM, SAME, runs=RUNS,
                        requests_per_tick=4_000, drift_per_tick=-0.01)
    outcomes = _outcomes(runs)
    assert outcomes[("rolled_back", "harm")] <= _at_most(ALPHA)
    pooled_harm = 0
    for run in runs:
        control = sum((s["control"].success for s in run.stats.values()), Moments())
        candidate = sum((s["c1"].success for s in run.stats.values() if "c1" in s), Moments())
        verdict = compare(control, candidate, kind="proportion", side="less", alpha=ALPHA,
                          n_star=SIM.harm_n_star)
        pooled_harm += verdict.significant
    assert pooled_harm >= 0.9 * RUNS
