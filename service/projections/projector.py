"""The projector: folds the log into read models, each tracking the position it applied.

A projection is a plain object with a ``name``, the event ``types`` it cares about and
``apply(conn, events)``; it writes only its own tables, inside the transaction the
projector gives it, together with its new position. So a crash between two batches leaves
the projection exactly at a committed position, and a restart resumes exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Table, bindparam, select, update

from service.store import eventlog
from service.store.eventlog import StoredEvent
from service.store.schema import (
    projection_positions,
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


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in one ``executemany``.

    On SQLite through the driver: Core spends more on binding each dict than SQLite spends
    on the insert, and a replay chunk writes tens of thousands of them.
    """
    if not rows:
        return
    driver = eventlog.sqlite_driver(conn)
    if driver is None:
        conn.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    driver.executemany(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ("
                       + ", ".join("?" * len(names)) + ")",
                       [tuple(row[n] for n in names) for row in rows])


def exists(conn: Connection, table: Table, **key: Any) -> bool:
    where = [table.c[k] == v for k, v in key.items()]
    return conn.execute(select(table.c[next(iter(key))]).where(*where)).first() is not None


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
