"""Simulated traffic for canary deployments: what the tests, the benchmark and policy tuning use.

Each arm behaves according to an ``ArmBehaviour``; ``simulate_traffic`` draws one analysis
interval of requests, split by the deployment's current weights, straight into sufficient
statistics (binomial counts, normal sums), so thousands of deployments simulate in seconds.
``RecurringUsers`` draws the requests instead from a fixed population of subjects who come
back (a heavy-tailed number of visits each), assigned sticky by hash as the SDK does
locally, and counts distinct subjects per arm and stratum as the service projection must.
``run_canary`` then plays decide / evolve until the deployment ends, exactly as the service's
canary job does, and returns the events it would have appended.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from analytics.moments import Moments
from deploy.assignment import CONTROL, bucket, bucket_ranges
from deploy.canary import decide_many
from deploy.decision import Decision
from deploy.policy import CanaryPolicy
from deploy.state import DeploymentState, evolve, start
from deploy.stats import ArmStats


@dataclass(frozen=True)
class ArmBehaviour:
    """The true rates and (normal) distributions of one arm's executions."""

    success: float = 0.80
    error: float = 0.02
    correction: float = 0.05
    log_latency_mean: float = 7.0  # ~1.1 s
    log_latency_sd: float = 0.5
    cost_mean: float = 0.002  # USD
    cost_sd: float = 0.001
    # Fraction of this arm's executions that never reach the log (and, with local SDK
    # assignment, never count as exposures): the classic source of sample-ratio mismatch.
    lost: float = 0.0


def simulate_traffic(
    rng: np.random.Generator,
    weights: Mapping[str, int],
    behaviours: Mapping[str, ArmBehaviour],
    requests: int,
    *,
    count_assignments: bool = True,
    count_subjects: bool = True,
) -> dict[str, ArmStats]:
    """Return one interval's statistics per arm for ``requests`` split by ``weights``.

    Every request is its own unit (no subject: the SDK hashes the request's id), so the
    distinct units are the executions that reach the log; ``count_subjects`` False leaves
    them uncounted, as a projection that does not count units would. With
    ``count_assignments`` False the daemon sees only executions (the SDK assigned locally),
    so lost executions show up in the exposure counts.
    """
    arms = list(weights)
    counts = rng.multinomial(requests, np.array([weights[a] for a in arms], dtype=float) / 10_000)
    result: dict[str, ArmStats] = {}
    for arm, assigned in zip(arms, counts.tolist(), strict=True):
        behaviour = behaviours[arm]
        n = assigned - int(rng.binomial(assigned, behaviour.lost)) if behaviour.lost else assigned
        result[arm] = _executions(
            rng, behaviour, n,
            assignments=assigned if count_assignments else 0,
            subjects=n if count_subjects else 0,
        )
    return result


def _executions(
    rng: np.random.Generator, behaviour: ArmBehaviour, n: int, *, assignments: int, subjects: int
) -> ArmStats:
    """Return the statistics of ``n`` executions of one arm."""
    return ArmStats(
        assignments=assignments,
        executions=n,
        subjects=subjects,
        success=Moments.from_proportion(int(rng.binomial(n, behaviour.success)), n),
        score=Moments(),
        log_latency=normal_moments(rng, n, behaviour.log_latency_mean, behaviour.log_latency_sd),
        cost=normal_moments(rng, n, behaviour.cost_mean, behaviour.cost_sd),
        errors=Moments.from_proportion(int(rng.binomial(n, behaviour.error)), n),
        corrections=int(rng.binomial(n, behaviour.correction)),
    )


