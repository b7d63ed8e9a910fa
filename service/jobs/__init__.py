"""The scheduled jobs: mine failures, propose candidates, tick canaries."""

from __future__ import annotations

from service.jobs.canary import CanaryJob
from service.jobs.context import JobContext
from service.runtime.scheduler import Job

__all__ = ["JobContext", "scheduled_jobs"]


def scheduled_jobs(ctx: JobContext) -> list[Job]:
    """Return the jobs a daemon runs while it leads, at the intervals its settings give."""
    # Mining and the improver import scikit-learn and the strategies: a daemon that only
    # serves resolve and ingest pays for them at the first run, not at start-up.
    def mine(now: float) -> int:
        from service.jobs.mining import run_mining

        return run_mining(ctx, now)

    def improve(now: float) -> int:
        from service.jobs.improve import run_improve

        return run_improve(ctx, now)

    s = ctx.settings
    return [Job("mine", mine, s.mine_interval_s),
            Job("improve", improve, s.improve_interval_s),
            Job("canary", CanaryJob(ctx), s.canary_interval_s)]
