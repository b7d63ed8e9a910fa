"""Commands on the improvement loop: mined patterns, jobs, and the simulated fleet."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from service.cli.base import AddCommand, client, find_token
from service.cli.output import emit, table, ts
from service.simulation.world import DEFAULT_WORLD, WORLDS  # the standard library only

_TREND = {"new": "new", "growing": "up", "stable": "flat", "shrinking": "down",
          "resolved": "gone"}


def window_end(at: float, now: float) -> str:
    """Return when a share window ended: HH:MM UTC, with the date unless it is today's."""
    clock = time.strftime("%H:%M", time.gmtime(at))
    if time.strftime("%Y-%m-%d", time.gmtime(at)) == time.strftime("%Y-%m-%d", time.gmtime(now)):
        return f"{clock} UTC"
    return f"{time.strftime('%Y-%m-%d', time.gmtime(at))} {clock} UTC"


def _statement(p: dict[str, Any]) -> str:
    if p.get("statements"):
        return str(p["statements"][0][1])
    if p.get("noise"):
        return f"({p['label']})"
    return f"(no reason given: {p['label']})"  # reason-less corrections, grouped by category


def _context(p: dict[str, Any]) -> str:
    c = p.get("context")
    return f"{c['variable']}={','.join(c['values'])}" if c else ""


def patterns_text(d: dict[str, Any], now: float) -> str:
    """Return a mining snapshot for people: its share window, then each pattern."""
    name = d["prompt"]
    if not d["patterns"]:
        return f"{name}: no failure patterns mined yet"
    window = d.get("share_window")
    if window:
        out = (f"{name}: shares over the window ending {window_end(window['end'], now)}, "
               f"{window['records']} records")
        if not window["is_latest"]:
            out += ("\n(not the latest window: the latest had no corrections or failures to "
                    "mine, so shares come from the last window that had some)")
    else:
        out = f"{name}: no share window in this snapshot"
    rows = [(p["pattern_id"][:10], _statement(p).replace("\n", " ")[:50],
             p.get("language") or "-", p["size"], f"{p['share']:.1%}", p.get("corrections", 0),
             _TREND.get(p["status"], p["status"]), f"{p['severity_score']:.1f}", _context(p),
             "none: noise" if p.get("noise") else "yes")
            for p in d["patterns"]]
    out += "\n" + table(rows, ["id", "statement", "lang", "size", "share", "corrections",
                               "trend", "severity", "context", "rule"])
    out += "".join(f"\nnoise, gets no rule: {p['pattern_id'][:10]} {p['noise']}"
                   for p in d["patterns"] if p.get("noise"))
    for p in d["patterns"]:
        c = p.get("context")
        if c:
            out += (f"\ncontext: {p['pattern_id'][:10]} mostly {c['variable']} in "
                    f"{', '.join(c['values'])} ({c['coverage']:.0%} of its records; "
                    f"Cramer's V {c['association']:.2f}, p={c['p_value']:.2g})")
    if d.get("counted_failures"):
        out += (f"\n{d['counted_failures']} failed executions without an error type: counted "
                "in rates and anomalies,\nnot as pattern records (only a correction says what "
                "went wrong)")
    out += ("\nshare: its records in the share window over that window's records (corrections"
            "\nand typed failures); statement: the clean reviewer feedback its rule is written"
            "\nfrom; trend: its size against earlier windows; severity: the sum over its records"
            "\nof their weight (a correction's severity: low 1, medium 2, high 3, critical 5; a"
            "\nfailed execution 1); ranked by that sum in the latest window")
    out += f"\nmined {ts(d['mined_at'])}"
    if d["anomalies"]:
        out += "".join(f"\nanomaly: {a['metric']} at {a['rate']:.1%} (z={a['z']:.1f})"
                       for a in d["anomalies"])
    return out


def cmd_patterns(args: argparse.Namespace) -> int:
    """Show a prompt's mined failure patterns: share window, statements, noise, context."""
    data = client(args).get(f"/v1/prompts/{args.name}/patterns")
    emit(args, data, lambda d: patterns_text(d, time.time()))
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
                    agents=args.agents, rate_per_s=args.rate or None, world_name=args.world)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the simulated fleet against a running daemon."""
    from service.simulation.demo import run_simulate

    url = args.url or os.environ.get("PROMPTD_URL") or "http://127.0.0.1:8077"
    return run_simulate(url, find_token(args.token), duration_s=args.duration,
                        seed=args.seed, agents=args.agents, rate_per_s=args.rate or None,
                        harmful=args.harmful, world_name=args.world)


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
        p.add_argument("--world", choices=list(WORLDS), default=DEFAULT_WORLD, help=(
            "the simulated world: support-v1 (dates, citations, tone, length; English "
            "corrections) or support-v2 (currency, reply language, invented facts, personal "
            "data, legal escalation; messy multilingual corrections with noise)"))
        p.add_argument("--agents", type=int, default=6)
        p.add_argument("--rate", type=float, default=150.0,
                       help="executions per second per prompt (0: as fast as possible)")
        if name == "demo":
            p.add_argument("--data-dir", help="default: a fresh var/demo-<time>/")
        else:
            p.add_argument("--harmful", action="store_true",
                           help="also hand-deploy a harmful edit to watch it roll back")