@dataclass(frozen=True)
class RecurringUsers:
    """A fixed population of subjects who keep coming back, assigned sticky by hash.

    Each request comes from one subject, drawn in proportion to a heavy-tailed activity
    (Pareto with shape ``tail``: at 1.5 the busiest of 1,000 subjects makes ~3% of all
    requests and the top 100 ~40%). With few subjects an arm's traffic depends on who
    hashed into it, so a small first step can take long to collect its minimum. The daemon sees
    executions only (local SDK assignment) and counts, per stratum and arm, the distinct
    subjects it has seen, unless ``count_subjects`` is False (then the sample-ratio check
    falls back to executions, which these returning subjects cluster).
    """

    users: int = 1_000
    tail: float = 1.5
    count_subjects: bool = True

    def activity(self, rng: np.random.Generator) -> np.ndarray:
        """Return each subject's share of requests (sums to 1)."""
        weight = rng.pareto(self.tail, self.users) + 1.0
        return weight / weight.sum()


class _Visitors:
    """One simulated deployment's subjects: buckets, activity, who each stratum has seen."""

    def __init__(self, population: RecurringUsers, deployment_id: str,
                 rng: np.random.Generator) -> None:
        self.population = population
        self.cumulative = np.cumsum(population.activity(rng))
        self.buckets = np.array(
            [bucket(deployment_id, f"user-{i}") for i in range(population.users)]
        )
        self.seen: dict[int, np.ndarray] = {}

    def interval(
        self,
        rng: np.random.Generator,
        state: DeploymentState,
        behaviours: Mapping[str, ArmBehaviour],
        requests: int,
    ) -> dict[str, ArmStats]:
        """Return one interval's statistics per arm, with distinct subjects counted."""
        weights = state.weights()
        who = np.minimum(
            np.searchsorted(self.cumulative, rng.random(requests), side="right"),
            self.population.users - 1,
        )
        arms = [CONTROL, *(a for a in weights if a != CONTROL)]
        arm_of_user = np.zeros(self.population.users, dtype=int)
        for arm, (first, stop) in bucket_ranges(weights).items():
            arm_of_user[(self.buckets >= first) & (self.buckets < stop)] = arms.index(arm)
        served = arm_of_user[who]
        seen = self.seen.setdefault(state.stratum, np.zeros(self.population.users, dtype=bool))
        fresh = np.unique(who[~seen[who]])
        seen[fresh] = True
        executions = np.bincount(served, minlength=len(arms))
        newcomers = np.bincount(arm_of_user[fresh], minlength=len(arms))
        return {
            arm: _executions(
                rng, behaviours[arm], int(executions[k]), assignments=0,
                subjects=int(newcomers[k]) if self.population.count_subjects else 0,
            )
            for k, arm in enumerate(arms)
        }


def normal_moments(rng: np.random.Generator, n: int, mean: float, sd: float) -> Moments:
    """Return the moments of ``n`` normal draws, sampled from their exact joint law.

    The sum is normal and the sum of squared deviations is sd^2 times a chi-square with
    n - 1 degrees of freedom, independently: two draws instead of n.
    """
    if n == 0:
        return Moments()
    total = n * mean + sd * math.sqrt(n) * float(rng.standard_normal())
    spread = sd * sd * float(rng.chisquare(n - 1)) if n > 1 else 0.0
    return Moments(n, total, spread)


@dataclass
class CanaryRun:
    """The outcome of one simulated deployment."""

    state: DeploymentState
    events: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    stats: dict[int, dict[str, ArmStats]] = field(default_factory=dict)
    ticks: int = 0
    last_decision: Decision | None = None

    def apply(self, decision: Decision, at: float) -> None:
        """Return nothing; record the decision and fold its event, as the service would."""
        self.last_decision = decision
        if decision.event_type is not None:
            self.events.append((decision.event_type, decision.payload, at))
            after = evolve(self.state, decision.event_type, decision.payload, at)
            assert after is not None
            self.state = after

    def exposures(self, arm: str) -> int:
        """Return the executions ``arm`` served over the whole run."""
        return sum(s[arm].executions for s in self.stats.values() if arm in s)

    @property
    def trigger(self) -> str | None:
        """Return why the deployment ended (e.g. "harm", "srm"), or None if it has not."""
        if not self.events or not self.state.is_terminal:
            return None
        return self.events[-1][1].get("trigger")


