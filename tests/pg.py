"""A throwaway PostgreSQL server for the test session: initdb, start, one database per test.

The server lives in a temporary directory on a free loopback port with its socket beside it,
so it never touches a system cluster. PostgreSQL refuses to run as root, so as root every
server command runs as the ``postgres`` user (created by the Debian package).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.support import free_port

SERVER_USER = "postgres"
_START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries could be found or installed."""


def find_bin_dir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl`` (newest version), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                        else 0)
    for d in reversed(candidates):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    return None


def install_server() -> Path:
    """Install the Debian ``postgresql`` package, stop any cluster it starts; return bin dir."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable("initdb/pg_ctl not found and cannot apt-get install postgresql")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
                   check=True, env=env, capture_output=True)
    stop_system_clusters()
    found = find_bin_dir()
    if found is None:
        raise PostgresUnavailable("postgresql installed but initdb/pg_ctl still not found")
    return found


def stop_system_clusters() -> None:
    """Stop every cluster the Debian package runs, so the tests leave nothing behind."""
    if shutil.which("pg_lsclusters") is None:
        return
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3] == "online":
            subprocess.run(["pg_ctlcluster", parts[0], parts[1], "stop"], capture_output=True)


def ensure_server_user() -> None:
    """Create the ``postgres`` system user when running as root without one."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh",
                        SERVER_USER], check=True, capture_output=True)


def _as_server_user(cmd: list[str]) -> list[str]:
    # Root may not run postgres; everyone else runs it as themselves.
    return ["runuser", "-u", SERVER_USER, "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresServer:
    """A running throwaway server; ``url(db)`` gives SQLAlchemy URLs for its databases."""

    bin_dir: Path
    root: Path
    port: int
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _running: bool = False

    @property
    def data_dir(self) -> Path:
        """Return the cluster's data directory."""
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of ``database`` on this server (TCP on loopback)."""
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SERVER_USER,
                               dbname="postgres", autocommit=True)

    def start(self) -> None:
        """Create the cluster and start the server; raise if it does not come up."""
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_server_user()
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)
        subprocess.run(_as_server_user([
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SERVER_USER,
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
        ]), check=True, capture_output=True, cwd=self.root)
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c max_connections=300 -c shared_buffers=32MB")
        subprocess.run(_as_server_user([
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l",
            str(self.root / "server.log"), "-o", options, "-w", "-t", str(_START_TIMEOUT_S),
            "start",
        ]), check=True, capture_output=True, cwd=self.root)
        self._running = True
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with self._admin():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, prefix: str = "promptd_test") -> str:
        """Create a fresh empty database and return its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        if self._running:
            subprocess.run(_as_server_user([
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                "stop",
            ]), capture_output=True, cwd=self.root)
            self._running = False
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """Find (or install) PostgreSQL, start a throwaway server and return it."""
    bin_dir = find_bin_dir() or install_server()
    root = Path(tempfile.mkdtemp(prefix="promptd-pg-"))
    server = PostgresServer(bin_dir, root, free_port())
    # A session killed before its fixtures tear down must not leave a server running.
    atexit.register(server.stop)
    try:
        server.start()
    except BaseException:
        with contextlib.suppress(Exception):
            log = (root / "server.log").read_text()
            print(log[-4000:])
        server.stop()
        raise
    return server
