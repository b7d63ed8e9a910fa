"""Commands on the improvement loop: mined patterns, jobs, and the simulated fleet."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from service.cli.base import AddCommand, client, find_token
from service.cli.output import emit, table, ts

_TREND = {"new": "new", "growing": "up", "stable": "flat", "shrinking": "down",
          "resolved": "gone"}


def cmd_patterns(args: argparse.Namespace) -> int:
    """Show a prompt's mined failure patterns as a table."""
    data = client(args).get(f"/v1/prompts/{args.name}/patterns")

    def human(d: dict[str, Any]) -> str:
        if not d["patterns"]:
            return f"{d['prompt']}: no failure patterns mined yet"
        rows = []
        for p in d["patterns"]:
            example = next((e.get("corrected_output") or e.get("reason") or ""
                            for e in p["examples"]), p["representative_reason"])
            rows.append((p["pattern_id"][:10], p["label"][:30], p["size"],
                         f"{p['share']:.1%}", _TREND.get(p["status"], p["status"]),
                         f"{p['severity_score']:.1f}", (example or "").replace("\n", " ")[:48]))
        out = table(rows, ["id", "label", "size", "share", "trend", "severity", "example"])
        out += ("\nshare: its records in the latest window over that window's executions;"
                "\ntrend: its size against earlier windows; severity: the sum over its records"
                "\nof their weight (a correction's severity: low 1, medium 2, high 3, critical"
                "\n5; a failed execution 1); ranked by that sum in the latest window")
        out += f"\nmined {ts(d['mined_at'])}"
        if d["anomalies"]:
            out += "".join(f"\nanomaly: {a['metric']} at {a['rate']:.1%} (z={a['z']:.1f})"
                           for a in d["anomalies"])
        return out

    emit(args, data, human)
    return 0


def cmd_jobs_run(args: argparse.Namespace) -> int:
    """Run a scheduled job (mine, improve, canary) now."""
    data = client(args).post(f"/v1/jobs/{args.job}")
    emit(args, data, lambda d: f"{d['job']}: ok ({d['result']})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the closed loop on a fresh embedded daemon with a simulated fleet."""
    from service.simulation.demo import run_demo

    return run_demo(duration_s=args.duration, seed=args.seed,
                    data_dir=Path(args.data_dir) if args.data_dir else None,
                    agents=args.agents, rate_per_s=args.rate or None)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the simulated fleet against a running daemon."""
    from service.simulation.demo import run_simulate

    url = args.url or os.environ.get("PROMPTD_URL") or "http://127.0.0.1:8077"
    return run_simulate(url, find_token(args.token), duration_s=args.duration,
                        seed=args.seed, agents=args.agents, rate_per_s=args.rate or None,
                        harmful=args.harmful)


def register(sub: Any, add: AddCommand) -> None:
    """Add patterns, jobs run, demo and simulate."""
    p = add("patterns", cmd_patterns, "show a prompt's mined failure patterns")
    p.add_argument("name")

    jobs = sub.add_parser("jobs", help="run scheduled jobs now").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("run", cmd_jobs_run, "run a job now", jobs)
    p.add_argument("job", choices=["mine", "improve", "canary"])
    for name, handler, help_ in (
        ("demo", cmd_demo, "run the closed loop: embedded daemon plus a simulated fleet"),
        ("simulate", cmd_simulate, "run the simulated fleet against a running daemon"),
    ):
        p = add(name, handler, help_)
        p.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--agents", type=int, default=6)
        p.add_argument("--rate", type=float, default=150.0,
                       help="executions per second per prompt (0: as fast as possible)")
        if name == "demo":
            p.add_argument("--data-dir", help="default: a fresh var/demo-<time>/")
        else:
            p.add_argument("--harmful", action="store_true",
                           help="also hand-deploy a harmful edit to watch it roll back")
