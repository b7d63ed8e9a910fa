"""The append-only event log: append (idempotent by event id, guarded by stream versions)
and read by position or by stream."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError

from service.store.refusals import (
    EventIdConflict,
    EventLogError,
    EventRefused,
    MissingReference,
    Reference,
    StreamConflict,
)
from service.store.schema import events, writer_probe

_ID_CHUNK = 500  # stays under SQLite's bound-parameter limit
# Built once: constructing a Core statement costs more than running it on the ingest path.
_HEAD = select(func.coalesce(func.max(events.c.position), 0))
_EXISTING = select(events.c.event_id, events.c.position, events.c.stream, events.c.type,
                   events.c.payload).where(events.c.event_id.in_(bindparam("ids", expanding=True)))
_REFERENCED = select(events.c.event_id, events.c.stream, events.c.type).where(
    events.c.event_id.in_(bindparam("ids", expanding=True)))
_VERSIONS = select(events.c.stream, func.max(events.c.stream_version)).where(
    events.c.stream.in_(bindparam("streams", expanding=True))).group_by(events.c.stream)
_INSERT = events.insert()


# stream -> the version the decision was made on (0: the stream must not exist yet)
Expected = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event not yet in the log."""

    event_id: str
    type: str
    stream: str
    payload: dict[str, Any]
    recorded_at: float
    # False for agent traffic: it takes no stream version (it decides nothing, and must
    # never make a decision on the same stream conflict).
    versioned: bool = True
    # The event this one is about (a correction's execution): checked in the appending
    # transaction, so it holds whatever else is appended at the same time.
    requires: Reference | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the log holds it."""

    position: int
    event_id: str
    type: str
    stream: str
    recorded_at: float
    payload: dict[str, Any]
    stream_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict (the API's wire form)."""
        return {
            "position": self.position,
            "event_id": self.event_id,
            "type": self.type,
            "stream": self.stream,
            "stream_version": self.stream_version,
            "recorded_at": self.recorded_at,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an appended event landed, and whether it was already there."""

    event_id: str
    position: int
    duplicate: bool
    stream_version: int | None = None


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


def stream_versions(conn: Connection, streams: Iterable[str]) -> dict[str, int]:
    """Return the current version of each stream (0 for a stream with no versioned event)."""
    wanted = sorted(set(streams))
    found: dict[str, int] = dict.fromkeys(wanted, 0)
    driver = sqlite_driver(conn)
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start : start + _ID_CHUNK]
        if driver is not None:
            rows = driver.execute("SELECT stream, max(stream_version) FROM events WHERE stream "
                                  "IN (" + ", ".join("?" * len(chunk)) + ") GROUP BY stream",
                                  chunk).fetchall()
        else:
            rows = conn.execute(_VERSIONS, {"streams": chunk}).all()
        found.update({stream: int(v or 0) for stream, v in rows})
    return found


Request = tuple[Sequence[NewEvent], "Expected | None"]
Outcome = list[AppendResult] | StreamConflict | EventRefused


@dataclass(frozen=True, slots=True)
class _Found:
    """An event already in the log (or appended earlier in the same group)."""

    position: int
    stream: str
    type: str
    payload: str  # canonical JSON text


def _refusal(batch: Sequence[NewEvent], existing: Mapping[str, _Found],
             referenced: Mapping[str, tuple[str, str]]) -> EventRefused | None:
    """Return why ``batch`` may not be appended as a whole, or None."""
    here: dict[str, NewEvent] = {}  # earlier events of this batch
    for index, e in enumerate(batch):
        known = existing.get(e.event_id)
        if known is not None or e.event_id in here:
            # An identical retry is a no-op; anything else under a known id is refused. Only
            # agent events are compared: promptd's own decisions are written once, by us.
            if not e.versioned:
                if known is not None:
                    first = (known.stream, known.type, known.payload)
                else:
                    twin = here[e.event_id]
                    first = (twin.stream, twin.type, encode_payload(twin.payload))
                if first != (e.stream, e.type, encode_payload(e.payload)):
                    return EventIdConflict(index, e.event_id,
                                           known.position if known is not None else None)
            continue
        ref = e.requires
        if ref is not None:
            log_hit = existing.get(ref.event_id)
            earlier = here.get(ref.event_id)
            found = ((log_hit.stream, log_hit.type) if log_hit is not None
                     else (earlier.stream, earlier.type) if earlier is not None
                     else referenced.get(ref.event_id))
            if found != (ref.stream, ref.type):
                return MissingReference(index, e.event_id, ref, found)
        here[e.event_id] = e
    return None


def append(conn: Connection, batch: Sequence[NewEvent], *, head: int | None = None,
           expected: Expected | None = None) -> list[AppendResult]:
    """Append ``batch`` inside the caller's transaction; existing event ids are no-ops.

    ``expected`` maps streams to the version the caller decided on; if any stream has moved
    on, nothing is appended and ``StreamConflict`` is raised. See ``append_group``.
    """
    outcome = append_group(conn, [(batch, expected)], head=head)[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def append_group(conn: Connection, requests: Sequence[Request], *,
                 head: int | None = None) -> list[Outcome]:
    """Append several requests in the caller's transaction; each succeeds or conflicts alone.

    Positions are ``head + 1, head + 2, ...`` taken under an exclusive lock, so they are dense
    and equal commit order: a reader tailing by position can never see a gap that fills in
    later (the bug pyeventsourcing guards against the same way). A caller that already took
    ``lock_for_writing`` and read ``head_position`` in this transaction passes ``head``.

    Every versioned event takes its stream's next version. A request whose ``expected``
    versions are not the streams' current ones appends nothing and gets a ``StreamConflict``
    instead of results (unless all its events are already in the log: a retry that
    succeeded before is answered as duplicates). The unique ``(stream, stream_version)``
    index stands behind the check: two writers that both passed it cannot both commit.

    A request is refused alone, with an ``EventRefused`` instead of results, when an agent
    event reuses a known event id for a different event (``EventIdConflict``), or when an
    event ``requires`` one that is neither in the log nor earlier in the group
    (``MissingReference``).
    """
    if not any(batch for batch, _ in requests):
        return [[] for _ in requests]
    if head is None:
        lock_for_writing(conn)
    existing = _existing(conn, [e.event_id for batch, _ in requests for e in batch])
    references = [e.requires.event_id for batch, _ in requests for e in batch
                  if e.requires is not None and e.requires.event_id not in existing]
    referenced = _referenced(conn, references) if references else {}
    streams = {e.stream for batch, _ in requests for e in batch
               if e.versioned and e.event_id not in existing}
    for _, expected in requests:
        streams.update(expected or ())
    versions = stream_versions(conn, streams) if streams else {}
    position = head_position(conn) if head is None else head
    rows: list[tuple[Any, ...]] = []
    outcomes: list[Outcome] = []
    for batch, expected in requests:
        if expected and any(e.event_id not in existing for e in batch):
            moved = next(((s, v) for s, v in expected.items() if versions.get(s, 0) != v), None)
            if moved is not None:
                outcomes.append(StreamConflict(moved[0], moved[1], versions.get(moved[0], 0)))
                continue
        refused = _refusal(batch, existing, referenced)
        if refused is not None:
            outcomes.append(refused)
            continue
        results: list[AppendResult] = []
        for e in batch:
            known = existing.get(e.event_id)
            if known is not None:
                results.append(AppendResult(e.event_id, known.position, True))
                continue
            position += 1
            text = encode_payload(e.payload)
            existing[e.event_id] = _Found(position, e.stream, e.type, text)
            stream_version = None
            if e.versioned:
                stream_version = versions[e.stream] = versions.get(e.stream, 0) + 1
            rows.append((position, e.event_id, e.type, e.stream, stream_version, e.recorded_at,
                         1, text))
            results.append(AppendResult(e.event_id, position, False, stream_version))
        outcomes.append(results)
    if rows:
        driver = sqlite_driver(conn)
        if driver is not None:
            driver.executemany(_SQLITE_INSERT, rows)
        else:
            conn.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    return outcomes


def _existing(conn: Connection, event_ids: Sequence[str]) -> dict[str, _Found]:
    # The payload is read only for ids already in the log (retries): fresh ids find no row.
    ids = list(dict.fromkeys(event_ids))
    existing: dict[str, _Found] = {}
    driver = sqlite_driver(conn)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        if driver is not None:
            found = driver.execute("SELECT event_id, position, stream, type, payload FROM "
                                   "events WHERE event_id IN ("
                                   + ", ".join("?" * len(chunk)) + ")", chunk).fetchall()
        else:
            found = conn.execute(_EXISTING, {"ids": chunk}).all()
        existing.update({row[0]: _Found(row[1], row[2], row[3], row[4]) for row in found})
    return existing


def _referenced(conn: Connection, event_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Return (stream, type) of each of ``event_ids`` the log holds (by the unique index)."""
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, tuple[str, str]] = {}
    driver = sqlite_driver(conn)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        if driver is not None:
            rows = driver.execute("SELECT event_id, stream, type FROM events WHERE event_id IN ("
                                  + ", ".join("?" * len(chunk)) + ")", chunk).fetchall()
        else:
            rows = conn.execute(_REFERENCED, {"ids": chunk}).all()
        found.update({row[0]: (row[1], row[2]) for row in rows})
    return found


