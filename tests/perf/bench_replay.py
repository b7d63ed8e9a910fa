"""Benchmark of ``promptd replay``: rebuild every projection from position 0, against raw SQLite.

Run: ``.venv/bin/python tests/perf/bench_replay.py`` (200,000 events, about 1.5 minutes on
2 cores; ``--events 1000000`` for the million-event figure).

The log is built through the real append path (agent payloads validated and shaped by the
contract, appended by the daemon's group-commit writer): executions of five prompts, each
under a running canary deployment, and one correction per ten executions. Then, each in a
fresh child process so its peak RSS is its own:

  (r) promptd's ``replay()``, the library function ``promptd replay`` calls: rebuild into a
      fresh SQLite file (the log copied, every projection folded), then compare each table
      with the live one                               -> >= 40,000 events/s and >= 0.3 x (raw);
  (raw) plain ``sqlite3``: read the same log rows in the same chunks, write them to a fresh
      file with the same table (``executemany``, one transaction per chunk), plus as many
      rows into a plain table as the projections hold (the ceiling a replay could reach).

Printed as well: peak RSS of each child (``resource.getrusage``; < 1 GiB for a million
events) and the bytes per stored event (database file after a checkpoint over events, and
the average payload). A missed target prints MISS and the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a plain script: make ``tests.support`` importable

TARGET_EVENTS_PER_S = 40_000.0
TARGET_RATIO = 0.3
RSS_LIMIT_BYTES = 1 << 30
PROMPTS = 5
APPEND_GROUP = 500  # events per group commit while the log is built
CHUNK = 5000  # rows per transaction of the raw baseline (replay's own default is its own)


# -- the log ------------------------------------------------------------------------------------

def build_log(data_dir: Path, n_events: int, seed: int = 1) -> int:
    """Append ``n_events`` agent events through the daemon's writer; return the log's head."""
    from prometheus_client import CollectorRegistry

    from deploy.assignment import assign
    from service.contract import CorrectionIn, ExecutionIn, payload_of
    from service.contract.ids import uuid7
    from service.server import build
    from tests.support import make_settings

    service = build(make_settings(data_dir), registry=CollectorRegistry())
    daemon, commands = service.daemon, service.commands
    daemon.start()
    try:
        states = {}
        for i in range(PROMPTS):
            name = f"bench/replay-{i}"
            commands.create_prompt(name, "Answer {{ question }} for {{ customer }}.",
                                   ["question", "customer"], "", "bench")
            commands.add_version(name, "Answer {{ question }} for {{ customer }}, briefly.",
                                 ["question", "customer"], rationale="", parent=None,
                                 make_production=False, actor="bench")
            commands.deploy(name, [2], daemon.default_policy, actor="bench",
                            requires_approval=False)
            states[name] = daemon.live.deployments[name]
        rng = random.Random(seed)
        names = sorted(states)
        written = 0
        while written < n_events:
            group = []
            while len(group) < min(APPEND_GROUP, n_events - written):
                name = rng.choice(names)
                state = states[name]
                subject = f"user-{rng.randrange(5000)}"
                arm = assign(state.deployment_id, subject, state.weights())
                event_id = uuid7()
                ok = rng.random() < 0.8
                execution = ExecutionIn.model_validate({
                    "event_id": event_id, "prompt": name, "version": state.version_of(arm),
                    "deployment": state.deployment_id, "arm": arm, "stratum": 0,
                    "subject": subject, "success": ok, "latency_ms": rng.uniform(100, 900),
                    "input_tokens": rng.randrange(200, 800), "output_tokens": rng.randrange(99),
                    "cost_usd": round(rng.uniform(0.0005, 0.003), 6), "model": "gpt-4o-mini",
                    "error_type": None if ok or rng.random() < 0.5 else "timeout",
                    "input_text": "Where is my order " + str(rng.randrange(10**6)) + "?",
                    "output_text": "It ships tomorrow." if ok else "I do not know.",
                    "variables": {"question": "order status", "customer": subject},
                    "metadata": {"region": rng.choice(["eu", "us"])},
                })
                group.append(daemon.agent_event("execution", payload_of(execution), event_id))
                if not ok and rng.random() < 0.5 and len(group) < APPEND_GROUP:
                    correction = CorrectionIn.model_validate({
                        "execution_id": event_id, "prompt": name,
                        "version": state.version_of(arm), "category": "format",
                        "reason": rng.choice(["date not in ISO format", "missing citation"]),
                        "corrected_output": "It ships on 2025-01-02."})
                    group.append(daemon.agent_event("correction", payload_of(correction)))
            daemon.writer.append(group)
            written += len(group)
        return daemon.writer.position
    finally:
        daemon.stop()


def storage(db: Path) -> dict[str, float]:
    """Return bytes per stored event: whole file, and the average payload text."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n, payload = conn.execute("SELECT count(*), avg(length(payload)) FROM events").fetchone()
        try:  # dbstat is compiled into most SQLite builds; the file size is the fallback
            log_bytes = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'events' OR name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name = 'events')").fetchone()[0]
        except sqlite3.OperationalError:
            log_bytes = None
    finally:
        conn.close()
    file_bytes = db.stat().st_size
    return {"events": n, "file_bytes_per_event": file_bytes / n,
            "log_bytes_per_event": (log_bytes or file_bytes) / n, "payload_bytes": payload}


