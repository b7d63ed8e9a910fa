"""Test helpers: real daemons on loopback, in a thread or as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from service.runtime.daemon import Daemon
from service.runtime.settings import Settings
from service.server import EmbeddedServer, build, free_port, wait_until_up

REPO = Path(__file__).resolve().parent.parent
PROMPTD = str(Path(sys.executable).parent / "promptd")


@dataclass
class LiveDaemon:
    """A daemon served by a real uvicorn on loopback, in a thread of the test process."""

    url: str
    admin_token: str
    daemon: Daemon
    settings: Settings
    server: EmbeddedServer
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        """Return an httpx client for this daemon (admin token unless told otherwise)."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        c = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
        self.clients.append(c)
        return c

    def issue(self, role: str = "agent") -> str:
        """Return a fresh token of ``role``."""
        r = self.client().post("/v1/tokens", json={"role": role, "name": f"test-{role}"})
        r.raise_for_status()
        return str(r.json()["token"])

    def create_prompt(self, name: str = "support/triage",
                      template: str = "Answer the ticket {{ ticket }} for {{ customer }}.") -> None:
        """Create a prompt through the API."""
        r = self.client().post("/v1/prompts", json={"name": name, "template": template})
        r.raise_for_status()

    def stop(self) -> None:
        """Shut the server (and with it the daemon) down."""
        for c in self.clients:
            c.close()
        self.server.stop()


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    """Return settings that keep every file under ``tmp`` and run no scheduler."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'promptd.db'}",
        "token_file": tmp / "admin.token",
        "port": free_port(),
        "scheduler_enabled": False,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def live_daemon(tmp: Path, **overrides: Any) -> Iterator[LiveDaemon]:
    """Serve a fresh daemon on loopback for the duration of the block."""
    settings = make_settings(tmp, **overrides)
    service = build(settings, registry=CollectorRegistry())
    daemon = service.daemon
    server = EmbeddedServer(service).start()
    live = LiveDaemon(server.url, settings.token_file.read_text().strip(), daemon, settings,
                      server)
    try:
        yield live
    finally:
        live.stop()


@dataclass
class DaemonProcess:
    """``promptd serve`` as a child process (for crash and CLI tests)."""

    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    data_dir: Path

    @property
    def admin_token(self) -> str:
        """Return the bootstrap admin token the daemon wrote."""
        return (self.data_dir / "admin.token").read_text().strip()

    def kill(self) -> None:
        """SIGKILL the daemon: no shutdown hooks run."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """Stop the daemon gracefully."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_process(data_dir: Path, port: int | None = None,
                  extra_env: dict[str, str] | None = None) -> DaemonProcess:
    """Start ``promptd serve`` on a SQLite file in ``data_dir`` and wait until it is up."""
    port = port or free_port()
    env = {
        **os.environ,
        "PROMPTD_DATABASE_URL": f"sqlite:///{data_dir / 'promptd.db'}",
        "PROMPTD_TOKEN_FILE": str(data_dir / "admin.token"),
        "PROMPTD_PORT": str(port),
        "PROMPTD_LOG_FORMAT": "json",
        "PROMPTD_SCHEDULER_ENABLED": "false",
        **(extra_env or {}),
    }
    log = open(data_dir / f"daemon-{port}.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen([PROMPTD, "serve"], env=env, stdout=log, stderr=log, cwd=data_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, timeout=90)  # imports (scipy, sklearn) are slow on a busy machine
    except TimeoutError:
        proc.kill()
        raise
    return DaemonProcess(url, env, proc, data_dir)
