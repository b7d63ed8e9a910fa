"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import LiveDaemon, live_daemon

if TYPE_CHECKING:  # psycopg is an optional dependency: import it only when a test needs it
    from tests.pg import PostgresServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveDaemon]:
    """A real daemon on loopback with a fresh SQLite file, and its admin token."""
    with live_daemon(tmp_path) as d:
        yield d


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session (started on first use)."""
    from tests.pg import start_server

    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database (dropped afterwards)."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty event-log database URL on each backend the contract suite covers."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'log.db'}"
