"""Scheduled jobs (APScheduler) run by exactly one process: the leader.

SQLite: the process that owns the file leads. PostgreSQL: whoever holds a session-level
advisory lock leads; if it dies its session ends, the lock is released, and another
process takes it on its next attempt (within one ``leader_check`` interval).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, Engine, text

from service.runtime.metrics import Metrics

log = structlog.get_logger("promptd.scheduler")

ADVISORY_LOCK_KEY = 0x70726F6D  # "prom": one scheduler leader per database
JobFunc = Callable[[float], Any]


@dataclass(frozen=True)
class Job:
    """A named function called with ``now`` every ``interval_s`` seconds."""

    name: str
    func: JobFunc
    interval_s: float


class Leadership:
    """Tells whether this process may run the scheduled jobs."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._embedded = engine.dialect.name == "sqlite"

    def acquire(self) -> bool:
        """Return True if this process leads now (taking the lock if it is free)."""
        if self._embedded:
            return True
        with self._lock:
            if self._conn is not None:
                try:  # still holding it? a broken session means the lock is gone too
                    self._conn.execute(text("SELECT 1"))
                    return True
                except Exception:
                    self._drop()
            conn = self._engine.connect()
            try:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": ADVISORY_LOCK_KEY}).scalar())
                conn.commit()
            except Exception:
                conn.close()
                raise
            if got:
                self._conn = conn
                log.info("became_leader")
            else:
                conn.close()
            return got

    def release(self) -> None:
        """Give up leadership (on shutdown)."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": ADVISORY_LOCK_KEY})
                    self._conn.commit()
                finally:
                    self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("leader_connection_close_failed")
            self._conn = None


class JobScheduler:
    """Runs jobs on intervals while this process leads; records metrics for each run."""

    def __init__(self, engine: Engine, metrics: Metrics, clock: Callable[[], float] = time.time,
                 *, leader_check_s: float = 2.0) -> None:
        self._metrics = metrics
        self._clock = clock
        self.leadership = Leadership(engine)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._leader_check_s = leader_check_s
        self.is_leader = False
        self._job_locks: dict[str, threading.Lock] = {}
        self.jobs: dict[str, Job] = {}
        self.last_result: dict[str, Any] = {}

    def add(self, job: Job) -> None:
        """Register a job (before ``start``)."""
        self.jobs[job.name] = job
        self._job_locks[job.name] = threading.Lock()  # the timer and /v1/jobs never overlap

    def start(self) -> None:
        """Start the interval timers."""
        for job in self.jobs.values():
            self._scheduler.add_job(self.run_job, "interval", args=[job.name],
                                    seconds=job.interval_s, id=job.name, max_instances=1,
                                    coalesce=True, misfire_grace_time=None)
        self._scheduler.add_job(self._check_leadership, "interval",
                                seconds=self._leader_check_s, id="_leadership",
                                max_instances=1, coalesce=True)
        self._check_leadership()
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the timers, wait for a running job, give up leadership."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self.leadership.release()
        self.is_leader = False
        self._metrics.is_leader.set(0)

    def check_leadership(self) -> None:
        """Take or confirm leadership now (also done every ``leader_check_s``)."""
        self._check_leadership()

    def _check_leadership(self) -> None:
        try:
            leading = self.leadership.acquire()
        except Exception as exc:
            log.warning("leadership_check_failed", error=str(exc))
            leading = False
        if leading != self.is_leader:
            log.info("leadership_changed", leader=leading)
        self.is_leader = leading
        self._metrics.is_leader.set(1 if leading else 0)

    def run_job(self, name: str) -> bool:
        """Run one job now if this process leads; return whether it ran and succeeded.

        A failing job is logged and counted, and tried again at its next interval: it never
        stops the daemon.
        """
        if not self.is_leader:
            return False
        job = self.jobs[name]
        # Jobs run concurrently (a slow mining run must not starve the canary); APScheduler's
        # max_instances=1 keeps each job single, and commands that must not interleave (version
        # numbers, deployment starts) take the daemon's registry lock.
        with self._job_locks[name]:
            started = time.perf_counter()
            try:
                self.last_result[name] = job.func(self._clock())
            except Exception as exc:
                self._metrics.job_runs.labels(name, "failure").inc()
                log.exception("job_failed", job=name, error=str(exc))
                return False
            finally:
                self._metrics.job_seconds.labels(name).observe(time.perf_counter() - started)
        self._metrics.job_runs.labels(name, "success").inc()
        self._metrics.job_last_success.labels(name).set(self._clock())
        return True
