"""The scheduled canary job: analyse every serving deployment whose interval has passed."""

from __future__ import annotations

from deploy.canary import decide_many
from deploy.state import SERVING
from service.commands.deployments import apply_decision
from service.runtime.daemon import Daemon


class CanaryJob:
    """Ticks deployments; remembers when it last analysed each (in this process)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self.last_analysis: dict[str, float] = {}

    def __call__(self, now: float) -> int:
        """Analyse every due deployment; return how many decisions were applied."""
        daemon = self._daemon
        states = [s for s in daemon.queries.deployments(active_only=True) if s.phase in SERVING]
        due = [s for s in states
               if now - self.last_analysis.get(s.deployment_id, 0.0)
               >= s.policy.analysis_interval_seconds]
        pairs = daemon.queries.stats_of(due)
        applied = 0
        for (state, _), d in zip(pairs, decide_many(pairs, now), strict=True):
            self.last_analysis[state.deployment_id] = now
            if d.changes_state:
                apply_decision(daemon, state, d)
                applied += 1
        daemon.exporter.export_deployments()
        return applied
