"""``promptd replay``: rebuild every projection from position 0 and compare with the live one."""

from __future__ import annotations

import gc
import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from service.projections import Projection, Projector, default_projections
from service.store import bulk, eventlog
from service.store.database import create_log_engine

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TableComparison:
    """One projection table, live against rebuilt."""

    table: str
    live_rows: int
    replayed_rows: int
    live_digest: str
    replayed_digest: str

    @property
    def equal(self) -> bool:
        """Return True when both hold exactly the same rows."""
        return self.live_digest == self.replayed_digest


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of a replay: position replayed to and each table's comparison."""

    position: int
    events: int
    tables: tuple[TableComparison, ...]

    @property
    def equal(self) -> bool:
        """Return True when every projection table matches."""
        return all(t.equal for t in self.tables)


def table_digest(conn: Connection, table: Table) -> tuple[int, str]:
    """Return (row count, SHA-256 over the rows in primary-key order) of a table."""
    order = list(table.primary_key.columns) or list(table.columns)
    digest = hashlib.sha256()
    count = 0
    driver = eventlog.sqlite_driver(conn)
    # On SQLite the driver reads the rows (Core's row objects cost more than hashing them):
    # no projection column has a type Core would convert, so the values are the same.
    rows = (driver.execute(f"SELECT * FROM {table.name} ORDER BY "
                           + ", ".join(c.name for c in order)) if driver is not None
            else conn.execute(select(table).order_by(*order)))
    for row in rows:
        digest.update(repr(tuple(_canonical(v) for v in row)).encode())
        count += 1
    return count, digest.hexdigest()


def _canonical(value: Any) -> Any:
    # Floats are compared by their repr; sums folded in the same order are bit-identical.
    return float(value) if isinstance(value, float) else value


def replay(
    live_url: str,
    *,
    into_url: str | None = None,
    projections: Sequence[Projection] | None = None,
    progress: Progress | None = None,
    chunk: int = 20_000,
) -> ReplayReport:
    """Rebuild every projection from the live log into a fresh database and compare."""
    projector = Projector(projections if projections is not None else default_projections())
    live = create_log_engine(live_url, for_writing=False, create=False)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if into_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="promptd-replay-")
        into_url = f"sqlite:///{Path(tmp.name) / 'replay.db'}"
    fresh = create_log_engine(into_url)
    # A chunk allocates tens of thousands of payload dicts, freed by reference counting;
    # the cyclic collector would only rescan them (a tenth of the replay's time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _replay(live, fresh, projector, progress, chunk)
    finally:
        if collecting:
            gc.enable()
        live.dispose()
        fresh.dispose()
        if tmp is not None:
            tmp.cleanup()


def _replay(live: Engine, fresh: Engine, projector: Projector, progress: Progress | None,
            chunk: int) -> ReplayReport:
    # One read transaction on the live side: a consistent snapshot even while it serves.
    with live.begin() as lconn:
        live_positions = projector.positions(lconn)
        upto = min(live_positions.values()) if live_positions else 0
        live_digests = {t.name: table_digest(lconn, t) for t in projector.tables}
        positions = {p.name: 0 for p in projector.projections}
        after, total = 0, 0
        while True:
            # Large chunks, one transaction each: every projection folds a chunk in memory
            # and writes it in a few statements; the log's rows are copied as stored.
            rows = bulk.read_rows(lconn, after, chunk, upto=upto)
            if not rows:
                break
            batch = [eventlog.event_of_row(row) for row in rows]
            with fresh.begin() as fconn:
                # The log is copied too: a projection may join an event to an earlier one
                # by id (a correction to its execution), exactly as it did live.
                bulk.copy_rows(fconn, rows)
                positions = projector.apply(fconn, batch, positions)
            after = batch[-1].position
            total += len(batch)
            del rows, batch  # a chunk at a time in memory, not two
            if progress is not None:
                progress(after, upto)
    comparisons = []
    with fresh.begin() as fconn:
        for t in projector.tables:
            live_rows, live_digest = live_digests[t.name]
            rows, digest = table_digest(fconn, t)
            comparisons.append(TableComparison(t.name, live_rows, rows, live_digest, digest))
    return ReplayReport(upto, total, tuple(comparisons))
