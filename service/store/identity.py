"""Whose file is it: tell a promptd database from anything else before touching it.

A wrong ``PROMPTD_DATABASE_URL`` must never make promptd adopt another application's SQLite
file (add its tables, switch it to WAL, chmod it) or overwrite a text file. Everything here
only reads: the 100-byte SQLite header, and the schema through a connection that takes no
lock and writes nothing, not even a ``-wal`` or ``-shm`` beside the file.

The marker is SQLite's ``application_id`` header field (``PRAGMA application_id``), written
when promptd creates a database, before its first schema change. A database made by an
earlier promptd has no marker yet: it is recognised by its tables (``events`` and
``projection_positions``) and marked on its next start.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from enum import Enum
from pathlib import Path
from urllib.parse import quote

APPLICATION_ID = 0x50524D44  # "PRMD"
_MAGIC = b"SQLite format 3\x00"
_HEADER_BYTES = 100
_OUR_TABLES = frozenset({"events", "projection_positions"})
URL_SETTING = "PROMPTD_DATABASE_URL"


class DatabaseRefused(RuntimeError):
    """promptd will not use this database; the message is one line: what is wrong, what to do."""


class NotOurDatabase(DatabaseRefused):
    """The file exists and is not a promptd database (nor empty); it is left as it was."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} {why}; promptd leaves it untouched: point {URL_SETTING} at a "
                         "promptd database or at a new file")
        self.path = path


class DatabaseNotFound(DatabaseRefused):
    """The database a command should read does not exist (it is not created for it)."""


# (device, inode) of every promptd database this process has opened an engine on.
_OPENED_HERE: set[tuple[int, int]] = set()


def opened_here(path: Path) -> None:
    """Record that this process now holds SQLite connections on our database at ``path``."""
    info = path.stat()
    _OPENED_HERE.add((info.st_dev, info.st_ino))


class Kind(Enum):
    """What a path holds, as far as promptd is concerned."""

    MISSING = "missing"
    EMPTY = "empty"  # zero bytes, or a SQLite file with no schema at all
    PROMPTD = "promptd"  # marked with our application id
    PROMPTD_UNMARKED = "promptd_unmarked"  # our tables, from before the marker


def inspect_sqlite_file(path: Path) -> Kind:
    """Return what ``path`` holds, only reading it; raise ``NotOurDatabase`` if it is not ours.

    Refused: anything but a regular file, a file that is not SQLite (text, garbage, a header
    cut short), a SQLite file shorter than its header says (truncated), and a SQLite file of
    another application (another application id, or tables that are not promptd's).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return Kind.MISSING
    if (info.st_dev, info.st_ino) in _OPENED_HERE:
        # Never open a file this process has SQLite connections on: closing any descriptor
        # of it drops the process's POSIX locks, and another process could then take the
        # database for unused and delete its WAL under our connections.
        return Kind.PROMPTD
    if not stat.S_ISREG(info.st_mode):
        raise NotOurDatabase(path, "is not a regular file")
    if info.st_size == 0:
        return Kind.EMPTY
    with open(path, "rb") as fh:
        header = fh.read(_HEADER_BYTES)
    if len(header) < _HEADER_BYTES or not header.startswith(_MAGIC):
        raise NotOurDatabase(path, f"is not a SQLite database ({info.st_size} bytes of "
                                   "something else, or a database cut short)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid when the header's change counter matches its copy (offset 92).
    if header[24:28] == header[92:96] and pages and info.st_size < pages * page_size:
        raise NotOurDatabase(path, f"is a truncated SQLite database ({info.st_size} of the "
                                   f"{pages * page_size} bytes its header announces): restore "
                                   "it from a backup")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id == APPLICATION_ID:
        return Kind.PROMPTD
    if application_id != 0:
        raise NotOurDatabase(path, f"belongs to another application (SQLite application_id "
                                   f"{application_id:#010x})")
    tables, user_version = _schema(path)
    if tables >= _OUR_TABLES:
        return Kind.PROMPTD_UNMARKED
    if not tables and user_version == 0:
        return Kind.EMPTY
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise NotOurDatabase(path, f"is another application's SQLite database (tables: "
                               f"{shown or 'none'}; user_version {user_version})")


def _schema(path: Path) -> tuple[frozenset[str], int]:
    """Return the table names and user_version of a SQLite file, writing nothing anywhere."""
    wal = Path(f"{path}-wal")
    # immutable=1 takes no lock and never creates -wal/-shm, but ignores a WAL; when one is
    # beside the file (its owner is running, or crashed) read-only mode is needed to see it.
    mode = "ro" if wal.exists() and wal.stat().st_size > 0 else "ro&immutable=1"
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = frozenset(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))
            user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise NotOurDatabase(path, f"is a damaged SQLite database ({exc}): restore it from a "
                                   "backup") from None
    return tables, user_version


def create_private(path: Path) -> None:
    """Create ``path`` as a new empty file only its owner may read (never an existing one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise DatabaseRefused(f"{path} appeared while promptd was creating it; "
                              "start again") from None
    except OSError as exc:
        raise DatabaseRefused(f"cannot create the database {path}: {exc.strerror}; point "
                              f"{URL_SETTING} at a writable place") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)  # ours: made just now (the umask may have narrowed it further)


def mark_new(path: Path) -> None:
    """Write our application id into a database file promptd has just created."""
    # In the rollback journal mode a new file starts in, the header goes straight into the
    # file, before any WAL exists: a daemon killed before its first checkpoint still left a
    # file that says it is ours.
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.commit()
    finally:
        conn.close()
