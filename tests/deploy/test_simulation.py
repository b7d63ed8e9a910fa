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

from deploy.canary import decide
from deploy.policy import CanaryPolicy
from deploy.state import Phase, evolve, fold
from deploy.testing import ArmBehaviour, CanaryRun, new_deployment, run_canaries, simulate_traffic

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
