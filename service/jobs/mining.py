"""The scheduled mining job: mine each prompt with new failures, append the snapshot."""

from __future__ import annotations

from dataclasses import asdict

import structlog

from analytics.mining import MiningConfig, detect_anomalies, mine_patterns
from service.contract.system import SYSTEM_ACTOR, PatternsMined
from service.jobs.context import JobContext

log = structlog.get_logger("promptd.mining")


def mining_config(ctx: JobContext) -> MiningConfig:
    """Return the mining configuration the daemon's settings describe."""
    s = ctx.settings
    return MiningConfig(window_seconds=s.mining_window_s, n_windows=s.mining_windows)


def mine_prompt(ctx: JobContext, prompt: str, now: float, *, force: bool = False) -> bool:
    """Mine one prompt if it has failures the last snapshot has not seen; True if appended."""
    cfg = mining_config(ctx)
    read = ctx.queries.mining_input(
        prompt, since=now - cfg.horizon_seconds, now=now, window_s=cfg.window_seconds,
        n_windows=cfg.n_windows, force=force)
    snapshot, records, windows = read.snapshot, read.records, read.windows
    if not windows:
        return False  # nothing new: append nothing
    # Resolved ones too: a complaint that comes back gets its old id (and trend) back.
    previous = [*snapshot["patterns"], *snapshot["resolved"]] if snapshot else []
    result = mine_patterns(records, now=now, executions_in_window=windows[-1].executions,
                           previous=previous, config=cfg)
    anomalies = detect_anomalies(windows, z_threshold=cfg.anomaly_z_threshold,
                                 min_trailing=cfg.anomaly_min_trailing)
    patterns = result.patterns[: ctx.settings.max_patterns]
    mined = PatternsMined(
        prompt=prompt, upto_position=read.latest_failure, records=len(records),
        window_s=cfg.window_seconds, patterns=[p.to_dict() for p in patterns],
        resolved=[p.to_dict() for p in result.resolved],
        anomalies=[asdict(a) for a in (*result.anomalies, *anomalies)],
        share_window=asdict(result.share_window) if result.share_window else None,
        counted_failures=result.counted_failures, actor=SYSTEM_ACTOR)
    if not ctx.commands.record_patterns(mined, read.stream_version):
        log.info("patterns_already_mined", prompt=prompt,
                 why="another process appended a snapshot since this one read")
        return False
    ctx.metrics.patterns_active.labels(prompt).set(len(patterns))
    log.info("patterns_mined", prompt=prompt, records=len(records), patterns=len(patterns),
             anomalies=len(anomalies))
    return True


def run_mining(ctx: JobContext, now: float) -> int:
    """Mine every prompt that has new failures; return how many snapshots were appended."""
    appended, failed = 0, []
    for prompt in sorted(ctx.live.registry.prompts):
        try:
            appended += mine_prompt(ctx, prompt, now)
        except Exception:
            # One prompt's bad data must not starve the others; the run still counts as failed.
            log.exception("mining_failed", prompt=prompt)
            failed.append(prompt)
    if failed:
        raise RuntimeError(f"mining failed for {', '.join(failed)}")
    return appended
