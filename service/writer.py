"""The single writer: group commit of queued appends, projections in the same transaction.

Many requests hand their events to one thread. It drains whatever has queued up, appends it
all in one transaction together with the projections' updates, commits once (one fsync for
the whole group under ``synchronous=FULL``), and only then answers every request in the group.
An HTTP 2xx therefore always means "on disk", and throughput comes from batching, not from
weaker durability.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog
from sqlalchemy import Engine

from . import eventlog
from .eventlog import AppendResult, EventLogError, NewEvent, StoredEvent
from .projections import Projector

log = structlog.get_logger("promptd.writer")

ChangeListener = Callable[[list[StoredEvent], set[str], int], None]


class WriterBusy(RuntimeError):
    """The append queue is full; the caller should retry later (HTTP 503 + Retry-After)."""


class WriterStopped(RuntimeError):
    """The writer is shutting down and takes no more appends."""


@dataclass
class _Request:
    events: Sequence[NewEvent]
    future: Future[list[AppendResult]] = field(default_factory=Future)


_STOP = object()


class EventWriter:
    """Owns all writes to the log of this process; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        projector: Projector,
        *,
        max_queue: int = 10_000,
        max_group_events: int = 5_000,
        on_commit: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self._engine = engine
        self._projector = projector
        self._queue: queue.Queue[_Request | object] = queue.Queue(maxsize=max_queue)
        self._max_group = max_group_events
        self._listeners: list[ChangeListener] = []
        self._on_commit = on_commit
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.position = 0

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(new_events, types_applied, head)`` after each commit or catch-up.

        ``new_events`` are the events this process appended; ``types_applied`` also covers
        events other processes appended that the projections just folded.
        """
        self._listeners.append(listener)

    def start(self) -> None:
        """Catch the projections up with the log, then start the writer thread."""
        self.sync()
        self._thread = threading.Thread(target=self._run, name="promptd-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish every queued append, then stop the thread."""
        self._stopping = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, batch: Sequence[NewEvent]) -> Future[list[AppendResult]]:
        """Queue ``batch`` for the next group commit; the future resolves once it is durable."""
        if self._stopping:
            raise WriterStopped("promptd is shutting down")
        request = _Request(batch)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise WriterBusy("append queue is full") from None
        return request.future

    def append(self, batch: Sequence[NewEvent], timeout: float = 30.0) -> list[AppendResult]:
        """Append ``batch`` and wait until it is durable (for callers on plain threads)."""
        if self._thread is None:
            return self._commit([_Request(batch)])[0]
        return self.submit(batch).result(timeout)

    def sync(self) -> int:
        """Apply events other processes appended; return the head position."""
        with self._engine.begin() as conn:
            _, seen = self._projector.catch_up_in(conn)
            seen |= eventlog.types_after(conn, self.position)
            head = eventlog.head_position(conn)
        self._notify([], seen, head)
        return head

    @property
    def queue_depth(self) -> int:
        """Return how many append requests are waiting."""
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group: list[_Request] = [first]  # type: ignore[list-item]
            size = len(group[0].events)
            stop_after = False
            while size < self._max_group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop_after = True
                    break
                group.append(nxt)  # type: ignore[arg-type]
                size += len(nxt.events)  # type: ignore[union-attr]
            try:
                results = self._commit(group)
            except Exception as exc:  # answer every waiter; the writer itself keeps running
                err = eventlog.translate_errors(exc) or exc
                log.error("group_commit_failed", events=size, error=str(err))
                for req in group:
                    req.future.set_exception(
                        err if isinstance(err, EventLogError) else EventLogError(str(err))
                    )
            else:
                for req, res in zip(group, results, strict=True):
                    req.future.set_result(res)
            if stop_after:
                return

    def _commit(self, group: Sequence[_Request]) -> list[list[AppendResult]]:
        flat = [e for req in group for e in req.events]
        started = time.perf_counter()
        with self._engine.begin() as conn:
            # Events other processes wrote since our last commit come first, so the
            # projections stay in position order.
            positions, seen = self._projector.catch_up_in(conn)
            # The read models are shared: another process may already have folded its own
            # events, yet this process's caches (registry, tokens, deployments) must hear
            # of them too.
            seen |= eventlog.types_after(conn, self.position)
            results = eventlog.append(conn, flat)
            stored = [
                StoredEvent(r.position, e.event_id, e.type, e.stream, e.recorded_at,
                            # Round-trip so the live fold sees exactly what replay will read.
                            json.loads(eventlog.encode_payload(e.payload)))
                for e, r in zip(flat, results, strict=True)
                if not r.duplicate
            ]
            self._projector.apply(conn, stored, positions)
            head = stored[-1].position if stored else eventlog.head_position(conn)
        seen.update(s.type for s in stored)
        if self._on_commit is not None:
            self._on_commit(len(flat), len(stored), time.perf_counter() - started)
        self._notify(stored, seen, head)
        out: list[list[AppendResult]] = []
        i = 0
        for req in group:
            out.append(results[i : i + len(req.events)])
            i += len(req.events)
        return out

    def _notify(self, stored: list[StoredEvent], seen: set[str], head: int) -> None:
        self.position = max(self.position, head)
        for listener in self._listeners:
            try:
                listener(stored, seen, head)
            except Exception:
                log.exception("change_listener_failed")