def new_deployment(
    policy: CanaryPolicy,
    *,
    candidates: int = 1,
    deployment_id: str = "dep-sim",
    now: float = 0.0,
    actor: str = "promptd",
) -> tuple[DeploymentState, tuple[str, dict[str, Any], float]]:
    """Return a freshly started deployment (no approval gate) and its started event."""
    started = start(
        deployment_id,
        "sim/prompt",
        1,
        list(range(2, 2 + candidates)),
        policy,
        actor=actor,
        now=now,
        requires_approval=False,
    )
    state = evolve(None, "deployment.started", started.payload, now)
    assert state is not None
    return state, ("deployment.started", started.payload, now)


def run_canaries(
    rng: np.random.Generator,
    policy: CanaryPolicy,
    behaviours: Mapping[str, ArmBehaviour],
    *,
    runs: int,
    requests_per_tick: int,
    max_ticks: int = 1_000,
    count_assignments: bool = True,
    users: RecurringUsers | None = None,
    drift_per_tick: float = 0.0,
) -> list[CanaryRun]:
    """Return ``runs`` independent deployments ticked in lockstep until each ends.

    Every tick decides all still-running deployments with one ``decide_many`` call, as the
    service's canary job does. With ``users`` the requests come from that population of
    returning subjects (``RecurringUsers``) instead of each from a new one. With
    ``drift_per_tick`` every arm's success rate moves by that much per tick (time of day,
    traffic mix), the same for all arms: a drift no comparison may mistake for a difference.
    """
    candidates = len(behaviours) - 1
    start_behaviours = dict(behaviours)
    fleet = []
    visitors: dict[str, _Visitors] = {}
    for i in range(runs):
        state, started = new_deployment(policy, candidates=candidates, deployment_id=f"sim-{i}")
        fleet.append(CanaryRun(state=state, events=[started]))
        if users is not None:
            visitors[state.deployment_id] = _Visitors(users, state.deployment_id, rng)
    now = 0.0
    for tick in range(max_ticks):
        live = [run for run in fleet if not run.state.is_terminal]
        if not live:
            break
        now += policy.analysis_interval_seconds
        if drift_per_tick:
            shift = drift_per_tick * tick
            behaviours = {
                arm: replace(b, success=min(max(b.success + shift, 0.0), 1.0))
                for arm, b in start_behaviours.items()
            }
        for run in live:
            if visitors:
                crowd = visitors[run.state.deployment_id]
                traffic = crowd.interval(rng, run.state, behaviours, requests_per_tick)
            else:
                traffic = simulate_traffic(
                    rng,
                    run.state.weights(),
                    behaviours,
                    requests_per_tick,
                    count_assignments=count_assignments,
                )
            step = run.stats.setdefault(run.state.stratum, {})
            for arm, arm_stats in traffic.items():
                step[arm] = step[arm] + arm_stats if arm in step else arm_stats
            run.ticks += 1
        for run, decision in zip(
            live, decide_many([(r.state, r.stats) for r in live], now), strict=True
        ):
            run.apply(decision, now)
    return fleet


def run_canary(
    rng: np.random.Generator,
    policy: CanaryPolicy,
    behaviours: Mapping[str, ArmBehaviour],
    *,
    requests_per_tick: int,
    max_ticks: int = 1_000,
    count_assignments: bool = True,
    users: RecurringUsers | None = None,
) -> CanaryRun:
    """Return the run of one deployment ticked every analysis interval until it ends."""
    (run,) = run_canaries(
        rng,
        policy,
        behaviours,
        runs=1,
        requests_per_tick=requests_per_tick,
        max_ticks=max_ticks,
        count_assignments=count_assignments,
        users=users,
    )
    return run
