"""The in-place arm fold of the arm-stats projection equals ``ArmStats``, bit for bit."""

from __future__ import annotations

import random

from deploy.stats import ArmStats
from service.projections.armfold import ArmFold


def _random_executions(rng: random.Random, n: int) -> list[dict[str, object]]:
    out = []
    for _ in range(n):
        out.append({
            "success": rng.choice([True, False, None]),
            "score": rng.choice([None, rng.random()]),
            # ints, zeros and sub-millisecond latencies: the 1 ms floor and int inputs too
            "latency_ms": rng.choice([None, 0, rng.randrange(5000), rng.uniform(0, 2), 1e6 *
                                      rng.random()]),
            "cost_usd": rng.choice([None, rng.uniform(0, 0.01), 0.0]),
            "error": rng.random() < 0.2,
        })
    return out


def test_arm_fold_gives_the_same_bits_as_record_execution() -> None:
    rng = random.Random(18)
    start = ArmStats().record_assignment(3).record_execution(success=True, latency_ms=10.0)
    executions = _random_executions(rng, 5000)
    expected = start
    for e in executions:
        expected = expected.record_assignment().record_execution(**e)  # type: ignore[arg-type]
    fold = ArmFold(start)
    for e in executions:
        fold.execution(**e)  # type: ignore[arg-type]
    got = fold.result()
    # Frozen dataclasses compare every float exactly: a single differing bit fails here.
    assert got == expected
    assert got.log_latency.m2 > 0 and got.success.n < got.executions  # the data exercised both
