"""The append-only event log: append (idempotent by event id) and read by position."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError

from service.store.schema import events

_ID_CHUNK = 500  # stays under SQLite's bound-parameter limit
# Built once: constructing a Core statement costs more than running it on the ingest path.
_HEAD = select(func.coalesce(func.max(events.c.position), 0))
_EXISTING = select(events.c.event_id, events.c.position).where(
    events.c.event_id.in_(bindparam("ids", expanding=True)))
_INSERT = events.insert()


class EventLogError(RuntimeError):
    """The log could not be read or written (database unreachable, locked, full)."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event not yet in the log."""

    event_id: str
    type: str
    stream: str
    payload: dict[str, Any]
    recorded_at: float


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the log holds it."""

    position: int
    event_id: str
    type: str
    stream: str
    recorded_at: float
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict (the API's wire form)."""
        return {
            "position": self.position,
            "event_id": self.event_id,
            "type": self.type,
            "stream": self.stream,
            "recorded_at": self.recorded_at,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an appended event landed, and whether it was already there."""

    event_id: str
    position: int
    duplicate: bool


# One encoder for the process: json.dumps with options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_payload(payload: dict[str, Any]) -> str:
    """Return the canonical JSON text of a payload (sorted keys: replay compares bytes)."""
    return _CANONICAL.encode(payload)


def sqlite_driver(conn: Connection) -> sqlite3.Connection | None:
    """Return the sqlite3 connection under ``conn`` inside its transaction, else None.

    The group commit runs a handful of tiny statements per transaction; through Core each
    costs ~30-90 us of Python, through the driver ~3 us. Only inside a transaction, so the
    statement sees the same snapshot as the Core statements around it. None on PostgreSQL.
    """
    if conn.dialect.name != "sqlite" or not conn.in_transaction():
        return None
    return conn.connection.driver_connection  # type: ignore[return-value]


def head_position(conn: Connection) -> int:
    """Return the position of the newest event (0 when the log is empty)."""
    driver = sqlite_driver(conn)
    if driver is not None:
        return int(driver.execute("SELECT coalesce(max(position), 0) FROM events")
                   .fetchone()[0])
    return int(conn.execute(_HEAD).scalar_one())


def types_after(conn: Connection, after: int) -> set[str]:
    """Return the distinct event types at positions greater than ``after``."""
    return set(conn.execute(select(events.c.type).where(events.c.position > after)
                            .distinct()).scalars())


def lock_for_writing(conn: Connection) -> None:
    """Take the log's write lock for the rest of the caller's transaction (PostgreSQL).

    EXCLUSIVE mode queues other appenders and folders but never plain readers. Every
    transaction that appends or folds takes it first, so two processes always lock in the
    same order and cannot deadlock. SQLite: BEGIN IMMEDIATE already holds the only write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))


def append(conn: Connection, batch: Sequence[NewEvent], *,
           head: int | None = None) -> list[AppendResult]:
    """Append ``batch`` inside the caller's transaction; existing event ids are no-ops.

    Positions are ``head + 1, head + 2, ...`` taken under an exclusive lock, so they are dense
    and equal commit order: a reader tailing by position can never see a gap that fills in
    later (the bug pyeventsourcing guards against the same way). A caller that already took
    ``lock_for_writing`` and read ``head_position`` in this transaction passes ``head``.
    """
    if not batch:
        return []
    if head is None:
        lock_for_writing(conn)
    ids = list(dict.fromkeys(e.event_id for e in batch))
    existing: dict[str, int] = {}
    driver = sqlite_driver(conn)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        if driver is not None:
            found = driver.execute("SELECT event_id, position FROM events WHERE event_id IN ("
                                   + ", ".join("?" * len(chunk)) + ")", chunk).fetchall()
        else:
            found = conn.execute(_EXISTING, {"ids": chunk}).all()
        existing.update({event_id: position for event_id, position in found})
    position = head_position(conn) if head is None else head
    results: list[AppendResult] = []
    rows: list[tuple[Any, ...]] = []
    for e in batch:
        if e.event_id in existing:
            results.append(AppendResult(e.event_id, existing[e.event_id], True))
            continue
        position += 1
        existing[e.event_id] = position
        rows.append((position, e.event_id, e.type, e.stream, e.recorded_at, 1,
                     encode_payload(e.payload)))
        results.append(AppendResult(e.event_id, position, False))
    if rows:
        if driver is not None:
            driver.executemany(_SQLITE_INSERT, rows)
        else:
            conn.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    return results


_COLUMNS = ("position", "event_id", "type", "stream", "recorded_at", "schema_version", "payload")
_SQLITE_INSERT = (f"INSERT INTO events ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


def copy_events(conn: Connection, batch: Sequence[StoredEvent]) -> None:
    """Insert already-positioned events verbatim (replay and restore, never ingest)."""
    if batch:
        conn.execute(events.insert(), [
            {"position": e.position, "event_id": e.event_id, "type": e.type, "stream": e.stream,
             "recorded_at": e.recorded_at, "schema_version": 1,
             "payload": encode_payload(e.payload)}
            for e in batch
        ])


def find_before(conn: Connection, event_id: str, position: int) -> StoredEvent | None:
    """Return the event with ``event_id`` if it was appended before ``position``.

    The bound makes joins deterministic: a fold sees exactly what the log held at that
    point, whether it runs live or in a replay that has the whole log.
    """
    row = conn.execute(
        select(events).where(events.c.event_id == event_id, events.c.position < position)
    ).first()
    return _row_to_event(row) if row is not None else None


def _row_to_event(row: Any) -> StoredEvent:
    return StoredEvent(
        position=row.position,
        event_id=row.event_id,
        type=row.type,
        stream=row.stream,
        recorded_at=row.recorded_at,
        payload=json.loads(row.payload),
    )


def read(
    conn: Connection,
    after: int = 0,
    limit: int = 1000,
    *,
    types: Sequence[str] | None = None,
    stream: str | None = None,
    upto: int | None = None,
) -> list[StoredEvent]:
    """Return up to ``limit`` events with position > ``after`` (and <= ``upto``), in order."""
    query = select(events).where(events.c.position > after)
    if upto is not None:
        query = query.where(events.c.position <= upto)
    if types:
        query = query.where(events.c.type.in_(list(types)))
    if stream:
        query = query.where(events.c.stream == stream)
    query = query.order_by(events.c.position).limit(limit)
    return [_row_to_event(row) for row in conn.execute(query)]


def iterate(engine: Engine, after: int = 0, upto: int | None = None,
            chunk: int = 2000) -> Iterator[StoredEvent]:
    """Yield every event after ``after`` (up to ``upto``) in position order, chunk by chunk."""
    while True:
        with engine.connect() as conn:
            batch = read(conn, after, chunk, upto=upto)
        if not batch:
            return
        yield from batch
        after = batch[-1].position


def translate_errors(exc: BaseException) -> EventLogError | None:
    """Return our own error for a database exception (None if it is not one)."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig
    elif not isinstance(exc, sqlite3.Error):  # raised by statements run on the driver
        return None
    return EventLogError(f"event log unavailable: {exc.__class__.__name__}: {exc}")
