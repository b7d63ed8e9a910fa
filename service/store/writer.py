"""The single writer: group commit of queued appends, projections in the same transaction.

Many requests hand their events to one thread. It drains whatever has queued up, appends it
all in one transaction together with the projections' updates, commits once (one fsync for
the whole group under ``synchronous=FULL``), and only then answers every request in the group.
An HTTP 2xx therefore always means "on disk", and throughput comes from batching, not from
weaker durability.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlalchemy import Connection, Engine

from service.store import eventlog
from service.store.eventlog import (
    AppendResult,
    EventLogError,
    Expected,
    NewEvent,
    StoredEvent,
)

log = structlog.get_logger("promptd.writer")

ChangeListener = Callable[[list[StoredEvent], set[str], int], None]
Outcome = tuple["asyncio.Future[list[AppendResult]]", Any, BaseException | None]

# Agent events reach the log only through ``contract.payload_of`` (pydantic, mode="json"):
# their payloads are JSON-native, so decoding their encoding gives an equal dict and the live
# fold may use the dict as it came. Other (system) payloads may hold tuples or int keys and
# are round-tripped, so the live fold sees exactly what replay will read.
_JSON_NATIVE_TYPES = frozenset({"execution", "correction"})


class Folder(Protocol):
    """What the writer needs of the read models: fold events inside its transaction.

    ``service.projections.Projector`` is the one implementation; the store does not import
    it, so the log sits below the read models.
    """

    def apply(self, conn: Connection, batch: Sequence[StoredEvent],
              positions: dict[str, int]) -> dict[str, int]:
        """Fold ``batch`` past ``positions``; return the new positions."""
        ...

    def positions(self, conn: Connection, *, lock: bool = False) -> dict[str, int]:
        """Return each read model's applied position."""
        ...

    def catch_up_in(self, conn: Connection) -> tuple[dict[str, int], set[str]]:
        """Fold every event not yet applied; return positions and the types applied."""
        ...


class WriterBusy(RuntimeError):
    """The append queue is full; the caller should retry later (HTTP 503 + Retry-After)."""


class WriterStopped(RuntimeError):
    """The writer is shutting down and takes no more appends."""


class AppendAbandoned(RuntimeError):
    """The client went away before its append was committed; nothing of it was appended."""


# While appends fail (disk full, database gone) the idle writer tries a small write this
# often, so readiness recovers by itself even when no traffic comes to retry.
PROBE_EVERY_S = 1.0
PROBE_BYTES = 64 * 1024  # about what a group commit of a few hundred events writes


@dataclass(slots=True)
class _Request:
    """Events waiting for the writer, and who waits for them: a thread or an event loop."""

    events: Sequence[NewEvent]
    expected: Expected | None = None
    future: Future[list[AppendResult]] | None = None
    waiter: asyncio.Future[list[AppendResult]] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    gone: Callable[[], bool] | None = None  # True once the client that waits has left

    def abandoned(self) -> bool:
        """Return True when nobody waits for this append any more."""
        # Read from the writer thread: a future's state and the server's flag are plain
        # attributes; a race only means one more append whose answer nobody reads.
        return ((self.waiter is not None and self.waiter.done())
                or (self.gone is not None and self.gone()))


_STOP = object()


