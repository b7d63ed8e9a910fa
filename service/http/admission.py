"""Admission control: how much work the daemon takes on at once, and what it turns away.

Beyond capacity a request is answered 503 with Retry-After before its body is read, so it
costs no more than its answer, instead of joining a queue its client will have given up on
(the collapse this prevents: clients time out, retry on new connections, and the daemon
commits work for nobody while the new requests wait behind it).

Two bounds. Caps per route class and per process on the requests in flight, and on the body
bytes of ingest in flight (parsing and committing a batch cost in proportion to its size):
by Little's law an admitted request then waits about cap / throughput. And a latency budget:
every request, admitted or not, first waits for the event loop, so the loop's own delay is
measured, and while it exceeds the budget the ingest and admin caps shrink (halving per
sample, down to an eighth) on the costly work, the ingest body bytes and admin requests,
growing back once the delay is under half the budget. A resolve or a single event costs
about what its 503 would: turning it away would lose work and save nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping

from starlette.types import Receive

# Told from the request line alone: before any routing or body reading.
INGEST, RESOLVE, ADMIN, HEALTH = "ingest", "resolve", "admin", "health"
_INGEST_PATHS = frozenset({"/v1/events", "/v1/executions", "/v1/corrections"})
_HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Probes and scrapes have their own small cap outside the process total: a flood of agent
# traffic must not make the daemon look dead to its orchestrator or to Prometheus.
HEALTH_IN_FLIGHT = 16
# What follows the loop's delay: the costly work. A single event costs about what its 503
# would, so the ingest request count stays; the ingest bytes (batches) and admin work shrink.
_SCALED = (ADMIN,)
MIN_SCALE = 1 / 8
_GROWTH = 1.25  # per sample under half the budget: from the floor back to 1 in ~2 s
LAG_SAMPLE_S = 0.05


def route_class(method: str, path: str) -> str:
    """Return the admission class of a request line: ingest, resolve, health or admin."""
    if method == "POST" and path in _INGEST_PATHS:
        return INGEST
    if method == "GET" and path.endswith("/resolve") and path.startswith("/v1/prompts/"):
        return RESOLVE
    if path in _HEALTH_PATHS:
        return HEALTH
    return ADMIN


class Admission:
    """Requests in flight per class and in total, and ingest body bytes, each under its cap.

    Only the event loop thread calls it, so plain integers suffice.
    """

    def __init__(self, caps: Mapping[str, int], total: int, ingest_bytes: int) -> None:
        self.full_caps = dict(caps)
        self.full_bytes = ingest_bytes
        self.total_cap = total
        self.caps = dict(caps)
        self.bytes_cap = ingest_bytes
        self.scale = 1.0
        self.in_flight = dict.fromkeys(self.caps, 0)
        self.total = 0
        self.ingest_bytes = 0

    def enter(self, klass: str, size: int) -> bool:
        """Count one more request of ``klass`` (``size`` body bytes) and return True, or
        return False when that would exceed a cap."""
        n = self.in_flight[klass]
        if n >= self.caps[klass]:
            return False
        if klass != HEALTH:
            if self.total >= self.total_cap:
                return False
            if klass == INGEST:
                # One request is always let in, however large: the body limit bounds it.
                if n and self.ingest_bytes + size > self.bytes_cap:
                    return False
                self.ingest_bytes += size
            self.total += 1
        self.in_flight[klass] = n + 1
        return True

    def leave(self, klass: str, size: int) -> None:
        """Count one request of ``klass`` as finished."""
        self.in_flight[klass] -= 1
        if klass != HEALTH:
            self.total -= 1
            if klass == INGEST:
                self.ingest_bytes -= size

    def rescale(self, scale: float) -> None:
        """Set the ingest bytes and admin caps to ``scale`` (MIN_SCALE..1) of their settings."""
        self.scale = min(1.0, max(MIN_SCALE, scale))
        for klass in _SCALED:
            self.caps[klass] = max(1, math.ceil(self.full_caps[klass] * self.scale))
        self.bytes_cap = max(1, math.ceil(self.full_bytes * self.scale))

    def refusal(self, klass: str) -> str:
        """Return why a request of ``klass`` is not admitted now, for its 503."""
        scaled = (f" (cut to {self.scale:.0%} while the event loop runs late)"
                  if self.scale < 1.0 else "")
        if self.in_flight[klass] >= self.caps[klass]:
            return (f"{self.caps[klass]} {klass} requests are in flight, the most allowed"
                    f"{scaled if klass in _SCALED else ''}")
        if self.total >= self.total_cap:
            return f"{self.total_cap} requests are in flight, the most allowed"
        return (f"{self.ingest_bytes} bytes of events are in flight, at most "
                f"{self.bytes_cap}{scaled}")


class LoopLag:
    """Measures how late the event loop runs a timer and steers ``Admission`` by it."""

    def __init__(self, admission: Admission, budget_s: float) -> None:
        self.admission = admission
        self.budget_s = budget_s
        self.lag_s = 0.0

    def observe(self, lag_s: float) -> None:
        """Take one delay sample: over the budget shrink the caps, under half grow them."""
        self.lag_s = lag_s
        scale = self.admission.scale
        if lag_s > self.budget_s:
            self.admission.rescale(scale / 2)
        elif lag_s < self.budget_s / 2 and scale < 1.0:
            self.admission.rescale(scale * _GROWTH)

    async def run(self) -> None:
        """Sample the loop's delay every LAG_SAMPLE_S until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_SAMPLE_S
            await asyncio.sleep(LAG_SAMPLE_S)
            self.observe(max(0.0, loop.time() - due))


def client_presence(receive: Receive) -> Callable[[], bool] | None:
    """Return a check that says whether the request's client has disconnected, if knowable.

    uvicorn's request cycle sets ``disconnected`` in ``connection_lost``; reading that flag
    costs nothing and is safe from the writer thread, where polling ``receive()`` for
    ``http.disconnect`` would need a task per request on the hot path. Under another server
    the answer is None: the client's presence is unknown and nothing is dropped.
    """
    cycle = getattr(receive, "__self__", None)
    if cycle is None or not isinstance(getattr(cycle, "disconnected", None), bool):
        return None
    return lambda: bool(cycle.disconnected)
