"""A bounded flood of keep-alive connections against a daemon on loopback, and what it saw.

Every connection runs a closed loop (next request as soon as the previous answer is read) for
a fixed time and at most a fixed number of requests, with a client timeout per request, like
an agent fleet that retries at once. Requests are hand-written HTTP/1.1 (as in
``tests/perf/_load.py``): httpx would spend more CPU per request than the server, and with
client and server on the same two cores that would measure the client.

Run by hand for the figures: ``.venv/bin/python -m tests.e2e.flood`` (starts its own
``promptd serve``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from service.contract.ids import uuid7

RequestFactory = Callable[[], bytes]
BATCH = 20  # events per batch request


def http_request(method: str, path: str, host: str, token: str, body: bytes = b"") -> bytes:
    """Return the bytes of one keep-alive HTTP/1.1 request carrying ``token``."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}"]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def agent_traffic(url: str, token: str, prompt: str) -> list[RequestFactory]:
    """Return request factories of an agent fleet: single and batch ingest, and resolve."""
    host = urlsplit(url).netloc

    def execution(event_id: str) -> dict[str, object]:
        return {"type": "execution", "event_id": event_id, "prompt": prompt, "version": 1,
                "success": True, "latency_ms": 100.0, "metadata": {"region": "eu"}}

    def single() -> bytes:
        body = json.dumps(execution(uuid7())).encode()
        return http_request("POST", "/v1/executions", host, token, body)

    def batch() -> bytes:
        body = json.dumps({"events": [execution(uuid7()) for _ in range(BATCH)]}).encode()
        return http_request("POST", "/v1/events", host, token, body)

    resolve = http_request("GET", f"/v1/prompts/{prompt}/resolve?subject=user-1", host, token)
    return [single, single, batch, lambda: resolve]


KINDS = ("single", "single", "batch", "resolve")  # what each factory of agent_traffic sends


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank ``q``-quantile of ``values`` (nan when empty)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(max(math.ceil(q * len(ordered)), 1), len(ordered)) - 1]


@dataclass
class FloodResult:
    """What the clients of one flood saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    connection_errors: int = 0
    answered_ms: list[float] = field(default_factory=list)  # 2xx answers
    busy_ms: list[float] = field(default_factory=list)  # 503 answers
    retry_after: set[str] = field(default_factory=set)
    by_factory: Counter[tuple[int, int]] = field(default_factory=Counter)  # (factory, status)
    seconds: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def answered(self) -> int:
        """Return how many requests got a 2xx."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def busy(self) -> int:
        """Return how many requests got a 503."""
        return self.statuses[503]

    def summary(self) -> str:
        """Return the figures on one line."""
        other = dict(sorted((s, n) for s, n in self.statuses.items()
                            if s != 503 and not 200 <= s < 300))
        return (f"{sum(self.statuses.values())} answers in {self.seconds:.1f} s: "
                f"{self.answered} 2xx (p50 {percentile(self.answered_ms, 0.5):.0f} ms, "
                f"p99 {percentile(self.answered_ms, 0.99):.0f} ms), {self.busy} 503 "
                f"(p50 {percentile(self.busy_ms, 0.5):.0f} ms, "
                f"p99 {percentile(self.busy_ms, 0.99):.0f} ms), other {other}"
                f", {self.timeouts} client timeouts, {self.connection_errors} connection errors")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    length = int(lower[at + 17 : lower.find(b"\r\n", at + 2)]) if at >= 0 else 0
    if length:
        await reader.readexactly(length)
    return status, head


