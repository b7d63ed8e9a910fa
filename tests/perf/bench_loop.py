"""Benchmark: how much of the gap to the oracle prompt the closed loop closes.

Over several seeds, a real daemon process (fast scheduler settings) serves a simulated fleet
through the SDK. Printed per seed and in total: baseline success (the base prompt), the oracle
(a prompt that addresses every hidden failure mode), the success rate the loop reaches after
20k, 50k and 100k executions, harmful promotions (a promoted version whose expected
success is below its control's; target 0), candidates carrying a hidden harmful edit and the
exposures until each was rolled back, and whether any shipped text carries noise, a
polarity error ("Avoid: please ...") or the "unsuccessful execution" placeholder (target 0).
Target: >= 80% of the baseline-to-oracle gap closed by 100k executions, on each world
(``support-v1``, and ``support-v2`` with other failure modes and messy multilingual
corrections). Everything here is a simulation.

    .venv/bin/python tests/perf/bench_loop.py [--seeds 2] [--executions 100000] [--world W]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service.sdk import AdminClient
from service.simulation.demo import BASE_TEMPLATES, LOOP_PROMPT, ensure_prompts, fast_env
from service.simulation.fleet import Fleet, FleetConfig
from service.simulation.world import SIMULATION_TAG, World
from tests.support import start_process

CHECKPOINTS = (20_000, 50_000, 100_000)
WORLDS = ("support-v1", "support-v2")
# What must never reach a shipped prompt: corrector noise, a reason pasted after a fixed
# verb (which can invert it), the placeholder of failures nobody explained.
BAD_GUIDANCE = re.compile(r"Avoid:|unsuccessful execution|^\s*-\s*(thx|thanks|ok|k|n/a)\b",
                          re.IGNORECASE | re.MULTILINE)
# The loop's clock is executions, not wall time: no minimum step duration.
BENCH_POLICY = {"steps": [20.0, 50.0, 100.0], "min_samples_per_step": 200,
                "min_step_seconds": 0.0, "analysis_interval_seconds": 1.0,
                "max_samples_per_arm": 4000}


def run_seed(world_name: str, seed: int, executions: int, rate: float) -> dict[str, object]:
    """Run one seed of one world; return its figures."""
    world = World.named(world_name, seed)
    base = BASE_TEMPLATES[LOOP_PROMPT]
    with tempfile.TemporaryDirectory(prefix="promptd-bench-loop-") as tmp:
        env = {**fast_env(canary_policy=BENCH_POLICY, canary_interval_s=1.0,
                          mine_interval_s=5.0, improve_interval_s=5.0, log_level="warning"),
               "PROMPTD_SCHEDULER_ENABLED": "true"}
        proc = start_process(Path(tmp), extra_env=env)
        try:
            admin = AdminClient(proc.url, proc.admin_token)
            ensure_prompts(admin)
            fleet = Fleet(proc.url, proc.admin_token, world,
                          FleetConfig(prompts=[LOOP_PROMPT], agents=4, seed=seed,
                                      rate_per_s=rate, checkpoint_every=1_000))
            started = time.monotonic()
            fleet.run(max_executions=executions)
            fleet.close()
            elapsed = time.monotonic() - started
            deps = admin.get("/v1/deployments", params={"all": "true"})["deployments"]
            templates: dict[int, str] = {}

            def text(version: int) -> str:
                if version not in templates:
                    templates[version] = admin.get(
                        f"/v1/prompts/{LOOP_PROMPT}/versions/{version}")["template"]
                return templates[version]

            harmful_promoted, penalised_promoted, bad_text, exposures = 0, 0, 0, []
            for d in deps:
                shown = admin.get(f"/v1/deployments/{d['deployment_id']}")
                control = next(a["version"] for a in shown["arms_stats"] if a["arm"] == "control")
                for arm in shown["arms_stats"]:
                    if arm["arm"] == "control":
                        continue
                    won = d["phase"] == "promoted" and d["winner"] == arm["arm"]
                    if won:
                        worse = (world.expected_success(text(arm["version"]))
                                 < world.expected_success(text(control)))
                        harmful_promoted += worse
                        bad_text += bool(BAD_GUIDANCE.search(text(arm["version"])))
                    if not world.is_harmful(text(arm["version"])):
                        continue
                    if won:
                        penalised_promoted += 1  # a net improvement despite a hidden penalty
                    elif arm["eliminated"] or d["phase"] == "rolled_back":
                        exposures.append(arm["executions"])
            production = admin.get(f"/v1/prompts/{LOOP_PROMPT}")["labels"]["production"]
            final_expected = world.expected_success(text(production))
            admin.close()
        finally:
            proc.terminate()
    at = {k: next((rate for n, p, rate in fleet.stats.checkpoints if n >= k), None)
          for k in CHECKPOINTS}
    return {
        "world": world_name, "seed": seed, "baseline": world.expected_success(base),
        "oracle": world.expected_success(world.oracle_text(base)), "at": at,
        "final_expected": final_expected,
        "deployments": len(deps), "promoted": sum(d["phase"] == "promoted" for d in deps),
        "harmful_promoted": harmful_promoted, "harmful_exposures": exposures,
        "penalised_promoted": penalised_promoted, "bad_text": bad_text,
        "seconds": elapsed, "executions": fleet.stats.executions,
    }


def main() -> int:
    """Run every seed of every world and print the figures against the targets."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--world", action="append", choices=WORLDS,
                        help="a world to run (repeatable; default: every world)")
    # Paced: the jobs run on wall-clock intervals, so the fleet must not outrun them by
    # orders of magnitude (production traffic arrives over days, the jobs every few minutes).
    parser.add_argument("--rate", type=float, default=300.0, help="executions per second")
    args = parser.parse_args()
    ok = True
    for world_name in args.world or WORLDS:
        ok &= _run_world(world_name, args.seeds, args.executions, args.rate)
    return 0 if ok else 1


