"""Read models folded from the log, each tracking the position it has applied.

A projection is a plain object with a ``name``, the event ``types`` it cares about and
``apply(conn, events)``; it writes only its own tables, inside the transaction the
projector gives it, together with its new position. So a crash between two batches leaves
the projection exactly at a committed position, and a restart resumes exactly once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Float, Table, bindparam, func, select, update

from service.store import eventlog
from service.store.eventlog import StoredEvent
from service.store.schema import (
    labels,
    projection_positions,
    prompts,
    tokens,
    version_counts,
    versions,
)


class Projection(Protocol):
    """A read model: which events it folds and how."""

    name: str
    types: frozenset[str]
    tables: tuple[Table, ...]

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        """Fold ``batch`` (already filtered to ``types``) into this projection's tables."""
        ...


def upsert(conn: Connection, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Update the row at ``key`` or insert it; portable across SQLite and PostgreSQL."""
    where = [table.c[k] == v for k, v in key.items()]
    if conn.execute(update(table).where(*where).values(**values)).rowcount == 0:
        conn.execute(table.insert().values(**key, **values))


def _exists(conn: Connection, table: Table, **key: Any) -> bool:
    where = [table.c[k] == v for k, v in key.items()]
    return conn.execute(select(table.c[next(iter(key))]).where(*where)).first() is not None


class RegistryProjection:
    """Prompts, their versions and labels (which version is `production`)."""

    name = "registry"
    types = frozenset({"prompt.created", "version.created", "label.moved"})
    tables = (prompts, versions, labels)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            p = e.payload
            if e.type == "prompt.created":
                # First one wins: two replicas racing to create the same name must not stop
                # the fold (and replay makes the same choice).
                if _exists(conn, prompts, name=p["prompt"]):
                    continue
                conn.execute(
                    prompts.insert().values(
                        name=p["prompt"], description=p.get("description", ""),
                        created_at=e.recorded_at, created_by=p.get("actor", "unknown"),
                        latest_version=0,
                    )
                )
            elif e.type == "version.created":
                if _exists(conn, versions, prompt=p["prompt"], version=p["version"]):
                    continue
                conn.execute(
                    versions.insert().values(
                        prompt=p["prompt"], version=p["version"], template=p["template"],
                        variables=json.dumps(sorted(p.get("variables", []))),
                        parent=p.get("parent"), author=p.get("author", p.get("actor", "unknown")),
                        strategy=p.get("strategy", "manual"), rationale=p.get("rationale", ""),
                        addressed_patterns=json.dumps(list(p.get("addressed_patterns", []))),
                        created_at=e.recorded_at, position=e.position,
                    )
                )
                conn.execute(
                    update(prompts).where(prompts.c.name == p["prompt"])
                    .values(latest_version=p["version"])
                )
            elif e.type == "label.moved":
                upsert(conn, labels, {"prompt": p["prompt"], "label": p["label"]},
                        {"version": p["version"], "previous": p.get("previous"),
                         "moved_at": e.recorded_at,
                         "moved_by": p.get("actor", "unknown")})


@dataclass
class _Counts:
    executions: int = 0
    successes: int = 0
    failures: int = 0
    errors: int = 0
    corrections: int = 0
    latency_us_sum: int = 0
    cost_nanousd_sum: int = 0
    last_execution_at: float | None = None


class VersionCountsProjection:
    """Per prompt version: executions, successes, failures, errors, corrections, sums."""

    name = "version_counts"
    types = frozenset({"execution", "correction"})
    tables = (version_counts,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        # Aggregate the batch first: one statement per version instead of one per event.
        acc: dict[tuple[str, int], _Counts] = defaultdict(_Counts)
        for e in batch:
            p = e.payload
            c = acc[(p["prompt"], p["version"])]
            if e.type == "execution":
                c.executions += 1
                if execution_succeeded(p):
                    c.successes += 1
                else:
                    c.failures += 1
                if p.get("error_type"):
                    c.errors += 1
                c.latency_us_sum += round((p.get("latency_ms") or 0.0) * 1000)
                c.cost_nanousd_sum += round((p.get("cost_usd") or 0.0) * 1e9)
                c.last_execution_at = e.recorded_at
            else:
                c.corrections += 1
        for (prompt, version), c in sorted(acc.items()):
            # Increments in place: one statement per version; integer sums stay associative.
            params = {"p_prompt": prompt, "p_version": version, "d_executions": c.executions,
                      "d_successes": c.successes, "d_failures": c.failures,
                      "d_errors": c.errors, "d_corrections": c.corrections,
                      "d_latency_us_sum": c.latency_us_sum,
                      "d_cost_nanousd_sum": c.cost_nanousd_sum,
                      "d_last_execution_at": c.last_execution_at}
            driver = eventlog.sqlite_driver(conn)
            if driver is not None:
                updated = driver.execute(_SQLITE_ADD_COUNTS, (
                    c.executions, c.successes, c.failures, c.errors, c.corrections,
                    c.latency_us_sum, c.cost_nanousd_sum, c.last_execution_at, prompt, version,
                )).rowcount
            else:
                updated = conn.execute(_ADD_COUNTS, params).rowcount
            if updated == 0:
                conn.execute(version_counts.insert().values(
                    prompt=prompt, version=version, executions=c.executions,
                    successes=c.successes, failures=c.failures, errors=c.errors,
                    corrections=c.corrections, latency_us_sum=c.latency_us_sum,
                    cost_nanousd_sum=c.cost_nanousd_sum, last_execution_at=c.last_execution_at,
                ))


_COUNTED = ("executions", "successes", "failures", "errors", "corrections", "latency_us_sum",
            "cost_nanousd_sum")
_SQLITE_ADD_COUNTS = (
    "UPDATE version_counts SET " + ", ".join(f"{name} = {name} + ?" for name in _COUNTED)
    + ", last_execution_at = coalesce(?, last_execution_at) WHERE prompt = ? AND version = ?"
)
_ADD_COUNTS = update(version_counts).where(
    version_counts.c.prompt == bindparam("p_prompt"),
    version_counts.c.version == bindparam("p_version"),
).values(
    **{name: version_counts.c[name] + bindparam(f"d_{name}") for name in _COUNTED},
    last_execution_at=func.coalesce(bindparam("d_last_execution_at", type_=Float),
                                    version_counts.c.last_execution_at),
)


def execution_succeeded(payload: dict[str, Any]) -> bool:
    """Return whether an execution counts as a success (explicit flag, else score >= 0.5)."""
    success = payload.get("success")
    if success is not None:
        return bool(success)
    score = payload.get("score")
    return score is not None and score >= 0.5


class TokenProjection:
    """API tokens: id, role, hash, revocation. The token itself is never stored."""

    name = "tokens"
    types = frozenset({"token.issued", "token.revoked"})
    tables = (tokens,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            p = e.payload
            if e.type == "token.issued":
                conn.execute(tokens.insert().values(
                    token_id=p["token_id"], role=p["role"], name=p.get("name", ""),
                    token_hash=p["token_hash"], issued_at=e.recorded_at,
                    issued_by=p.get("actor", "unknown"), revoked_at=None,
                ))
            else:
                conn.execute(update(tokens).where(tokens.c.token_id == p["token_id"])
                             .values(revoked_at=e.recorded_at))


class Projector:
    """Folds the log into every registered projection, exactly once, in position order."""

    def __init__(self, projections: Iterable[Projection]) -> None:
        self.projections: tuple[Projection, ...] = tuple(projections)
        names = [p.name for p in self.projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique: {names}")

    @property
    def tables(self) -> tuple[Table, ...]:
        """Every table the projections own (what replay compares)."""
        return tuple(t for p in self.projections for t in p.tables)

    def positions(self, conn: Connection, *, lock: bool = False) -> dict[str, int]:
        """Return each projection's applied position (0 if it has never run)."""
        if lock:
            # Two replicas catching up at once would apply the same events twice. Row locks
            # are not enough: a fresh database has no rows to lock, and a folder holding rows
            # while an appender holds the log deadlocks; so folding takes the log's lock.
            eventlog.lock_for_writing(conn)
        stored = {name: position for name, position in conn.execute(_POSITIONS)}
        return {p.name: stored.get(p.name, 0) for p in self.projections}

    def apply(self, conn: Connection, batch: Sequence[StoredEvent],
              positions: dict[str, int]) -> dict[str, int]:
        """Fold ``batch`` into each projection past its position; return the new positions."""
        if not batch:
            return positions
        first, last = batch[0].position, batch[-1].position
        by_type: dict[str, list[StoredEvent]] = {}
        for e in batch:
            by_type.setdefault(e.type, []).append(e)
        new_positions = dict(positions)
        for proj in self.projections:
            done = positions[proj.name]
            if done < first:  # the usual case: the whole batch is new to every projection
                mine = [e for t, group in by_type.items() if t in proj.types for e in group]
                if len(mine) > 1 and len(by_type) > 1:
                    mine.sort(key=_position)
            else:
                mine = [e for e in batch if e.position > done and e.type in proj.types]
            if mine:
                proj.apply(conn, mine)
            new_positions[proj.name] = max(done, last)
        self._store_positions(conn, positions, new_positions)
        return new_positions

    def _store_positions(self, conn: Connection, old: dict[str, int],
                         new: dict[str, int]) -> None:
        # Usually every projection moves to the same position: one statement for all of them
        # instead of one per projection (a dozen round trips per group commit otherwise).
        moved: dict[int, list[str]] = {}
        for name, pos in new.items():
            if pos != old[name]:
                moved.setdefault(pos, []).append(name)
        driver = eventlog.sqlite_driver(conn)
        for pos, names in moved.items():
            if driver is not None:
                updated = driver.execute(
                    "UPDATE projection_positions SET position = ? WHERE name IN ("
                    + ", ".join("?" * len(names)) + ")", (pos, *names)).rowcount
            else:
                updated = conn.execute(_MOVE_POSITIONS,
                                       {"names": names, "new_position": pos}).rowcount
            if updated != len(names):  # some have no row yet (a fresh database)
                for name in names:
                    upsert(conn, projection_positions, {"name": name}, {"position": pos})

    def catch_up_in(
        self, conn: Connection, *, chunk: int = 2000
    ) -> tuple[dict[str, int], set[str]]:
        """Apply every event not yet applied, inside ``conn``'s transaction.

        Returns the new positions and the set of event types applied (so caches know what
        changed).
        """
        positions = self.positions(conn, lock=True)
        seen: set[str] = set()
        while True:
            low = min(positions.values()) if positions else 0
            batch = eventlog.read(conn, low, chunk)
            if not batch:
                return positions, seen
            seen.update(e.type for e in batch)
            positions = self.apply(conn, batch, positions)

    def lag(self, conn: Connection) -> int:
        """Return how many events the slowest projection is behind the head of the log."""
        head = eventlog.head_position(conn)
        positions = self.positions(conn)
        return head - (min(positions.values()) if positions else head)


_POSITIONS = select(projection_positions.c.name, projection_positions.c.position)
_MOVE_POSITIONS = update(projection_positions).where(
    projection_positions.c.name.in_(bindparam("names", expanding=True))
).values(position=bindparam("new_position"))


def _position(e: StoredEvent) -> int:
    return e.position


def default_projections() -> list[Projection]:
    """Return a fresh instance of every projection the daemon keeps."""
    from service.projections.failures import (
        ActivityProjection,
        FailureProjection,
        PatternProjection,
        RecordedVariablesProjection,
    )
    from service.projections.rollout import (
        ArmStatsProjection,
        CandidateProjection,
        DeploymentProjection,
        PolicyProjection,
        TimelineProjection,
    )

    # Order matters within a batch: deployments before the projections that read them.
    return [RegistryProjection(), VersionCountsProjection(), TokenProjection(),
            FailureProjection(), ActivityProjection(), PatternProjection(),
            RecordedVariablesProjection(),
            DeploymentProjection(), ArmStatsProjection(), CandidateProjection(),
            TimelineProjection(), PolicyProjection()]
