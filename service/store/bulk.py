"""The log in bulk: stored rows read and copied verbatim, for replay (never for ingest)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from service.store.eventlog import EventRow, sqlite_driver
from service.store.schema import events

_COLUMNS = tuple(c.name for c in events.columns)  # the order of EventRow
_INSERT = events.insert()
_SQLITE_INSERT = (f"INSERT INTO events ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
_SQLITE_READ = (f"SELECT {', '.join(_COLUMNS)} FROM events WHERE position > ? AND position <= ? "
                "ORDER BY position LIMIT ?")

def read_rows(conn: Connection, after: int, limit: int, *, upto: int | None = None
              ) -> list[EventRow]:
    """Return up to ``limit`` stored rows with position > ``after`` (<= ``upto``), in order.

    Replay's bulk path: the rows are copied verbatim (no re-encoding of payloads) and each
    decoded once with ``event_of_row``. On SQLite the driver reads them: through Core the
    row objects cost more than the decoding itself.
    """
    bound = upto if upto is not None else 2**63 - 1
    driver = sqlite_driver(conn)
    if driver is not None:
        return driver.execute(_SQLITE_READ, (after, bound, limit)).fetchall()
    query = (select(*(events.c[name] for name in _COLUMNS))
             .where(events.c.position > after, events.c.position <= bound)
             .order_by(events.c.position).limit(limit))
    return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def copy_rows(conn: Connection, rows: Sequence[EventRow]) -> None:
    """Insert stored rows verbatim, one ``executemany`` (replay and restore, never ingest)."""
    if not rows:
        return
    driver = sqlite_driver(conn)
    if driver is not None:
        driver.executemany(_SQLITE_INSERT, rows)
    else:
        conn.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
