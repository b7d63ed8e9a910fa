"""The scheduled canary job: analyse every serving deployment whose interval has passed."""

from __future__ import annotations

from deploy.canary import decide_many
from deploy.state import SERVING
from service.contract.system import SYSTEM_ACTOR, CanaryAnalysed
from service.jobs.context import JobContext
from service.runtime.evidence import Evidence, evidence_of


class CanaryJob:
    """Ticks deployments; remembers when it last analysed each (in this process)."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self.last_analysis: dict[str, float] = {}
        # The sample counts last recorded per deployment: a tick that saw nothing new
        # records nothing (an idle deployment would otherwise fill the log with copies).
        self._recorded: dict[str, tuple[int, tuple[int, ...]]] = {}

    def __call__(self, now: float) -> int:
        """Analyse every due deployment; return how many decisions were appended.

        Each decision is appended only if its deployment is still in the state the tick
        read: a concurrent admin command or another replica's tick wins, and this decision
        is dropped, to be made again on the new state at the next tick. What the tick saw
        (``canary.analysed``) is recorded first, on each deployment's own stream.
        """
        ctx = self._ctx
        states = [s for s in ctx.queries.deployments(active_only=True) if s.phase in SERVING]
        due = [s for s in states
               if now - self.last_analysis.get(s.deployment_id, 0.0)
               >= s.policy.analysis_interval_seconds]
        pairs = ctx.queries.stats_of(due)
        self._record(evidence_of(pairs), {s.deployment_id for s in states})
        applied = 0
        # detail=False: the evidence of decisions that change nothing is not built.
        for (state, _), d in zip(pairs, decide_many(pairs, now, detail=False), strict=True):
            self.last_analysis[state.deployment_id] = now
            if d.changes_state and ctx.commands.apply_tick(state, d):
                applied += 1
        ctx.exporter.export_deployments()
        return applied

    def _record(self, found: list[Evidence], serving: set[str]) -> None:
        self._recorded = {k: v for k, v in self._recorded.items() if k in serving}
        records = []
        for e in found:
            seen = (e.step_index, tuple(x.n_candidate + x.n_control for x in e.effects))
            if self._recorded.get(e.deployment_id) == seen:
                continue
            self._recorded[e.deployment_id] = seen
            records.append(CanaryAnalysed(actor=SYSTEM_ACTOR, **e.payload()))
        if records:
            self._ctx.commands.handler.append_at(records, {})
