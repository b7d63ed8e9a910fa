"""Engines for the two backends, with the durability settings DESIGN.md section 3 requires."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from service.store.identity import (
    APPLICATION_ID,
    URL_SETTING,
    DatabaseNotFound,
    DatabaseRefused,
    Kind,
    create_private,
    inspect_sqlite_file,
    mark_new,
    opened_here,
)
from service.store.schema import metadata

SQLITE_BUSY_TIMEOUT_MS = 10_000
SCHEMA_LOCK_KEY = 0x70726F6E  # PostgreSQL advisory lock held while creating the schema

# Nothing ever updates or deletes a row of the log: the database refuses it, not just our code.
_SQLITE_GUARDS = (
    """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'events is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'events is append-only'); END""",
)
_PG_GUARDS = (
    """CREATE OR REPLACE FUNCTION promptd_events_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'events is append-only'; END; $$ LANGUAGE plpgsql""",
    # Created only when missing: (re)creating a trigger locks the table against readers.
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only'
                        AND tgrelid = 'events'::regclass) THEN
           CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
             FOR EACH ROW EXECUTE FUNCTION promptd_events_append_only();
         END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_no_truncate'
                        AND tgrelid = 'events'::regclass) THEN
           CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
             FOR EACH STATEMENT EXECUTE FUNCTION promptd_events_append_only();
         END IF;
       END $$""",
)


def check_sqlite_url(url: str) -> None:
    """Raise ValueError unless ``url`` names a SQLite file: sqlite:///rel or sqlite:////abs."""
    # The path starts after the third slash: sqlite:///relative or sqlite:////absolute. With
    # two slashes the first path part is a host, which SQLite ignores, so "sqlite://tmp/x.db"
    # would be a file x.db in the working directory. An in-memory log loses everything at exit.
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("sqlite", "sqlite+pysqlite"):
        raise ValueError(f"{url!r}: expected sqlite:///relative/path or sqlite:////absolute/path")
    host, slash, path = rest.partition("/")
    if host:
        raise ValueError(
            f"{url!r} has a host part ({host!r}), which SQLite ignores: write "
            f"sqlite:///{host}/{path} for a path relative to the working directory, or "
            f"sqlite:////{host}/{path} for an absolute one")
    database = path.split("?", 1)[0]
    if not slash or database in ("", ":memory:") or database.startswith("file::memory:"):
        raise ValueError(f"{url!r} is an in-memory database, which loses every event at "
                         "exit: give a file, e.g. sqlite:///var/promptd.db")


def sqlite_path(url: str) -> Path | None:
    """Return the file behind a SQLite URL, or None for other backends and :memory:."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class SchemaMismatch(DatabaseRefused):
    """The database holds a promptd log this version cannot append to; the message says why."""


class DatabaseUnavailable(DatabaseRefused):
    """The database could not be opened or reached; the message says why and what to change."""


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _unavailable(exc: BaseException, url: str, path: Path | None) -> DatabaseRefused:
    """Return the one-line refusal for a failure to open or reach the database."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    if path is None:
        return DatabaseUnavailable(
            f"cannot connect to the database {_safe(url)}: {first}; start it, or fix "
            f"{URL_SETTING}")
    lowered = first.lower()
    if "malformed" in lowered or "not a database" in lowered:
        return DatabaseUnavailable(
            f"{path} is damaged (SQLite: {first}): restore it from a backup with `promptd "
            f"restore`, or point {URL_SETTING} at another file")
    if "readonly" in lowered or "unable to open" in lowered or isinstance(exc, OSError):
        return DatabaseUnavailable(
            f"cannot write {path} (SQLite: {first}): promptd needs write access to the file "
            f"and to its directory (for the -wal and -shm files beside it); fix the "
            f"permissions or point {URL_SETTING} elsewhere")
    return DatabaseUnavailable(f"cannot open {path}: {first}; check it, or point "
                               f"{URL_SETTING} elsewhere")