def _retry_after(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"retry-after:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


async def _connection(host: str, port: int, factory: RequestFactory, kind: int,
                      deadline: float, max_requests: int, timeout_s: float,
                      honour_retry_after: bool, result: FloodResult) -> None:
    writer: asyncio.StreamWriter | None = None
    sent = 0
    try:
        while sent < max_requests and time.perf_counter() < deadline:
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), timeout_s)
                except (TimeoutError, OSError):
                    result.connection_errors += 1
                    await asyncio.sleep(0.05)
                    continue
            request = factory()
            started = time.perf_counter()
            sent += 1
            try:
                writer.write(request)
                status, head = await asyncio.wait_for(_read_response(reader), timeout_s)
            except TimeoutError:
                result.timeouts += 1
                writer.close()
                writer = None
                continue
            except (asyncio.IncompleteReadError, ConnectionError):
                result.connection_errors += 1
                writer.close()
                writer = None
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            result.statuses[status] += 1
            result.by_factory[kind, status] += 1
            if 200 <= status < 300:
                result.answered_ms.append(elapsed_ms)
            elif status == 503:
                result.busy_ms.append(elapsed_ms)
                retry_after = _retry_after(head)
                result.retry_after.add(retry_after)
                if honour_retry_after and retry_after.isdigit():
                    await asyncio.sleep(min(float(retry_after), deadline - time.perf_counter()))
    finally:
        if writer is not None:
            writer.close()


async def _flood(url: str, factories: Sequence[RequestFactory], connections: int,
                 duration_s: float, max_requests: int, timeout_s: float,
                 honour_retry_after: bool) -> FloodResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = FloodResult()
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + duration_s
    await asyncio.gather(*(
        _connection(host, port, factories[i % len(factories)], i % len(factories), deadline,
                    max_requests, timeout_s, honour_retry_after, result)
        for i in range(connections)))
    result.seconds = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu
    return result


def flood(url: str, factories: Sequence[RequestFactory], *, connections: int,
          duration_s: float, max_requests: int, timeout_s: float,
          honour_retry_after: bool = False) -> FloodResult:
    """Return what ``connections`` closed-loop clients saw against ``url``.

    Each stops after ``duration_s`` or ``max_requests`` requests, whichever comes first; a
    request not answered within ``timeout_s`` counts as a client timeout and its connection
    is dropped (as a client that gives up does). Unless ``honour_retry_after`` (as the SDK
    does), a 503 is followed by the next request at once: the flood of a hostile client.
    """
    return asyncio.run(_flood(url, factories, connections, duration_s, max_requests, timeout_s,
                              honour_retry_after))


def rss_bytes(pid: int) -> int:
    """Return the resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_cpu_s(pid: int) -> float:
    """Return the CPU seconds a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Flood a fresh ``promptd serve`` with 1,000 connections and print the figures."""
    import argparse
    import tempfile

    import httpx

    from tests.support import start_process

    parser = argparse.ArgumentParser(description="flood a fresh promptd serve")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=200)
    parser.add_argument("--honour-retry-after", action="store_true")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for serve")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promptd-flood-") as tmp:
        proc = start_process(Path(tmp), extra_env=dict(e.split("=", 1) for e in args.env))
        try:
            admin = httpx.Client(base_url=proc.url, timeout=30,
                                 headers={"Authorization": f"Bearer {proc.admin_token}"})
            admin.post("/v1/prompts", json={"name": "flood/prompt",
                                            "template": "Answer {{ q }}"}).raise_for_status()
            token = admin.post("/v1/tokens", json={"role": "agent", "name": "flood"}).json()
            before = rss_bytes(proc.proc.pid)
            cpu_before = server_cpu_s(proc.proc.pid)
            result = flood(proc.url, agent_traffic(proc.url, token["token"], "flood/prompt"),
                           connections=args.connections, duration_s=args.duration,
                           max_requests=args.max_requests, timeout_s=args.timeout,
                           honour_retry_after=args.honour_retry_after)
            cpu = server_cpu_s(proc.proc.pid) - cpu_before
            time.sleep(2.0)
            after = rss_bytes(proc.proc.pid)
            print(result.summary())
            print(f"by factory (index, status): {sorted(result.by_factory.items())}; "
                  f"client CPU {result.client_cpu_s:.1f} s, server CPU {cpu:.1f} s")
            print(f"Retry-After values: {sorted(result.retry_after)}")
            print(f"RSS before {before / 2**20:.0f} MiB, after {after / 2**20:.0f} MiB")
            print(f"readyz after: {admin.get('/readyz').status_code}")
        finally:
            proc.terminate()


if __name__ == "__main__":
    main()