def _run_world(world_name: str, seeds: int, executions: int, rate: float) -> bool:
    results = []
    for seed in range(1, seeds + 1):
        r = run_seed(world_name, seed, executions, rate)
        results.append(r)
        at = "  ".join(f"{k // 1000}k: {v:.1%}" if v is not None else f"{k // 1000}k: -"
                       for k, v in r["at"].items())  # type: ignore[union-attr]
        print(f"{SIMULATION_TAG} {world_name} seed {r['seed']}: baseline {r['baseline']:.1%}  "
              f"oracle {r['oracle']:.1%}  measured (last 2,000) {at}  production expected "
              f"{r['final_expected']:.1%}  deployments {r['deployments']} promoted "
              f"{r['promoted']}  worse than control promoted {r['harmful_promoted']}  "
              f"promoted despite a hidden penalty {r['penalised_promoted']}  harmful "
              f"exposures {r['harmful_exposures']}  ({r['executions']:,} executions in "
              f"{r['seconds']:.0f}s)", flush=True)
    last = max(CHECKPOINTS[-1], 0) if executions >= CHECKPOINTS[-1] else None
    closed = []
    for r in results:
        gap = r["oracle"] - r["baseline"]  # type: ignore[operator]
        reached = r["at"].get(last) if last else r["final_expected"]  # type: ignore[union-attr]
        if reached is None:
            reached = r["final_expected"]
        closed.append((reached - r["baseline"]) / gap)  # type: ignore[operator]
    exposures = [e for r in results for e in r["harmful_exposures"]]  # type: ignore[attr-defined]
    harmful = sum(r["harmful_promoted"] for r in results)  # type: ignore[misc]
    bad = sum(r["bad_text"] for r in results)  # type: ignore[misc]
    mean_closed = statistics.mean(closed)
    print(f"{SIMULATION_TAG} {world_name}: gap closed by {executions:,} executions: "
          f"{', '.join(f'{c:.0%}' for c in closed)} (mean {mean_closed:.0%}; target >= 80%) "
          f"{'PASS' if mean_closed >= 0.8 else 'MISS'}")
    print(f"{SIMULATION_TAG} {world_name}: promoted versions worse than their control: "
          f"{harmful} (target 0) {'PASS' if harmful == 0 else 'MISS'}")
    print(f"{SIMULATION_TAG} {world_name}: shipped texts with noise, 'Avoid:' or the failure "
          f"placeholder: {bad} (target 0) {'PASS' if bad == 0 else 'MISS'}")
    print(f"{SIMULATION_TAG} {world_name}: exposures until a candidate with a hidden harmful "
          f"edit was rolled back: median "
          f"{statistics.median(exposures) if exposures else '-'} over {len(exposures)} arms")
    return mean_closed >= 0.8 and harmful == 0 and bad == 0


if __name__ == "__main__":
    sys.exit(main())
