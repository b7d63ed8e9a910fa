"""The composition root: a daemon with its jobs, served by uvicorn (or from a thread).

Everything below this module is given its collaborators; this is the one place that knows
them all: the daemon (``service.runtime``), the scheduled jobs (``service.jobs``) and the
HTTP app (``service.http``).
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from service.http.app import create_app
from service.jobs import scheduled_jobs
from service.runtime.daemon import Clock, Daemon
from service.runtime.settings import Settings


def build_daemon(settings: Settings, *, registry: CollectorRegistry | None = None,
                 clock: Clock = time.time) -> Daemon:
    """Return a daemon with every scheduled job registered (not started)."""
    daemon = Daemon(settings, registry=registry, clock=clock)
    daemon.add_jobs(scheduled_jobs(daemon))
    return daemon


def serve(settings: Settings) -> None:
    """Serve a daemon on ``settings.host:port`` until SIGINT/SIGTERM."""
    daemon = build_daemon(settings)
    uvicorn.run(create_app(daemon), host=settings.host, port=settings.port,
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

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        settings = daemon.settings
        self.url = f"http://{settings.host}:{settings.port}"
        config = uvicorn.Config(create_app(daemon), host=settings.host, port=settings.port,
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
