"""Benchmark harness: servers as child processes, and a closed-loop HTTP/1.1 load generator.

Each simulated client owns one keep-alive connection and sends its next request as soon as
the previous answer is read. httpx would spend several times the server's own CPU per
request, and on a 2-core machine shared by client and server that would measure the client;
a hand-rolled request line and a Content-Length reader cost a few tens of microseconds.
The same generator drives promptd and the baselines, so ratios between them are fair.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

RequestFactory = Callable[[], bytes]
STARTUP_TIMEOUT_S = 120.0  # importing scipy/sklearn takes >10 s on a busy 2-core machine

_CLOCK_TICK = os.sysconf("SC_CLK_TCK")
_KEEP_ALIVE_S = 2.0  # idle connections older than this are not reused (servers time them out)


def http_request(method: str, path: str, host: str, headers: Mapping[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    """Return the bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _cpu_seconds(stat_path: str) -> float:
    with open(stat_path, "rb") as fh:
        # The command name (field 2) may hold spaces; count fields after its closing paren.
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def server_cpu_seconds(pid: int) -> tuple[float, float]:
    """Return CPU seconds used so far by a process: (all threads, its main thread only).

    The main thread of a uvicorn server runs the event loop; the rest is promptd's writer,
    the threadpool that runs sync endpoints and dependencies, and housekeeping.
    """
    return _cpu_seconds(f"/proc/{pid}/stat"), _cpu_seconds(f"/proc/{pid}/task/{pid}/stat")


