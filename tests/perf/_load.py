"""A closed-loop HTTP/1.1 load generator on raw asyncio streams, for the benchmarks.

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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

RequestFactory = Callable[[], bytes]

_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def http_request(method: str, path: str, host: str, headers: Mapping[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    """Return the bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def process_cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds a process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        # The command name (field 2) may hold spaces; count fields after its closing paren.
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


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

    async def sample() -> tuple[float, float | None]:
        await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
        cpu0 = time.process_time()
        srv0 = process_cpu_seconds(server_pid) if server_pid else None
        await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
        cpu = time.process_time() - cpu0
        srv = process_cpu_seconds(server_pid) - srv0 if server_pid and srv0 is not None else None
        return cpu, srv

    client_cpu, server_cpu = await sample()
    await asyncio.gather(*clients)
    ok = sum(n for s, n in window.statuses.items() if 200 <= s < 300)
    return LoadResult(
        ok=ok, failed=sum(window.statuses.values()) - ok, seconds=duration_s,
        events_per_request=events_per_request, latencies_ms=tuple(sorted(window.latencies)),
        statuses=dict(window.statuses), client_cpu_s=client_cpu, server_cpu_s=server_cpu,
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
