"""What a scheduled job is given: the few collaborators it uses, not the whole daemon."""

from __future__ import annotations

from dataclasses import dataclass

from service.commands import Commands
from service.projections.queries import Queries
from service.runtime.daemon import Daemon
from service.runtime.exporter import MetricsExporter
from service.runtime.live import LiveState
from service.runtime.metrics import Metrics
from service.runtime.settings import Settings


@dataclass(frozen=True)
class JobContext:
    """Settings, reads, the live read models, the command path and the metrics."""

    settings: Settings
    queries: Queries
    live: LiveState
    commands: Commands
    metrics: Metrics
    exporter: MetricsExporter

    @classmethod
    def of(cls, daemon: Daemon, commands: Commands) -> JobContext:
        """Return the context jobs of ``daemon`` run in."""
        return cls(daemon.settings, daemon.queries, daemon.live, commands, daemon.metrics,
                   daemon.exporter)
