"""Benchmark of the statistics engine: validity under peeking, speed to a decision, tick cost.

Run: .venv/bin/python tests/perf/bench_stats.py   (exits non-zero if a target is missed)

1. False-positive rate of A/A streams (0.80 vs 0.80) looked at after every batch of 10 per
   arm up to 2,000 per arm: (i) a fixed-horizon z-test re-run at every look, (ii) our
   confidence sequence. Target: (ii) <= alpha.
2. Samples per arm to a decision for regressions 0.80 -> 0.70 and 0.80 -> 0.75 with the
   canary's one-sided harm test, against the fixed-horizon n for 80% power. The canary
   must plan its fixed-horizon size for the smallest regression it guards against (here
   0.80 -> 0.75); target: a regression twice that size (0.80 -> 0.70) is caught with a
   median of at most half that n. The ratio to the n planned for 0.70 itself is printed
   too: there, always-valid monitoring costs roughly what a single fixed look does.
3. One analysis tick over 1,000 deployments x 5 metrics (SRM, five one-sided sequences,
   running intersections, Holm across metrics). Target: < 50 ms.

N* (where the sequence is tightest) is analytics' default, 1,000 observations in total, i.e.
500 per arm, where the 0.80 -> 0.70 regression is decided. (The canary itself tunes each
question separately: see ``analytics.planning`` and tests/perf/bench_canary.py.) A sweep is printed
to show the choice matters little between 500 and 2,000, and that 5,000 (GrowthBook's
default) costs the fast decisions about 40% more samples.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from analytics.batch import MomentsArray, compare_batch
from analytics.compare import compare
from analytics.fixed import two_proportion_z_test
from analytics.moments import Moments
from analytics.multiple import holm
from analytics.power import sample_size_two_proportions
from analytics.sequential import DEFAULT_N_STAR, running_update
from analytics.srm import srm_tests

ALPHA = 0.05
N_STAR = DEFAULT_N_STAR
BATCH = 10
Z_CRIT = 1.959963984540054


def cumulative_counts(
    rng: np.random.Generator, rate: float, looks: int, reps: int
) -> np.ndarray:
    """Return cumulative successes per look (rows) and replication (columns)."""
    return np.cumsum(rng.binomial(BATCH, rate, (looks, reps)), axis=0).astype(float)


def false_positive_rates(reps: int = 2_000, looks: int = 200, seed: int = 1) -> tuple[float, float]:
    """Return the A/A rejection rates of (naive re-run z-test, confidence sequence)."""
    rng = np.random.default_rng(seed)
    x_c, x_t = cumulative_counts(rng, 0.8, looks, reps), cumulative_counts(rng, 0.8, looks, reps)
    naive = np.zeros(reps, dtype=bool)
    sequential = np.zeros(reps, dtype=bool)
    for look in range(looks):
        n = np.full(reps, BATCH * (look + 1.0))
        pooled = (x_c[look] + x_t[look]) / (2 * n)
        se = np.sqrt(pooled * (1 - pooled) * 2 / n)
        z = np.divide(x_t[look] - x_c[look], n * se, out=np.zeros(reps), where=se > 0)
        if look == looks - 1:  # the inline z is our two_proportion_z_test, vectorised
            ref = two_proportion_z_test(int(x_c[look, 0]), int(n[0]), int(x_t[look, 0]), int(n[0]))
            assert abs(ref.statistic - z[0]) < 1e-9
        naive |= np.abs(z) >= Z_CRIT
        result = compare_batch(
            MomentsArray.from_proportions(x_c[look], n),
            MomentsArray.from_proportions(x_t[look], n),
            kind="proportion", alpha=ALPHA, n_star=N_STAR,
        )
        sequential |= result.p_value <= ALPHA
    return float(naive.mean()), float(sequential.mean())


def samples_to_decision(
    p_control: float, p_candidate: float, *, n_star: float = N_STAR, reps: int = 2_000,
    looks: int = 600, seed: int = 2,
) -> np.ndarray:
    """Return per replication the samples per arm at which the one-sided harm test first
    rejects (inf if not within ``looks`` batches)."""
    rng = np.random.default_rng(seed)
    x_c = cumulative_counts(rng, p_control, looks, reps)
    x_t = cumulative_counts(rng, p_candidate, looks, reps)
    stopped = np.full(reps, np.inf)
    for look in range(looks):
        n = np.full(reps, BATCH * (look + 1.0))
        result = compare_batch(
            MomentsArray.from_proportions(x_c[look], n),
            MomentsArray.from_proportions(x_t[look], n),
            kind="proportion", alpha=ALPHA, side="less", n_star=n_star,
        )
        newly = (result.p_value <= ALPHA) & np.isinf(stopped)
        stopped[newly] = n[0]
        if np.all(np.isfinite(stopped)):
            break
    return stopped


class TickState:
    """A synthetic fleet: 1,000 deployments, each with five metrics on two arms."""

    KINDS = (
        ("success", "proportion", "less", -0.02),
        ("corrections", "proportion", "greater", 0.01),
        ("errors", "proportion", "greater", 0.01),
        ("log_latency", "log_mean", "greater", 0.05),
        ("cost", "mean", "greater", 0.001),
    )

    def __init__(self, deployments: int, seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.n_c = rng.integers(200, 20_000, deployments).astype(float)
        self.n_t = np.floor(self.n_c * rng.uniform(0.05, 1.0, deployments))
        self.weights = np.column_stack([self.n_c, self.n_t]) / (self.n_c + self.n_t)[:, None]
        self.counts = np.column_stack([self.n_c, self.n_t])
        self.arms: list[tuple[MomentsArray, MomentsArray]] = []
        for _, kind, _, _ in self.KINDS:
            pair = []
            for n in (self.n_c, self.n_t):
                if kind == "proportion":
                    s = rng.binomial(n.astype(int), rng.uniform(0.01, 0.9, deployments))
                    pair.append(MomentsArray.from_proportions(s.astype(float), n))
                else:
                    mu, sd = rng.uniform(0, 6, deployments), rng.uniform(0.2, 1.0, deployments)
                    total = n * mu
                    pair.append(MomentsArray(n, total, (n - 1) * sd**2))
            self.arms.append((pair[0], pair[1]))
        shape = (deployments, len(self.KINDS))
        self.running = (np.full(shape, -np.inf), np.full(shape, np.inf), np.ones(shape))

    def tick(self) -> np.ndarray:
        """Run one analysis tick; return which deployments roll back."""
        srm = srm_tests(self.counts, self.weights)
        lows, highs, ps = [], [], []
        for (_, kind, side, tolerance), (control, candidate) in zip(
            self.KINDS, self.arms, strict=True
        ):
            r = compare_batch(control, candidate, kind=kind, alpha=ALPHA, side=side,
                              null=tolerance, n_star=N_STAR)
            lows.append(r.lower)
            highs.append(r.upper)
            ps.append(r.p_value)
        self.running = running_update(*self.running, np.column_stack(lows),
                                      np.column_stack(highs), np.column_stack(ps))
        harm = holm(self.running[2], alpha=ALPHA).reject.any(axis=1)
        return srm.mismatch | harm


def tick_seconds(deployments: int = 1_000, repeats: int = 50) -> float:
    """Return the median wall time of one vectorised analysis tick."""
    state = TickState(deployments)
    state.tick()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state.tick()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def scalar_compare_seconds(pairs: int = 5_000) -> float:
    """Return the wall time of ``pairs`` scalar ``compare`` calls (for reference)."""
    rng = np.random.default_rng(4)
    arms = [(Moments.from_proportion(int(rng.integers(700, 900)), 1_000),
             Moments.from_proportion(int(rng.integers(700, 900)), 1_000)) for _ in range(pairs)]
    start = time.perf_counter()
    for control, candidate in arms:
        compare(control, candidate, kind="proportion", side="less", null=-0.02, n_star=N_STAR)
    return time.perf_counter() - start


def describe(stops: np.ndarray) -> str:
    finite = np.isfinite(stops)
    return (f"median {np.median(stops):.0f}, p90 {np.percentile(stops, 90):.0f} per arm "
            f"({100 * finite.mean():.1f}% decided within {BATCH * 600} per arm)")


def main() -> int:
    """Print the figures with their targets; return 1 if any target is missed."""
    failures: list[str] = []
    print(f"alpha={ALPHA}, N*={N_STAR:.0f} total observations, looks every {BATCH} per arm\n")

    naive, ours = false_positive_rates()
    print("1. A/A false-positive rate, 200 looks up to 2,000 per arm (2,000 runs):")
    print(f"   (i)  fixed-horizon z-test re-run at every look: {naive:6.1%}   (no target)")
    print(f"   (ii) confidence sequence:                        {ours:6.1%}   "
          f"target <= {ALPHA:.0%}")
    if ours > ALPHA:
        failures.append("sequential false-positive rate above alpha")

    print("\n2. Samples per arm to a decision, one-sided harm test (2,000 runs each):")
    plan = {
        effect: sample_size_two_proportions(0.80, effect, alpha=ALPHA, power=0.8, side="less")
        for effect in (0.70, 0.75)
    }
    stops = {effect: samples_to_decision(0.80, effect) for effect in (0.70, 0.75)}
    for effect in (0.70, 0.75):
        print(f"   0.80 -> {effect:.2f}: {describe(stops[effect])}; fixed-horizon n "
              f"(one-sided, 80% power) {plan[effect].n_control}")
    planned = plan[0.75].n_control
    median_70 = float(np.median(stops[0.70]))
    print(f"   median for 0.80 -> 0.70 = {median_70:.0f} vs half the planned n (0.80 -> 0.75) = "
          f"{planned / 2:.0f}   target <= {planned / 2:.0f}")
    print(f"   (ratio to the fixed n planned for 0.70 itself: "
          f"{median_70 / plan[0.70].n_control:.2f})")
    if median_70 > planned / 2:
        failures.append("median samples to detect 0.80 -> 0.70 above half the planned n")

    print("\n   N* sweep (median per arm, 0.80 -> 0.70 / 0.80 -> 0.75, 1,000 runs):")
    for n_star in (500.0, 1_000.0, 2_000.0, 5_000.0):
        fast = samples_to_decision(0.80, 0.70, n_star=n_star, reps=1_000, seed=5)
        slow = samples_to_decision(0.80, 0.75, n_star=n_star, reps=1_000, seed=6)
        print(f"   N*={n_star:6.0f}: {np.median(fast):5.0f} / {np.median(slow):5.0f}")

    seconds = tick_seconds()
    print("\n3. One analysis tick, 1,000 deployments x 5 metrics (vectorised, median of 50):")
    print(f"   {seconds * 1e3:.2f} ms   target < 50 ms")
    if seconds >= 0.050:
        failures.append("analysis tick slower than 50 ms")
    scalar = scalar_compare_seconds()
    print(f"   for reference, 5,000 scalar compare() calls: {scalar * 1e3:.0f} ms (no target)")

    if failures:
        print("\nMISSED: " + "; ".join(failures))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