class EventWriter:
    """Owns all writes to the log of this process; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        projector: Folder,
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
        # Why the last group commit (or probe) failed; None once one succeeds. Readiness
        # reports it: a daemon whose appends fail is not ready, whatever else still works.
        self.failure: str | None = None
        self.abandoned = 0  # appends dropped because their client had gone
        # (head, positions) as of this writer's last commit or catch-up. While the head has
        # not moved, no other process appended, so the projections are still exactly there
        # and the next commit can skip reading them and the log (see ``_commit``).
        self._folded: tuple[int, dict[str, int]] | None = None

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

    def submit(self, batch: Sequence[NewEvent],
               expected: Expected | None = None) -> Future[list[AppendResult]]:
        """Queue ``batch`` for the next group commit; the future resolves once it is durable.

        With ``expected`` (stream -> the version the batch was decided on) the future fails
        with ``StreamConflict`` instead if any of those streams has moved on; the other
        requests of the same group commit are not affected.
        """
        future: Future[list[AppendResult]] = Future()
        self._enqueue(_Request(batch, expected, future=future))
        return future

    def submit_async(self, batch: Sequence[NewEvent], expected: Expected | None = None,
                     gone: Callable[[], bool] | None = None
                     ) -> asyncio.Future[list[AppendResult]]:
        """Queue ``batch`` from a coroutine; return an asyncio future resolved once durable.

        The writer wakes each event loop once per group commit and resolves all of its
        waiters in that one callback, instead of once per request (``asyncio.wrap_future``).
        If ``gone()`` is true (the client disconnected) or the future was cancelled by the
        time the group is committed, the batch is not appended and the future fails with
        ``AppendAbandoned``: nobody would read its answer, and a client that gave up retries.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[AppendResult]] = loop.create_future()
        self._enqueue(_Request(batch, expected, waiter=waiter, loop=loop, gone=gone))
        return waiter

    def _enqueue(self, request: _Request) -> None:
        if self._stopping:
            raise WriterStopped("promptd is shutting down")
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise WriterBusy("append queue is full") from None

    def append(self, batch: Sequence[NewEvent], expected: Expected | None = None,
               timeout: float = 30.0) -> list[AppendResult]:
        """Append ``batch`` and wait until it is durable (for callers on plain threads).

        Raises ``StreamConflict`` when ``expected`` no longer holds.
        """
        if self._thread is None:
            outcome = self._commit([_Request(batch, expected)])[0]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return self.submit(batch, expected).result(timeout)

    def sync(self) -> int:
        """Apply events other processes appended; return the head position."""
        self._folded = None
        with self._engine.begin() as conn:
            positions, seen = self._projector.catch_up_in(conn)
            seen |= eventlog.types_after(conn, self.position)
            head = eventlog.head_position(conn)
        self._folded = (head, positions)
        self._notify([], seen, head)
        return head

    @property
    def queue_depth(self) -> int:
        """Return how many append requests are waiting."""
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            if self.failure is None:
                first = self._queue.get()
            else:
                try:
                    first = self._queue.get(timeout=PROBE_EVERY_S)
                except queue.Empty:
                    self._probe()
                    continue
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
            kept: list[_Request] = []
            abandoned: list[_Request] = []
            for req in group:
                (abandoned if req.abandoned() else kept).append(req)
            group = kept
            if abandoned:
                self.abandoned += len(abandoned)
                log.info("appends_abandoned", requests=len(abandoned),
                         events=sum(len(req.events) for req in abandoned))
                self._answer(abandoned, [None] * len(abandoned),
                             AppendAbandoned("the client went away before the commit"))
            if group:
                self._commit_group(group, size)
            if stop_after:
                return

    def _commit_group(self, group: list[_Request], size: int) -> None:
        try:
            results = self._commit(group)
        except Exception as exc:  # answer every waiter; the writer itself keeps running
            err = eventlog.translate_errors(exc) or exc
            log.error("group_commit_failed", events=size, error=str(err))
            failure = err if isinstance(err, EventLogError) else EventLogError(str(err))
            self.failure = str(failure)
            self._answer(group, [None] * len(group), failure)
        else:
            self.failure = None
            self._answer(group, results, None)

    def _probe(self) -> None:
        """Try a small write while appends fail; a success makes the writer healthy again."""
        try:
            with self._engine.begin() as conn:
                eventlog.write_probe(conn, PROBE_BYTES)
        except Exception as exc:
            err = eventlog.translate_errors(exc) or exc
            self.failure = str(err)
        else:
            log.info("appends_recovered", after=self.failure)
            self.failure = None

    @staticmethod
    def _answer(group: Sequence[_Request],
                results: Sequence[list[AppendResult] | Exception | None],
                error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for req, res in zip(group, results, strict=True):
            if isinstance(res, Exception):  # this request alone failed: the rest committed
                if req.future is not None:
                    req.future.set_exception(res)
                elif req.loop is not None and req.waiter is not None:
                    by_loop.setdefault(req.loop, []).append((req.waiter, None, res))
                continue
            if req.future is not None:
                if error is not None:
                    req.future.set_exception(error)
                else:
                    req.future.set_result(res)  # type: ignore[arg-type]
            elif req.loop is not None and req.waiter is not None:
                by_loop.setdefault(req.loop, []).append((req.waiter, res, error))
        for loop, outcomes in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, outcomes)

    def _commit(self, group: Sequence[_Request]) -> list[list[AppendResult] | Exception]:
        flat_count = sum(len(req.events) for req in group)
        started = time.perf_counter()
        folded, self._folded = self._folded, None  # valid again only once this commits
        with self._engine.begin() as conn:
            eventlog.lock_for_writing(conn)
            head = eventlog.head_position(conn)
            if folded is not None and folded[0] == head:
                # Nobody appended since our last commit: every projection is at the head.
                positions, seen = folded[1], set()
            else:
                # Events other processes wrote since our last commit come first, so the
                # projections stay in position order.
                positions, seen = self._projector.catch_up_in(conn)
                # The read models are shared: another process may already have folded its
                # own events, yet this process's caches (registry, tokens, deployments) must
                # hear of them too.
                seen |= eventlog.types_after(conn, self.position)
            outcomes = eventlog.append_group(conn, [(req.events, req.expected) for req in group],
                                             head=head)
            stored = [
                StoredEvent(r.position, e.event_id, e.type, e.stream, e.recorded_at,
                            e.payload if e.type in _JSON_NATIVE_TYPES
                            else json.loads(eventlog.encode_payload(e.payload)),
                            r.stream_version)
                for req, results in zip(group, outcomes, strict=True)
                if not isinstance(results, Exception)
                for e, r in zip(req.events, results, strict=True)
                if not r.duplicate
            ]
            positions = self._projector.apply(conn, stored, positions)
            if stored:
                head = stored[-1].position
        self._folded = (head, positions)
        seen.update(s.type for s in stored)
        if self._on_commit is not None:
            self._on_commit(flat_count, len(stored), time.perf_counter() - started)
        self._notify(stored, seen, head)
        return outcomes

    def _notify(self, stored: list[StoredEvent], seen: set[str], head: int) -> None:
        self.position = max(self.position, head)
        for listener in self._listeners:
            try:
                listener(stored, seen, head)
            except Exception:
                log.exception("change_listener_failed")


def _settle(outcomes: list[Outcome]) -> None:
    """Resolve the asyncio waiters of one group commit (runs on their event loop)."""
    for waiter, result, error in outcomes:
        if waiter.done():  # the request was cancelled (client went away)
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(result)