def percentile(sorted_values: tuple[float, ...], q: float) -> float:
    """Return the nearest-rank ``q``-quantile (0 < q <= 1) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = math.ceil(q * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


@dataclass(frozen=True)
class LoadResult:
    """What one scenario measured inside its window (warm-up excluded)."""

    ok: int
    failed: int
    seconds: float
    events_per_request: int
    latencies_ms: tuple[float, ...]
    statuses: Mapping[int, int]
    client_cpu_s: float
    server_cpu_s: float | None = None
    server_loop_cpu_s: float | None = None

    @property
    def requests_per_s(self) -> float:
        """Return successful requests per second."""
        return self.ok / self.seconds

    @property
    def events_per_s(self) -> float:
        """Return events stored per second (successful requests x events per request)."""
        return self.ok * self.events_per_request / self.seconds

    @property
    def p50_ms(self) -> float:
        """Return the median latency of successful requests, in milliseconds."""
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99_ms(self) -> float:
        """Return the 99th-percentile latency of successful requests, in milliseconds."""
        return percentile(self.latencies_ms, 0.99)

    @property
    def server_cpu_us_per_request(self) -> float | None:
        """Return server CPU microseconds per successful request (None if not sampled)."""
        if self.server_cpu_s is None or not self.ok:
            return None
        return self.server_cpu_s / self.ok * 1e6

    @property
    def loop_share(self) -> float | None:
        """Return the event-loop thread's share of the server's CPU time (None if not sampled)."""
        if self.server_cpu_s is None or self.server_loop_cpu_s is None or not self.server_cpu_s:
            return None
        return self.server_loop_cpu_s / self.server_cpu_s

    @property
    def client_cpu_us_per_request(self) -> float:
        """Return load-generator CPU microseconds per successful request."""
        return self.client_cpu_s / max(self.ok, 1) * 1e6


class _Window:
    """The measurement window, shared by every client of one run."""

    def __init__(self, warmup_s: float, duration_s: float) -> None:
        now = time.perf_counter()
        self.start = now + warmup_s
        self.end = self.start + duration_s
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}

    def record(self, started: float, finished: float, status: int) -> None:
        if self.start <= finished < self.end:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                self.latencies.append((finished - started) * 1000.0)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise ValueError(f"response without Content-Length: {head[:200]!r}")
    end = lower.find(b"\r\n", at + 2)
    length = int(lower[at + 17 : end])
    if length:
        await reader.readexactly(length)
    return status


async def _client(host: str, port: int, factory: RequestFactory, window: _Window) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            request = factory()
            started = time.perf_counter()
            if started >= window.end:
                return
            writer.write(request)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                window.record(started, time.perf_counter(), 599)
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            window.record(started, time.perf_counter(), status)
    finally:
        writer.close()


async def _run(url: str, factory: RequestFactory, concurrency: int, warmup_s: float,
               duration_s: float, events_per_request: int, server_pid: int | None) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    window = _Window(warmup_s, duration_s)
    clients = [asyncio.create_task(_client(host, port, factory, window))
               for _ in range(concurrency)]

    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    cpu0 = time.process_time()
    srv0 = server_cpu_seconds(server_pid) if server_pid else (0.0, 0.0)
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    client_cpu = time.process_time() - cpu0
    srv1 = server_cpu_seconds(server_pid) if server_pid else (0.0, 0.0)
    await asyncio.gather(*clients)
    ok = sum(n for s, n in window.statuses.items() if 200 <= s < 300)
    return LoadResult(
        ok=ok, failed=sum(window.statuses.values()) - ok, seconds=duration_s,
        events_per_request=events_per_request, latencies_ms=tuple(sorted(window.latencies)),
        statuses=dict(window.statuses), client_cpu_s=client_cpu,
        server_cpu_s=srv1[0] - srv0[0] if server_pid else None,
        server_loop_cpu_s=srv1[1] - srv0[1] if server_pid else None,
    )


async def _open_loop(url: str, factory: RequestFactory, rate: float, warmup_s: float,
                     duration_s: float, max_connections: int,
                     server_pid: int | None) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    window = _Window(warmup_s, duration_s)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    free = asyncio.Semaphore(max_connections)
    tasks: set[asyncio.Task[None]] = set()

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while idle:
            reader, writer, since = idle.pop()
            if time.perf_counter() - since < _KEEP_ALIVE_S:
                return reader, writer
            writer.close()  # the server may have closed it by now (uvicorn: after 5 s idle)
        return await asyncio.open_connection(host, port)

    async def one(intended: float) -> None:
        async with free:
            reader, writer = await connection()
            try:
                writer.write(factory())
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                window.record(intended, time.perf_counter(), 599)
                return
            # Latency from the moment the request was due, not from when a connection was
            # free: a slow server must not hide its queue (no coordinated omission).
            window.record(intended, time.perf_counter(), status)
            idle.append((reader, writer, time.perf_counter()))

    first = time.perf_counter()
    cpu0 = time.process_time()
    srv0 = server_cpu_seconds(server_pid) if server_pid else (0.0, 0.0)
    sampled = False
    n = 0
    while True:
        intended = first + n / rate
        if intended >= window.end:
            break
        if not sampled and intended >= window.start:
            cpu0 = time.process_time()
            srv0 = server_cpu_seconds(server_pid) if server_pid else (0.0, 0.0)
            sampled = True
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    client_cpu = time.process_time() - cpu0
    srv1 = server_cpu_seconds(server_pid) if server_pid else (0.0, 0.0)
    if tasks:
        await asyncio.wait(tasks, timeout=30.0)
    for _, writer, _ in idle:
        writer.close()
    ok = sum(k for s, k in window.statuses.items() if 200 <= s < 300)
    return LoadResult(
        ok=ok, failed=sum(window.statuses.values()) - ok, seconds=duration_s,
        events_per_request=1, latencies_ms=tuple(sorted(window.latencies)),
        statuses=dict(window.statuses), client_cpu_s=client_cpu,
        server_cpu_s=srv1[0] - srv0[0] if server_pid else None,
        server_loop_cpu_s=srv1[1] - srv0[1] if server_pid else None,
    )


def run_open_loop(url: str, factory: RequestFactory, *, rate: float, duration_s: float,
                  warmup_s: float = 1.0, max_connections: int = 256,
                  server_pid: int | None = None) -> LoadResult:
    """Return what requests sent at a fixed ``rate`` per second measured against ``url``.

    Open loop: a request is due every ``1 / rate`` seconds whether or not earlier ones were
    answered (each on an idle keep-alive connection, up to ``max_connections``), and its
    latency counts from when it was due. This is the latency an agent fleet of that rate
    sees; a closed loop with N clients instead measures queueing behind N requests.
    """
    return asyncio.run(_open_loop(url, factory, rate, warmup_s, duration_s, max_connections,
                                  server_pid))


def pooled(results: Sequence[LoadResult]) -> LoadResult:
    """Return several runs of one scenario as one: counts, seconds and CPU add up."""
    def total(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

    statuses: dict[int, int] = {}
    for r in results:
        for code, n in r.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    return LoadResult(
        ok=sum(r.ok for r in results), failed=sum(r.failed for r in results),
        seconds=sum(r.seconds for r in results),
        events_per_request=results[0].events_per_request,
        latencies_ms=tuple(sorted(x for r in results for x in r.latencies_ms)),
        statuses=statuses, client_cpu_s=sum(r.client_cpu_s for r in results),
        server_cpu_s=total([r.server_cpu_s for r in results]),
        server_loop_cpu_s=total([r.server_loop_cpu_s for r in results]),
    )


def run_load(url: str, factory: RequestFactory, *, concurrency: int, duration_s: float,
             warmup_s: float = 1.0, events_per_request: int = 1,
             server_pid: int | None = None) -> LoadResult:
    """Return what ``concurrency`` closed-loop clients measured against ``url``.

    ``factory`` gives the bytes of each next request (it may differ per call, e.g. fresh
    event ids). Only answers that arrive inside the window after ``warmup_s`` count; with
    ``server_pid`` the server's CPU time over the same window is sampled too.
    """
    return asyncio.run(_run(url, factory, concurrency, warmup_s, duration_s,
                            events_per_request, server_pid))


@dataclass(frozen=True)
class Launch:
    """A server process that has been started but may not answer yet."""

    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 15 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def wait_for(self, path: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Poll ``path`` until it answers 200; raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; "
                                   f"see the log in {self.data_dir}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}{path} did not answer within {timeout:g} s")


def launch(cmd: list[str], data_dir: Path, port: int, env: dict[str, str] | None = None
           ) -> Launch:
    """Start ``cmd`` in ``data_dir`` (its output goes to server.log there); do not wait."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=data_dir, env=env)
    return Launch(proc, f"http://127.0.0.1:{port}", data_dir)


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    """Print ``rows`` as an aligned plain-text table."""
    cells = [headers, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
