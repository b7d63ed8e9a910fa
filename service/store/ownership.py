"""One daemon per SQLite file: an OS lock on a file beside the database, held for life.

Two daemons on one SQLite file would both lead the scheduler and both cache the registry;
the second one refuses to start instead, naming the holder. ``flock`` locks belong to the
open file, so the lock goes away with the process, however it ends (even SIGKILL), and a
stale lock file left behind is harmless. PostgreSQL needs none of this: replicas are safe
there (expected versions; one scheduler leader by advisory lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from service.store.identity import URL_SETTING, DatabaseRefused, inspect_sqlite_file


class DatabaseInUse(DatabaseRefused):
    """Another process holds the database: one line naming the file and the holder."""

    def __init__(self, database: Path, pid: int | None) -> None:
        super().__init__(f"{database} is in use by another promptd (pid {pid or 'unknown'}); "
                         "stop it first, or give this one its own PROMPTD_DATABASE_URL")
        self.database, self.pid = database, pid


def lock_path(database: Path) -> Path:
    """Return the lock file beside a SQLite database."""
    return database.with_name(database.name + ".lock")


class DatabaseLock:
    """The exclusive claim of one process on one SQLite database."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = lock_path(database)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``DatabaseInUse``; records this pid in the lock file.

        Nothing is created beside a database that is not promptd's (``NotOurDatabase``), and
        an existing file at the lock's path must look like one of our lock files: empty, or
        a pid. Other problems raise ``DatabaseRefused``, one line each.
        """
        if self._fd is not None:
            return
        inspect_sqlite_file(self.database)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # No symlink followed: the lock's path must not redirect our writes elsewhere.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise DatabaseRefused(f"cannot create the lock file {self.path}: {exc.strerror}; "
                                  "promptd needs a writable directory for its database: fix "
                                  f"the permissions or point {URL_SETTING} elsewhere") from None
        if not _looks_like_a_lock(fd):
            os.close(fd)
            raise DatabaseRefused(f"{self.path} exists and is not a promptd lock file; "
                                  "promptd leaves it untouched: move it away, or point "
                                  f"{URL_SETTING} elsewhere")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DatabaseInUse(self.database, holder) from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the lock file stays: removing it would race a new holder)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(database: Path) -> int | None:
    """Return the pid holding the database's lock (0 if unknown), or None when it is free."""
    path = lock_path(database)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _looks_like_a_lock(fd: int) -> bool:
    """Return True for an empty file or one holding only a pid (what ``acquire`` writes)."""
    os.lseek(fd, 0, os.SEEK_SET)
    content = os.read(fd, 64)
    return (len(content) < 32 and content.strip().isdigit()) or not content.strip()


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or "0") or None
    return None
