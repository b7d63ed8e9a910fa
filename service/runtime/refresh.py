"""The refresh loop: fold in what other processes appended, keep slow-moving gauges fresh."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from sqlalchemy import Engine

from service.projections.projector import Projector
from service.runtime.metrics import Metrics
from service.store import eventlog
from service.store.writer import EventWriter

log = structlog.get_logger("promptd.refresh")


class Refresher:
    """A background thread that runs every ``interval_s`` until stopped."""

    def __init__(self, engine: Engine, writer: EventWriter, projector: Projector,
                 metrics: Metrics, interval_s: float, tick: Callable[[], None]) -> None:
        self._engine = engine
        self._writer = writer
        self._projector = projector
        self._metrics = metrics
        self._interval_s = interval_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="promptd-refresh", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        # Other processes (API replicas on PostgreSQL) may append too; fold their events in.
        last_head = self._writer.position
        while not self._stop.wait(self._interval_s):
            try:
                with self._engine.connect() as conn:
                    head = eventlog.head_position(conn)
                    lag = self._projector.lag(conn)
                self._metrics.projection_lag.set(lag)
                self._metrics.log_position.set(head)
                self._metrics.writer_queue_depth.set(self._writer.queue_depth)
                self._tick()  # e.g. step age moves even when nothing else does
                if head != last_head and head > self._writer.position:
                    self._writer.append([])
                last_head = head
            except Exception:
                log.exception("refresh_failed")
