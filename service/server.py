"""The composition root: a daemon with its jobs, served by uvicorn (or from a thread).

Everything below this module is given its collaborators; this is the one place that knows
them all: the daemon (``service.runtime``), the scheduled jobs (``service.jobs``) and the
HTTP app (``service.http``).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from service.commands import Commands
from service.http.app import create_app
from service.jobs import JobContext, scheduled_jobs
from service.runtime.daemon import Clock, Daemon
from service.runtime.settings import Settings


@dataclass(frozen=True)
class Service:
    """A daemon and the command path its routes and jobs share."""

    daemon: Daemon
    commands: Commands

    def app(self) -> FastAPI:
        """Return the ASGI app; it starts and stops the daemon with its lifespan."""
        return create_app(self.daemon, self.commands)


def build(settings: Settings, *, registry: CollectorRegistry | None = None,
          clock: Clock = time.time) -> Service:
    """Return a daemon with its commands and every scheduled job registered (not started).

    On SQLite this claims the database file: ``DatabaseInUse`` if another process has it.
    """
    daemon = Daemon(settings, registry=registry, clock=clock)
    commands = Commands(daemon)
    daemon.add_jobs(scheduled_jobs(JobContext.of(daemon, commands)))
    return Service(daemon, commands)


def run(service: Service) -> None:
    """Serve ``service`` on its settings' host and port until SIGINT/SIGTERM."""
    settings = service.daemon.settings
    uvicorn.run(service.app(), host=settings.host, port=settings.port,
                log_level="warning", access_log=False, lifespan="on")


def free_port() -> int:
    """Return a TCP port that was free a moment ago on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, timeout: float = 20.0) -> None:
    """Poll ``/healthz`` until it answers 200 or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"promptd at {url} did not come up: {last}")


class EmbeddedServer:
    """A daemon behind a real uvicorn on loopback, in a background thread."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.daemon = service.daemon
        settings = service.daemon.settings
        self.url = f"http://{settings.host}:{settings.port}"
        config = uvicorn.Config(service.app(), host=settings.host, port=settings.port,
                                log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="promptd-uvicorn",
                                       daemon=True)

    def start(self) -> EmbeddedServer:
        """Start serving and wait until ``/healthz`` answers."""
        self.thread.start()
        wait_until_up(self.url)
        return self

    def stop(self) -> None:
        """Shut the server down (the daemon stops with it, losing nothing queued)."""
        self.server.should_exit = True
        self.thread.join(30)
