"""The scheduled canary job: analyse every serving deployment whose interval has passed."""

from __future__ import annotations

from deploy.canary import decide_many
from deploy.state import SERVING
from service.jobs.context import JobContext


class CanaryJob:
    """Ticks deployments; remembers when it last analysed each (in this process)."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self.last_analysis: dict[str, float] = {}

    def __call__(self, now: float) -> int:
        """Analyse every due deployment; return how many decisions were appended.

        Each decision is appended only if its deployment is still in the state the tick
        read: a concurrent admin command or another replica's tick wins, and this decision
        is dropped, to be made again on the new state at the next tick.
        """
        ctx = self._ctx
        states = [s for s in ctx.queries.deployments(active_only=True) if s.phase in SERVING]
        due = [s for s in states
               if now - self.last_analysis.get(s.deployment_id, 0.0)
               >= s.policy.analysis_interval_seconds]
        pairs = ctx.queries.stats_of(due)
        applied = 0
        # detail=False: the evidence of decisions that change nothing is not built.
        for (state, _), d in zip(pairs, decide_many(pairs, now, detail=False), strict=True):
            self.last_analysis[state.deployment_id] = now
            if d.changes_state and ctx.commands.apply_tick(state, d):
                applied += 1
        ctx.exporter.export_deployments()
        return applied
