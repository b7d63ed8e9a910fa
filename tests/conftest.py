"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveDaemon, live_daemon


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveDaemon]:
    """A real daemon on loopback with a fresh SQLite file, and its admin token."""
    with live_daemon(tmp_path) as d:
        yield d


@pytest.fixture(params=["sqlite"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty event-log database URL on each backend the contract suite covers."""
    return f"sqlite:///{tmp_path / 'log.db'}"
