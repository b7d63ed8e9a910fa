"""Benchmark of the spine: event ingest and resolve, each against a baseline from the same run.

Run: ``.venv/bin/python tests/perf/bench_ingest.py`` (about 1.5 minutes on 2 cores).

  (a) raw SQLite: executemany of the same event rows, batches of 100, WAL, synchronous=FULL,
      UUIDv7 ids, explicit positions, plain ``sqlite3`` (the ceiling the log could reach);
  (b) promptd ``POST /v1/events``, 100 events per request, 16 clients  -> >= 0.5 x (a);
  (c) promptd ``POST /v1/executions``, one event, 32 clients          -> >= 0.7 x a bare
      FastAPI POST that validates a small pydantic body, and p99 < 25 ms;
  (d) promptd ``GET /v1/prompts/{name}/resolve``, 32 clients         -> >= 0.8 x a bare
      FastAPI GET returning a constant.

promptd runs as ``promptd serve`` in its own process at log level warning (per-request log
lines would otherwise dominate); (c) is measured once more at info to show what logging
costs. The bare app runs under ``python -m uvicorn`` with the same settings (one worker,
log level warning, no access log). Both are driven by the same raw-asyncio keep-alive
generator (``_load.py``). A miss prints MISS but exits 0: this is a measurement, not a gate.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a plain script: make ``tests.support`` importable

import httpx  # noqa: E402
from _load import LoadResult, http_request, run_load  # noqa: E402
from sqlalchemy.dialects import sqlite as sqlite_dialect  # noqa: E402
from sqlalchemy.schema import CreateTable  # noqa: E402

from service.contract import ExecutionIn, payload_of  # noqa: E402
from service.eventlog import encode_payload  # noqa: E402
from service.ids import uuid7  # noqa: E402
from service.schema import events as events_table  # noqa: E402
from tests.support import free_port, start_process  # noqa: E402

PROMPT = "bench/ingest"
TEMPLATE = "Triage the ticket {{ ticket }} for {{ customer }} and answer in one line."
BATCH = 100
# One realistic execution report; every request carries fresh UUIDv7 ids in front of it.
EXECUTION = {
    "type": "execution", "prompt": PROMPT, "version": 1, "subject": "user-42",
    "success": True, "latency_ms": 812.5, "input_tokens": 420, "output_tokens": 96,
    "cost_usd": 0.00131, "model": "gpt-4o-mini", "metadata": {"region": "eu"},
}
_EVENT_TAIL = '",' + json.dumps(EXECUTION, separators=(",", ":"))[1:]

BARE_APP = '''
from fastapi import FastAPI
from pydantic import BaseModel


class Execution(BaseModel):
    prompt: str
    version: int
    success: bool | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None


app = FastAPI()


@app.get("/const")
async def get_const() -> dict:
    return {"ok": True}


@app.post("/const")
async def post_const(body: Execution) -> dict:
    return {"ok": True}
'''


def event_json(event_id: str) -> str:
    """Return the JSON text of one execution event with ``event_id``."""
    return '{"event_id":"' + event_id + _EVENT_TAIL


# -- (a) the raw SQLite ceiling -----------------------------------------------------------------

@dataclass(frozen=True)
class RawResult:
    """Rows inserted by the raw SQLite baseline and how long it took."""

    rows: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        """Return rows committed per second."""
        return self.rows / self.seconds


def measure_raw_sqlite(path: Path, rows: int) -> RawResult:
    """Return how fast plain sqlite3 commits promptd's event rows in batches of 100."""
    ddl = str(CreateTable(events_table).compile(dialect=sqlite_dialect.dialect()))
    payload = encode_payload(payload_of(ExecutionIn.model_validate(EXECUTION)))
    stream, recorded_at = f"prompt:{PROMPT}", time.time()
    # Rows are built before the clock starts: (a) measures SQLite alone.
    table = [(i + 1, uuid7(), "execution", stream, recorded_at, 1, payload) for i in range(rows)]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(ddl)
        insert = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)"
        started = time.perf_counter()
        for start in range(0, rows, BATCH):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, table[start : start + BATCH])
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    if stored != rows:
        raise RuntimeError(f"raw baseline stored {stored} rows, expected {rows}")
    return RawResult(rows, seconds)


# -- servers --------------------------------------------------------------------------------

@dataclass
class Server:
    """A server process under test and the headers every request to it carries."""

    url: str
    pid: int
    headers: dict[str, str]
    stop: Callable[[], None]
    admin_token: str | None = None


