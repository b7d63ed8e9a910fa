"""The scheduled improve job: strong patterns -> candidate versions -> a canary deployment."""

from __future__ import annotations

import httpx
import structlog

from analytics.mining.model import Pattern
from deploy.state import start
from improver import BaseVersion, Candidate, propose_candidates
from improver.lint import normalised_hash
from improver.rewriter import LLMRewriter, RewriterConfig
from service.commands.deployments import new_deployment_id
from service.runtime.daemon import SYSTEM_ACTOR, Daemon
from service.store.eventlog import NewEvent

log = structlog.get_logger("promptd.improver")
IMPROVER_ACTOR = SYSTEM_ACTOR


def strong_patterns(daemon: Daemon, patterns: list[Pattern], version: int) -> list[Pattern]:
    """Return the patterns worth acting on for ``version``.

    Big enough, frequent enough, not resolved, and seen on the version now in production:
    a complaint only about versions that are gone is history, not work.
    """
    s = daemon.settings
    return [p for p in patterns if p.status != "resolved" and p.size >= s.improve_min_pattern_size
            and p.share >= s.improve_min_pattern_share and version in p.versions]


def _rewriter_candidates(daemon: Daemon, base: BaseVersion, patterns: list[Pattern],
                         recorded: list[dict[str, object]], rejected: set[str]) -> list[object]:
    s = daemon.settings
    if not s.llm_base_url:
        return []
    config = RewriterConfig(base_url=s.llm_base_url, model=s.llm_model, api_key=s.llm_api_key)
    with httpx.Client(trust_env=False) as client:
        result = LLMRewriter(config, client).rewrite(
            base, patterns, recorded_variables=recorded, rejected_hashes=rejected)
    return [result]


def improve_prompt(daemon: Daemon, prompt: str, now: float) -> list[int]:
    """Propose candidates for one prompt and start their canary; return the new versions."""
    s = daemon.settings
    if prompt in daemon.live.deployments:
        return []  # one deployment at a time per prompt
    q = daemon.queries
    history = q.deployments(prompt=prompt)
    snapshot = q.snapshot(prompt)
    recorded = q.recorded_variables(prompt)
    rejected = q.rejected_hashes(prompt)
    pending = [c for c in q.candidates(prompt) if c["status"] == "proposed"]
    if pending:
        return []  # candidates waiting for an admin: do not pile more on
    last_end = max((d.ended_at or 0.0 for d in history), default=0.0)
    if now - last_end < s.improve_cooldown_s:
        return []
    current = daemon.live.registry.version_for(prompt)
    if snapshot is None or current is None:
        return []
    strong = strong_patterns(daemon, snapshot["patterns"], current.version)
    if not strong:
        return []
    base = BaseVersion(prompt, current.version, current.template)
    extra = _rewriter_candidates(daemon, base, strong, recorded, rejected)
    proposed, skipped = propose_candidates(
        base, strong, k=s.improve_candidates, recorded_variables=recorded,
        rejected_hashes=rejected, extra=extra)  # type: ignore[arg-type]
    for skip in skipped:
        log.info("strategy_skipped", prompt=prompt, strategy=skip.strategy, reason=skip.reason)
    if not proposed:
        return []
    return _propose(daemon, prompt, base, list(proposed), now)


def _propose(daemon: Daemon, prompt: str, base: BaseVersion, proposed: list[Candidate],
             now: float) -> list[int]:
    s = daemon.settings
    with daemon.registry_lock:
        first = daemon.live.registry.prompts[prompt].latest_version + 1
        batch: list[NewEvent] = []
        versions: list[int] = []
        for i, cand in enumerate(proposed):
            version = first + i
            versions.append(version)
            common = {"prompt": prompt, "version": version, "strategy": cand.strategy,
                      "rationale": cand.rationale,
                      "addressed_patterns": list(cand.addressed_pattern_ids),
                      "actor": IMPROVER_ACTOR}
            batch.append(daemon.new_event("version.created", {
                **common, "template": cand.template, "parent": cand.parent_version,
                "author": "promptd:improver",
                "variables": sorted(_variables(cand.template))}))
            batch.append(daemon.new_event("candidate.proposed", {
                **common, "parent": cand.parent_version,
                "text_hash": normalised_hash(cand.template)}))
        policy = daemon.policy_for(prompt)
        gated = s.improve_requires_approval or policy.approval_before_start
        started = start(new_deployment_id(prompt), prompt, base.version, versions, policy,
                        actor=IMPROVER_ACTOR, now=now, requires_approval=gated,
                        machine_written=True,
                        reason=f"machine-written candidates {', '.join(f'v{v}' for v in versions)}")
        assert started.event_type is not None
        batch.append(daemon.new_event(started.event_type, started.payload))
        daemon.append_sync(batch)
    for cand in proposed:
        daemon.metrics.candidates_proposed.labels(prompt, cand.strategy).inc()
    log.info("candidates_proposed", prompt=prompt, versions=versions,
             strategies=[c.strategy for c in proposed], awaiting_approval=gated)
    return versions


def _variables(template: str) -> frozenset[str]:
    from improver.templates import template_variables

    return template_variables(template)


def run_improve(daemon: Daemon, now: float) -> int:
    """Run the improver for every prompt; return how many candidates were proposed."""
    proposed, failed = 0, []
    for prompt in sorted(daemon.live.registry.prompts):
        try:
            proposed += len(improve_prompt(daemon, prompt, now))
        except Exception:
            log.exception("improve_failed", prompt=prompt)
            failed.append(prompt)
    if failed:
        raise RuntimeError(f"improve failed for {', '.join(failed)}")
    return proposed
