"""Queries over the read models: each opens its own read transaction and returns values.

Routes and jobs ask these instead of holding connections themselves. Every query runs on the
read engine (deferred transactions: on SQLite in WAL mode it never waits for a group commit
nor makes one wait).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from analytics.mining import WindowCounts
from analytics.mining.clarity import meaningful_correction
from analytics.mining.model import FailureRecord
from deploy.state import DeploymentState
from deploy.stats import StepStats
from improver.gate import GateCase
from service.projections import failures, report, rollout, views
from service.projections.projector import Projector
from service.store import eventlog
from service.store.eventlog import StoredEvent
from service.store.schema import events


class Queries:
    """Read-only questions about the log and its read models."""

    def __init__(self, engine: Engine, projector: Projector) -> None:
        self._engine = engine
        self._projector = projector

    # -- the log -----------------------------------------------------------------------------

    def head_and_lag(self) -> tuple[int, int]:
        """Return the log's head position and how far the slowest read model lags it."""
        with self._engine.connect() as conn:
            return eventlog.head_position(conn), self._projector.lag(conn)

    def projection_lag(self) -> int:
        """Return how many events the read models are behind the log (0 when caught up)."""
        return self.head_and_lag()[1]

    def events(self, after: int, limit: int, *, types: Sequence[str] | None = None,
               stream: str | None = None) -> tuple[list[StoredEvent], int]:
        """Return up to ``limit`` events after a position (filtered) and the head."""
        with self._engine.connect() as conn:
            batch = eventlog.read(conn, after, limit, types=types, stream=stream)
            return batch, eventlog.head_position(conn)

    def last_events(self, limit: int, *, types: Sequence[str] | None = None,
                    stream: str | None = None) -> tuple[list[StoredEvent], int]:
        """Return the newest ``limit`` events matching the filters (oldest first) and the head.

        The filter applies before the limit: the last 20 corrections, not the corrections
        among the last 20 events.
        """
        query = select(events.c.position)
        if types:
            query = query.where(events.c.type.in_(list(types)))
        if stream:
            query = query.where(events.c.stream == stream)
        query = query.order_by(events.c.position.desc()).limit(1).offset(limit - 1)
        with self._engine.connect() as conn:
            oldest = conn.execute(query).scalar()
            batch = eventlog.read(conn, (oldest or 1) - 1, limit, types=types, stream=stream)
            return batch, eventlog.head_position(conn)

    # -- prompts -----------------------------------------------------------------------------

    def counts(self, prompt: str) -> dict[int, dict[str, float]]:
        """Return per-version execution and correction counts of one prompt."""
        with self._engine.connect() as conn:
            return views.load_counts(conn, prompt)

    def policy_overrides(self, prompt: str) -> dict[str, Any]:
        """Return a prompt's stored canary policy overrides ({} when none)."""
        with self._engine.connect() as conn:
            return rollout.load_policy_overrides(conn, prompt)

    def timeline(self, prompt: str, limit: int = 500) -> list[dict[str, Any]]:
        """Return a prompt's timeline, oldest first (the newest ``limit`` entries)."""
        with self._engine.connect() as conn:
            return rollout.load_timeline(conn, prompt, limit)

    def candidates(self, prompt: str | None = None) -> list[dict[str, Any]]:
        """Return machine-written candidates (of one prompt, or all), newest first."""
        with self._engine.connect() as conn:
            return rollout.load_candidates(conn, prompt)

    def rejected_hashes(self, prompt: str) -> set[str]:
        """Return the normalised-text hashes of this prompt's candidates that did not ship."""
        with self._engine.connect() as conn:
            return rollout.rejected_hashes(conn, prompt)

    # -- deployments -------------------------------------------------------------------------

    def deployment(self, deployment_id: str) -> DeploymentState | None:
        """Return one deployment's state, or None."""
        with self._engine.connect() as conn:
            row = rollout.load_row(conn, deployment_id)
        return row.state() if row is not None else None

    def deployments(self, *, prompt: str | None = None, active_only: bool = False,
                    id_prefix: str | None = None,
                    limit: int | None = None) -> list[DeploymentState]:
        """Return deployments (oldest first): of one prompt, only live ones, or whose id
        starts with ``id_prefix``; at most ``limit``."""
        with self._engine.connect() as conn:
            return rollout.load_deployments(conn, prompt=prompt, active_only=active_only,
                                            id_prefix=id_prefix, limit=limit)

    def step_stats(self, deployment_id: str) -> StepStats:
        """Return a deployment's statistics: step -> arm -> ArmStats."""
        with self._engine.connect() as conn:
            return rollout.load_step_stats(conn, deployment_id)

    def stats_of(self, states: Sequence[DeploymentState]
                 ) -> list[tuple[DeploymentState, StepStats]]:
        """Return each deployment with its statistics, read in one transaction."""
        with self._engine.connect() as conn:
            return [(s, rollout.load_step_stats(conn, s.deployment_id)) for s in states]

    # -- reports -----------------------------------------------------------------------------

    def report(self, *, since: float, until: float, prompt: str | None = None) -> dict[str, Any]:
        """Return the report of every prompt (or one) between two times, in one transaction."""
        with self._engine.connect() as conn:
            return report.load_report(conn, since=since, until=until, prompt=prompt)

    # -- failures and patterns ---------------------------------------------------------------

    def snapshot(self, prompt: str) -> dict[str, Any] | None:
        """Return the latest mining snapshot of a prompt, or None."""
        with self._engine.connect() as conn:
            return failures.load_snapshot(conn, prompt)

    def gate_cases(self, prompt: str, limit: int) -> list[GateCase]:
        """Return the newest corrections of a prompt that say what the answer should have been.

        The offline gate replays them: the input, its variables, the reviewer's reason and
        the corrected output (a bare "ok" or an unchanged output is not a correction).
        """
        if limit <= 0:
            return []
        with self._engine.connect() as conn:
            records = failures.load_corrected(conn, prompt, limit * 3)
        cases = [GateCase(r.input_text or "", dict(r.variables), r.reason,
                          r.corrected_output or "")
                 for r in records if r.input_text
                 and meaningful_correction(r.output_text, r.corrected_output)]
        return cases[:limit]

    def recorded_variables(self, prompt: str) -> list[dict[str, Any]]:
        """Return the newest variables agents rendered a prompt with."""
        with self._engine.connect() as conn:
            return failures.load_recorded_variables(conn, prompt)

    def mining_input(self, prompt: str, *, since: float, now: float, window_s: float,
                     n_windows: int, force: bool = False) -> MiningInput:
        """Return what mining reads, in one transaction (see ``MiningInput``)."""
        with self._engine.connect() as conn:
            stream = f"patterns:{prompt}"
            version = eventlog.stream_versions(conn, [stream])[stream]
            latest = failures.latest_failure_position(conn, prompt)
            snapshot = failures.load_snapshot(conn, prompt)
            if latest == 0 or (not force and snapshot and snapshot["upto_position"] >= latest):
                return MiningInput(latest, snapshot, version, [], [])
            records = failures.load_failures(conn, prompt, since=since)
            windows = failures.load_windows(conn, prompt, now=now, window_s=window_s,
                                            n_windows=n_windows)
        return MiningInput(latest, snapshot, version, records, windows)


@dataclass(frozen=True)
class MiningInput:
    """What one mining run of a prompt reads.

    ``records`` and ``windows`` are empty when the last snapshot has seen every failure.
    ``stream_version`` is the version of the prompt's ``patterns:`` stream the snapshot was
    read at: the new snapshot is appended at it, so two miners never both append one.
    """

    latest_failure: int
    snapshot: dict[str, Any] | None
    stream_version: int
    records: list[FailureRecord]
    windows: list[WindowCounts]