def _wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_bare(tmp: Path) -> Server:
    """Start the bare FastAPI app under uvicorn with promptd's server settings."""
    (tmp / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    log = open(tmp / "bare.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(tmp),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--log-level", "warning", "--no-access-log", "--lifespan", "on"],
        stdout=log, stderr=log, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/const", proc)
    except Exception:
        _terminate(proc)
        raise
    # The same headers as promptd gets, so both parse the same request bytes.
    headers = {"Authorization": "Bearer pd_agent_000000000000_" + "x" * 43,
               "Content-Type": "application/json"}
    return Server(url, proc.pid, headers, lambda: _terminate(proc))


def start_promptd(data_dir: Path, log_level: str) -> Server:
    """Start ``promptd serve`` on a fresh SQLite file; create the prompt and an agent token."""
    data_dir.mkdir(parents=True, exist_ok=True)
    daemon = start_process(data_dir, extra_env={"PROMPTD_LOG_LEVEL": log_level})
    try:
        with httpx.Client(base_url=daemon.url, timeout=30.0,
                          headers={"Authorization": f"Bearer {daemon.admin_token}"}) as admin:
            admin.post("/v1/prompts", json={"name": PROMPT, "template": TEMPLATE}
                       ).raise_for_status()
            created = admin.post("/v1/tokens", json={"role": "agent", "name": "bench"})
            created.raise_for_status()
            token = created.json()["token"]
    except Exception:
        daemon.terminate()
        raise
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return Server(daemon.url, daemon.proc.pid, headers, daemon.terminate, daemon.admin_token)


def log_head(server: Server) -> int:
    """Return the position of the newest event in promptd's log."""
    r = httpx.get(f"{server.url}/v1/events", params={"after": 0, "limit": 1},
                  headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=10.0)
    r.raise_for_status()
    return int(r.json()["head"])


# -- request factories --------------------------------------------------------------------------

def _host(server: Server) -> str:
    return server.url.removeprefix("http://")


def batch_requests(server: Server) -> Callable[[], bytes]:
    """Return a factory of ``POST /v1/events`` requests with 100 fresh events each."""
    host = _host(server)

    def make() -> bytes:
        body = '{"events":[' + ",".join(event_json(uuid7()) for _ in range(BATCH)) + "]}"
        return http_request("POST", "/v1/events", host, server.headers, body.encode())

    return make


def single_requests(server: Server, path: str) -> Callable[[], bytes]:
    """Return a factory of one-execution POSTs to ``path``, each with a fresh event id."""
    host = _host(server)

    def make() -> bytes:
        return http_request("POST", path, host, server.headers, event_json(uuid7()).encode())

    return make


def get_requests(server: Server, path: str) -> Callable[[], bytes]:
    """Return a factory that always gives the same GET request."""
    request = http_request("GET", path, _host(server), server.headers)
    return lambda: request


# -- report ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """One row of the summary: a measured figure against its baseline and target."""

    scenario: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None  # None: informational


def ratio_verdict(scenario: str, measured: float, baseline: float, unit: str,
                  least: float) -> Verdict:
    """Return the verdict for ``measured >= least x baseline``."""
    ratio = measured / baseline if baseline else 0.0
    return Verdict(scenario, f"{measured:,.0f} {unit}", f"{baseline:,.0f} {unit}", ratio,
                   f">= {least:.1f}x", ratio >= least)


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    """Print ``rows`` as an aligned plain-text table."""
    cells = [headers, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def detail_row(name: str, clients: int, r: LoadResult) -> list[str]:
    """Return one row of the per-scenario detail table."""
    srv = r.server_cpu_us_per_request
    return [name, str(clients), f"{r.requests_per_s:,.0f}", f"{r.events_per_s:,.0f}",
            f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", str(r.failed),
            "-" if srv is None else f"{srv:,.0f}",
            "-" if r.server_cpu_s is None else f"{r.server_cpu_s / r.seconds * 100:.0f}%",
            f"{r.client_cpu_us_per_request:,.0f}", f"{r.client_cpu_s / r.seconds * 100:.0f}%"]


# -- main -----------------------------------------------------------------------------------------

def main() -> int:
    """Run every scenario, print the figures with their targets; return 0 (even on a miss)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds discarded first")
    parser.add_argument("--raw-rows", type=int, default=200_000, help="rows for baseline (a)")
    args = parser.parse_args()
    load = {"duration_s": args.duration, "warmup_s": args.warmup}
    print(f"bench_ingest: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s per scenario")
    print("promptd runs with PROMPTD_LOG_LEVEL=warning (no per-request log lines); "
          "(c) is repeated at info to show the cost of logging.")
    details: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp_name:
        tmp = Path(tmp_name)
        raw = measure_raw_sqlite(tmp / "raw.db", args.raw_rows)
        print(f"(a) raw SQLite: {raw.rows:,} rows in {raw.seconds:.2f} s")

        bare = start_bare(tmp)
        promptd = start_promptd(tmp / "warning", "warning")
        try:
            b = run_load(promptd.url, batch_requests(promptd), concurrency=16,
                         events_per_request=BATCH, server_pid=promptd.pid, **load)
            details.append(detail_row("(b) promptd POST /v1/events x100", 16, b))
            head = log_head(promptd)
            if head < b.ok * BATCH:
                raise RuntimeError(f"log head {head} < {b.ok * BATCH} events acknowledged")
            c = run_load(promptd.url, single_requests(promptd, "/v1/executions"),
                         concurrency=32, server_pid=promptd.pid, **load)
            details.append(detail_row("(c) promptd POST /v1/executions", 32, c))
            bare_post = run_load(bare.url, single_requests(bare, "/const"), concurrency=32,
                                 server_pid=bare.pid, **load)
            details.append(detail_row("    bare FastAPI POST (pydantic body)", 32, bare_post))
            d = run_load(promptd.url, get_requests(
                promptd, f"/v1/prompts/{PROMPT}/resolve?subject=user-42"), concurrency=32,
                server_pid=promptd.pid, **load)
            details.append(detail_row("(d) promptd GET .../resolve", 32, d))
            bare_get = run_load(bare.url, get_requests(bare, "/const?subject=user-42"),
                                concurrency=32, server_pid=bare.pid, **load)
            details.append(detail_row("    bare FastAPI GET (constant)", 32, bare_get))
        finally:
            promptd.stop()
            bare.stop()

        chatty = start_promptd(tmp / "info", "info")
        try:
            c_info = run_load(chatty.url, single_requests(chatty, "/v1/executions"),
                              concurrency=32, server_pid=chatty.pid, **load)
            details.append(detail_row("(c) same, PROMPTD_LOG_LEVEL=info", 32, c_info))
        finally:
            chatty.stop()

    print("\nper scenario (latencies in ms; CPU per successful request, in microseconds):")
    print_table(details, ["scenario", "clients", "req/s", "events/s", "p50", "p99", "failed",
                          "srv us/req", "srv CPU", "gen us/req", "gen CPU"])

    verdicts = [
        Verdict("(a) raw SQLite executemany x100", f"{raw.events_per_s:,.0f} ev/s", "-", None,
                "(baseline)", None),
        ratio_verdict("(b) HTTP batch ingest, 100/req, 16 clients", b.events_per_s,
                      raw.events_per_s, "ev/s", 0.5),
        ratio_verdict("(c) POST /v1/executions, 32 clients", c.requests_per_s,
                      bare_post.requests_per_s, "req/s", 0.7),
        Verdict("(c) p99 latency", f"{c.p99_ms:.1f} ms", "-", None, "< 25 ms",
                c.p99_ms < 25.0),
        Verdict("(c) same at log level info", f"{c_info.requests_per_s:,.0f} req/s",
                f"{bare_post.requests_per_s:,.0f} req/s",
                c_info.requests_per_s / bare_post.requests_per_s, "(info only)", None),
        ratio_verdict("(d) GET resolve, 32 clients", d.requests_per_s,
                      bare_get.requests_per_s, "req/s", 0.8),
    ]
    print("\nsummary:")
    print_table([[v.scenario, v.measured, v.baseline,
                  "-" if v.ratio is None else f"{v.ratio:.2f}", v.target,
                  "" if v.passed is None else ("PASS" if v.passed else "MISS")]
                 for v in verdicts], ["scenario", "measured", "baseline", "ratio", "target",
                                      "result"])
    misses = [v.scenario for v in verdicts if v.passed is False]
    failures = sum(int(row[6]) for row in details)
    if failures:
        print(f"\nWARNING: {failures} requests failed (non-2xx); see the 'failed' column.")
    print("\n" + (f"MISS: {len(misses)} target(s) missed: " + "; ".join(misses) if misses
                  else "all targets met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