def _check_log_columns(conn: Any) -> None:
    # A log written before decisions carried stream versions cannot take expected-version
    # appends, and its rows may not be rewritten (the log is append-only): refuse to start.
    columns = {c["name"] for c in inspect(conn).get_columns("events")}
    if "stream_version" not in columns:
        raise SchemaMismatch(
            "this database holds a log written by an older promptd (its events carry no "
            "stream versions); serve it with that version, or point "
            f"{URL_SETTING} at a new database")


def _create_schema(engine: Engine, *, create: bool, where: str) -> None:
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if postgres:
            # Catalog lookups must see the tables a replica starting at the same time just
            # committed, whatever isolation the engine reads with.
            conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            if postgres:
                # Replicas starting together would race to create the same tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            if not create and not inspect(conn).has_table("events"):
                raise DatabaseNotFound(f"{where} holds no promptd log; give the daemon's "
                                       f"database with --database-url or {URL_SETTING}")
            if not postgres and conn.exec_driver_sql(
                    "PRAGMA application_id").scalar() != APPLICATION_ID:
                # A promptd log from before the marker (checked by identity): mark it ours.
                conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
            metadata.create_all(conn)
            _check_log_columns(conn)
            for stmt in _PG_GUARDS if postgres else _SQLITE_GUARDS:
                conn.execute(text(stmt))


def create_log_engine(url: str, *, for_writing: bool = True, create: bool = True,
                      **kwargs: Any) -> Engine:
    """Return an engine for ``url`` with WAL + synchronous=FULL on SQLite; creates the schema.

    ``for_writing=False`` gives plain deferred transactions on SQLite: a reader that must see
    one consistent snapshot (replay, backup) without holding the write lock. ``create=False``
    raises ``DatabaseNotFound`` instead of creating a database that is not there (a SQLite
    file that does not exist or is empty; a PostgreSQL database without the log).

    A SQLite file is looked at before anything touches it: another application's file is
    refused (``NotOurDatabase``, see ``identity``) and left exactly as it was; only a file
    promptd creates here is chmodded 0600. Every failure to open or reach the database is a
    ``DatabaseRefused`` with a one-line message naming what to change.
    """
    if url.startswith("sqlite"):
        try:
            check_sqlite_url(url)
        except ValueError as exc:
            raise DatabaseRefused(f"{URL_SETTING}: {exc}") from None
    path = sqlite_path(url)
    try:
        return _open(url, path, for_writing=for_writing, create=create, **kwargs)
    except DatabaseRefused:
        raise
    except (DBAPIError, sqlite3.Error, OSError) as exc:
        raise _unavailable(exc, url, path) from exc


def _open(url: str, path: Path | None, *, for_writing: bool, create: bool,
          **kwargs: Any) -> Engine:
    if path is not None:
        kind = inspect_sqlite_file(path)
        if kind in (Kind.MISSING, Kind.EMPTY) and not create:
            what = "no such database" if kind is Kind.MISSING else "an empty file"
            raise DatabaseNotFound(
                f"{path}: {what} (from {Path.cwd()}, that is {path.absolute()}); give the "
                f"daemon's database with --database-url or {URL_SETTING}")
        if kind is Kind.MISSING:
            create_private(path)
            mark_new(path)
        elif kind is Kind.EMPTY:
            mark_new(path)  # nothing in it yet: it becomes ours, its mode stays the owner's
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE is ours to issue.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # IMMEDIATE: take the write lock at BEGIN, so two writers queue instead of
            # deadlocking on a read-to-write upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if for_writing else "BEGIN")

    else:
        kwargs.setdefault("pool_pre_ping", True)
        if not for_writing:
            # One snapshot for the whole transaction, as SQLite's deferred BEGIN gives: a
            # replay or backup must not see commits that land while it reads.
            kwargs.setdefault("isolation_level", "REPEATABLE READ")
        engine = create_engine(url, **kwargs)
    try:
        _create_schema(engine, create=create, where=str(path) if path else _safe(url))
    except BaseException:
        engine.dispose()
        raise
    if path is not None:
        opened_here(path)
        # The -wal and -shm files of our database hold its pages: no looser than the file.
        mode = stat.S_IMODE(path.stat().st_mode)
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists() and stat.S_IMODE(side.stat().st_mode) & ~mode:
                os.chmod(side, stat.S_IMODE(side.stat().st_mode) & mode)
    return engine