def write_probe(conn: Connection, size: int) -> None:
    """Rewrite the one row of the probe table with ``size`` bytes (can the log take writes?).

    Not part of the log nor of any read model: replay never compares it.
    """
    conn.execute(writer_probe.delete())
    conn.execute(writer_probe.insert().values(id=1, written_at=time.time(),
                                              filler=b"\0" * size))


_COLUMNS = ("position", "event_id", "type", "stream", "stream_version", "recorded_at",
            "schema_version", "payload")
_SQLITE_INSERT = (f"INSERT INTO events ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


# A row of the events table in _COLUMNS order, payload as stored (canonical JSON text).
EventRow = tuple[int, str, str, str, "int | None", float, int, str]


def event_of_row(row: EventRow) -> StoredEvent:
    """Return the event a stored row holds (its payload decoded)."""
    return StoredEvent(row[0], row[1], row[2], row[3], row[5], json.loads(row[7]), row[4])


def copy_events(conn: Connection, batch: Sequence[StoredEvent]) -> None:
    """Insert already-positioned events verbatim (replay and restore, never ingest)."""
    driver = sqlite_driver(conn)
    if batch and driver is not None:
        driver.executemany(_SQLITE_INSERT, [
            (e.position, e.event_id, e.type, e.stream, e.stream_version, e.recorded_at, 1,
             encode_payload(e.payload)) for e in batch])
    elif batch:
        conn.execute(events.insert(), [
            {"position": e.position, "event_id": e.event_id, "type": e.type, "stream": e.stream,
             "stream_version": e.stream_version, "recorded_at": e.recorded_at,
             "schema_version": 1,
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


def find_many_before(conn: Connection, wanted: Sequence[tuple[str, int]]
                     ) -> dict[tuple[str, int], StoredEvent]:
    """Return ``find_before`` for many (event id, position) pairs in a few queries.

    A fold joins every correction of a batch to its execution this way: one query per 500
    ids instead of one per correction.
    """
    if not wanted:
        return {}
    ids = sorted({event_id for event_id, _ in wanted})
    found: dict[str, StoredEvent] = {}
    driver = sqlite_driver(conn)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        if driver is not None:
            for raw in driver.execute(f"SELECT {', '.join(_COLUMNS)} FROM events WHERE "
                                      "event_id IN (" + ", ".join("?" * len(chunk)) + ")",
                                      chunk):
                found[raw[1]] = event_of_row(raw)
            continue
        for row in conn.execute(select(events).where(events.c.event_id.in_(chunk))):
            found[row.event_id] = _row_to_event(row)
    out: dict[tuple[str, int], StoredEvent] = {}
    for event_id, position in wanted:
        event = found.get(event_id)
        if event is not None and event.position < position:
            out[(event_id, position)] = event
    return out


def _row_to_event(row: Any) -> StoredEvent:
    return StoredEvent(
        position=row.position,
        event_id=row.event_id,
        type=row.type,
        stream=row.stream,
        recorded_at=row.recorded_at,
        payload=json.loads(row.payload),
        stream_version=row.stream_version,
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


def read_stream(conn: Connection, stream: str, after_version: int = 0) -> list[StoredEvent]:
    """Return a stream's versioned events after ``after_version``, in stream order."""
    query = select(events).where(events.c.stream == stream,
                                 events.c.stream_version > after_version
                                 ).order_by(events.c.stream_version)
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