# -- the two measurements, each in its own child process ----------------------------------------

def child_replay(db: Path, into: Path) -> dict[str, Any]:
    """Return how long ``replay()`` took to rebuild ``db`` into ``into``, and its outcome."""
    from service.projections.replay import replay

    started = time.perf_counter()
    report = replay(f"sqlite:///{db}", into_url=f"sqlite:///{into}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": report.events, "equal": report.equal,
            "projection_rows": sum(t.live_rows for t in report.tables),
            "differ": [t.table for t in report.tables if not t.equal]}


def child_raw(db: Path, into: Path, projection_rows: int) -> dict[str, Any]:
    """Return how long plain sqlite3 takes to copy the log and write ``projection_rows`` rows."""
    src = sqlite3.connect(db)
    dst = sqlite3.connect(into, isolation_level=None)
    ddl = src.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute(ddl)
    dst.execute("CREATE TABLE projection (k INTEGER PRIMARY KEY, v TEXT)")
    started = time.perf_counter()
    cursor = src.execute("SELECT * FROM events ORDER BY position")
    copied = written = 0
    per_event = projection_rows / max(1, src.execute("SELECT count(*) FROM events").fetchone()[0])
    while rows := cursor.fetchmany(CHUNK):
        dst.execute("BEGIN IMMEDIATE")
        dst.executemany("INSERT INTO events VALUES (" + ",".join("?" * len(rows[0])) + ")", rows)
        copied += len(rows)
        upto = round(copied * per_event)
        dst.executemany("INSERT INTO projection VALUES (?, ?)",
                        ((k, rows[k % len(rows)][1]) for k in range(written, upto)))
        written = upto
        dst.execute("COMMIT")
    seconds = time.perf_counter() - started
    src.close()
    dst.close()
    return {"seconds": seconds, "events": copied, "projection_rows": written}


def run_child(*args: str) -> dict[str, Any]:
    """Run this script as a child with ``args``; return its JSON answer plus its peak RSS."""
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child_main(args: list[str]) -> None:
    kind, db, into = args[0], Path(args[1]), Path(args[2] if len(args) > 2 else ".")
    if kind == "build":
        result: dict[str, Any] = {"head": build_log(db.parent, int(args[2]))}
    elif kind == "replay":
        result = child_replay(db, into)
    else:
        result = child_raw(db, into, int(args[3]))
    # ru_maxrss is in KiB on Linux. Linux keeps it across exec, so the parent stays small
    # (it builds the log in a child too): the figure is then this child's own peak.
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


def main() -> int:
    """Build the log, time replay and the raw baseline, print the figures; 1 on a miss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the log in this folder (reused if it holds one)")
    opts = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="promptd-bench-replay-")
    work = opts.keep or Path(tmp.name)
    db = work / "promptd.db"
    if not db.exists():
        started = time.perf_counter()
        head = run_child("build", str(db), str(opts.events))["head"]
        print(f"built a log of {head} events through the writer in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    stored = storage(db)
    for stale in work.glob("rebuilt-*"):
        stale.unlink()
    rep = run_child("replay", str(db), str(work / "rebuilt-replay.db"))
    raw = run_child("raw", str(db), str(work / "rebuilt-raw.db"), str(rep["projection_rows"]))
    rep_rate, raw_rate = rep["events"] / rep["seconds"], raw["events"] / raw["seconds"]
    ratio = rep_rate / raw_rate
    mib = 1 << 20
    print(f"log: {stored['events']:,} events; {stored['file_bytes_per_event']:.0f} bytes per "
          f"event in the file, {stored['log_bytes_per_event']:.0f} in the events table and its "
          f"indexes, payload {stored['payload_bytes']:.0f} bytes on average")
    print(f"(raw)  sqlite3 copy + {raw['projection_rows']:,} projection rows: "
          f"{raw['seconds']:.2f} s, {raw_rate:,.0f} events/s, "
          f"peak RSS {raw['peak_rss_bytes'] / mib:.0f} MiB")
    print(f"(r)    promptd replay: {rep['seconds']:.2f} s, {rep_rate:,.0f} events/s, "
          f"peak RSS {rep['peak_rss_bytes'] / mib:.0f} MiB, projections "
          + ("EQUAL" if rep["equal"] else f"DIFFER: {rep['differ']}"))
    checks = [
        ("replay events/s", rep_rate >= TARGET_EVENTS_PER_S,
         f"{rep_rate:,.0f} (target >= {TARGET_EVENTS_PER_S:,.0f})"),
        ("replay / raw", ratio >= TARGET_RATIO, f"{ratio:.2f}x (target >= {TARGET_RATIO}x)"),
        ("replay peak RSS", rep["peak_rss_bytes"] < RSS_LIMIT_BYTES,
         f"{rep['peak_rss_bytes'] / mib:.0f} MiB (target < 1 GiB for a million events)"),
        ("replay equals live", bool(rep["equal"]), "EQUAL" if rep["equal"] else "DIFFER"),
    ]
    for name, passed, figure in checks:
        print(f"  {'ok  ' if passed else 'MISS'} {name}: {figure}")
    tmp.cleanup()
    return 0 if all(passed for _, passed, _ in checks) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    else:
        sys.exit(main())
