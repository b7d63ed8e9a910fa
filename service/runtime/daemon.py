"""The running daemon: where the log, the writer, the read models and the metrics are wired.

Nothing here decides anything. The collaborators each own one concern — ``LiveState`` the
in-memory read models, ``Resolver`` resolve, ``TokenBook`` tokens, ``MetricsExporter`` the
metrics that follow from the log, ``Refresher`` the background refresh — and the scheduled
jobs are given to the daemon by whoever builds it (``service.server``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from deploy.policy import CanaryPolicy, merge_policy
from service.contract import uuid7
from service.contract.system import traffic_stream
from service.projections import Projection, Projector, default_projections
from service.projections.queries import Queries
from service.projections.rollout import DEPLOYMENT_TYPES
from service.runtime.exporter import MetricsExporter
from service.runtime.live import LiveState
from service.runtime.metrics import Metrics
from service.runtime.refresh import Refresher
from service.runtime.resolver import Resolver
from service.runtime.scheduler import Job, JobScheduler
from service.runtime.settings import Settings
from service.runtime.tokens import TokenBook
from service.store.database import create_log_engine, sqlite_path
from service.store.eventlog import NewEvent, StoredEvent
from service.store.ownership import DatabaseLock
from service.store.writer import EventWriter

log = structlog.get_logger("promptd.daemon")

Clock = Callable[[], float]
_REGISTRY_TYPES = frozenset({"prompt.created", "version.created", "label.moved"})
_TOKEN_TYPES = frozenset({"token.issued", "token.revoked"})


class Daemon:
    """One promptd process. ``start()`` before serving; ``stop()`` loses nothing queued."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Clock = time.time,
        extra_projections: Sequence[Projection] = (),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics(registry, backend="sqlite" if settings.is_sqlite else "postgresql")
        # One daemon per SQLite file, claimed before the file is even opened.
        database = sqlite_path(settings.database_url)
        self.ownership = DatabaseLock(database) if database is not None else None
        if self.ownership is not None:
            self.ownership.acquire()
        try:
            # Writes go through one engine (BEGIN IMMEDIATE on SQLite: writers queue for the
            # lock); everything that only reads (routes, jobs, views) uses deferred
            # transactions, which in WAL mode never wait for a group commit nor make one wait.
            self.write_engine = create_log_engine(settings.database_url)
            self.engine = create_log_engine(settings.database_url, for_writing=False)
        except BaseException:
            if self.ownership is not None:
                self.ownership.release()
            raise
        self.projector = Projector([*default_projections(), *extra_projections])
        self.queries = Queries(self.engine, self.projector)
        self.live = LiveState(self.engine)
        self.resolver = Resolver(self.live)
        self.tokens = TokenBook(self.live, self.engine, clock)
        self.exporter = MetricsExporter(self.metrics, self.live, clock, self.queries.stats_of)
        self.live.on_reload(self.exporter.on_reload)
        self.writer = EventWriter(
            self.write_engine, self.projector, max_queue=settings.writer_queue_max,
            max_group_events=settings.writer_max_group, on_commit=self.exporter.observe_commit,
        )
        self.writer.add_listener(self._on_change)
        self.tokens.attach(self.writer)
        self.default_policy = merge_policy(CanaryPolicy(), settings.canary_policy)
        self.render_budget = settings.render_budget()
        self.scheduler = JobScheduler(self.write_engine, self.metrics, clock)
        self.refresher = Refresher(self.engine, self.writer, self.projector, self.metrics,
                                   settings.refresh_interval_s,
                                   self.exporter.export_deployments)
        self.started_at = clock()
        self.admin_token_written: Path | None = None

    def add_jobs(self, jobs: Iterable[Job]) -> None:
        """Schedule ``jobs`` (before ``start``); they run only while this process leads."""
        for job in jobs:
            self.scheduler.add(job)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up the read models, start the writer, make sure an admin token exists."""
        self.live.reload_all()
        self.writer.start()
        self.metrics.log_position.set(self.writer.position)
        self.admin_token_written = self.tokens.ensure_admin(self.settings.token_file)
        self.refresher.start()
        if self.settings.scheduler_enabled:
            self.scheduler.start()
        log.info("daemon_started", backend="sqlite" if self.settings.is_sqlite else "postgresql",
                 position=self.writer.position)

    def stop(self) -> None:
        """Stop the background work; every append already queued is committed first."""
        self.scheduler.stop()
        self.refresher.stop()
        self.writer.stop()
        self.engine.dispose()
        self.write_engine.dispose()
        if self.ownership is not None:
            self.ownership.release()
        log.info("daemon_stopped", position=self.writer.position)

    # -- agent traffic ---------------------------------------------------------------------

    def agent_event(self, event_type: str, payload: dict[str, Any],
                    event_id: str | None = None) -> NewEvent:
        """Return an agent's execution or correction as a log entry (it takes no version).

        Decisions are appended by ``service.commands``, each on its aggregate's stream;
        traffic goes to its own stream per prompt and never conflicts with them.
        """
        return NewEvent(event_id or uuid7(), event_type, traffic_stream(payload["prompt"]),
                        payload, self.clock(), versioned=False)

    def _on_change(self, stored: list[StoredEvent], seen: set[str], head: int) -> None:
        self.metrics.log_position.set(head)
        self.exporter.count(stored)
        self.live.reload(registry=bool(seen & _REGISTRY_TYPES),
                         deployments=bool(seen & DEPLOYMENT_TYPES),
                         tokens=bool(seen & _TOKEN_TYPES))
