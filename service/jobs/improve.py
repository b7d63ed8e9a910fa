"""The scheduled improve job: strong patterns -> candidate versions -> a canary deployment."""

from __future__ import annotations

import httpx
import structlog

from analytics.mining.model import Pattern
from improver import BaseVersion, Candidate, ImproverConfig, propose_candidates
from improver.chat import chat_variables, messages_from
from improver.gate import GateResult, run_gate
from improver.lint import LintConfig, normalised_hash
from improver.rewriter import LLMRewriter, RewriterConfig
from improver.templates import template_variables
from service.contract.chat import ChatMessage
from service.contract.system import SYSTEM_ACTOR, CandidateProposed, VersionCreated
from service.jobs.context import JobContext

log = structlog.get_logger("promptd.improver")
IMPROVER_AUTHOR = "promptd:improver"


def strong_patterns(ctx: JobContext, patterns: list[Pattern], version: int) -> list[Pattern]:
    """Return the patterns worth acting on for ``version``.

    Big enough, frequent enough (``share``: of the records in the last window with data),
    not resolved, not noise, stated by reviewers (not only runtime errors), and seen on the
    version now in production: a complaint only about versions that are gone is history.
    """
    s = ctx.settings
    return [p for p in patterns if p.status != "resolved" and not p.noise
            and p.corrections > 0 and p.size >= s.improve_min_pattern_size
            and p.share >= s.improve_min_pattern_share and version in p.versions]


def _rewriter_candidates(ctx: JobContext, base: BaseVersion, patterns: list[Pattern],
                         recorded: list[dict[str, object]], rejected: set[str]) -> list[object]:
    s = ctx.settings
    if not s.llm_base_url:
        return []
    config = RewriterConfig(base_url=s.llm_base_url, model=s.llm_model, api_key=s.llm_api_key)
    with httpx.Client(trust_env=False) as client:
        result = LLMRewriter(config, client).rewrite(
            base, patterns, recorded_variables=recorded, rejected_hashes=rejected)
    return [result]


def improve_prompt(ctx: JobContext, prompt: str, now: float) -> list[int]:
    """Propose candidates for one prompt and start their canary; return the new versions."""
    s = ctx.settings
    if prompt in ctx.live.deployments:
        return []  # one deployment at a time per prompt (the command checks it again)
    q = ctx.queries
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
    current = ctx.live.registry.version_for(prompt)
    if snapshot is None or current is None:
        return []
    strong = strong_patterns(ctx, snapshot["patterns"], current.version)
    if not strong:
        return []
    messages = messages_from(current.messages) if current.messages is not None else None
    base = BaseVersion(prompt, current.version, current.template, messages, current.config)
    extra = _rewriter_candidates(ctx, base, strong, recorded, rejected)
    config = ImproverConfig(lint=LintConfig(render_budget=s.render_budget()))
    proposed, skipped = propose_candidates(
        base, strong, k=s.improve_candidates, recorded_variables=recorded,
        rejected_hashes=rejected, config=config, extra=extra)  # type: ignore[arg-type]
    for skip in skipped:
        log.info("strategy_skipped", prompt=prompt, strategy=skip.strategy, reason=skip.reason)
    if not proposed:
        return []
    gates = _offline_gate(ctx, prompt, base, list(proposed))
    return _propose(ctx, prompt, base, list(proposed), gates)


def _offline_gate(ctx: JobContext, prompt: str, base: BaseVersion,
                  proposed: list[Candidate]) -> list[GateResult | None]:
    """Return each candidate's offline gate result (None: no LLM, or nothing to replay)."""
    s = ctx.settings
    none: list[GateResult | None] = [None] * len(proposed)
    if not s.llm_base_url or s.gate_cases == 0:
        return none
    if base.messages is not None:
        # The gate replays rendered text; a chat prompt's candidates go to the canary as
        # before until the gate learns to send conversations.
        log.info("offline_gate_skipped", prompt=prompt, why="chat prompt")
        return none
    cases = ctx.queries.gate_cases(prompt, s.gate_cases)
    if not cases:
        log.info("offline_gate_skipped", prompt=prompt, why="no corrected inputs to replay")
        return none
    config = RewriterConfig(base_url=s.llm_base_url, model=s.llm_model, api_key=s.llm_api_key,
                            max_calls=s.gate_max_calls, max_tokens_budget=s.gate_max_tokens)
    results: list[GateResult | None] = []
    with httpx.Client(trust_env=False) as client:
        llm = LLMRewriter(config, client)  # one budget for the whole gate of this run
        for cand in proposed:
            result = run_gate(base.template, cand.template, cases,
                              lambda messages: llm.complete(messages).content,
                              budget=s.render_budget())
            log.info("offline_gate", prompt=prompt, strategy=cand.strategy,
                     **result.to_dict())
            results.append(result)
    return results


def _propose(ctx: JobContext, prompt: str, base: BaseVersion, proposed: list[Candidate],
             gates: list[GateResult | None]) -> list[int]:
    # Version numbers are placeholders here: the command numbers them on the prompt's
    # stream, so an admin adding a version meanwhile cannot get the same number.
    versions = [_version_of(prompt, base, c) for c in proposed]
    proposals = [CandidateProposed(
        prompt=prompt, version=0, strategy=c.strategy,
        rationale=c.rationale + (f" [{g.summary()}]" if g is not None else ""),
        addressed_patterns=list(c.addressed_pattern_ids), parent=c.parent_version,
        text_hash=normalised_hash(c.source), actor=SYSTEM_ACTOR,
        gate=g.to_dict() if g is not None else None)
        for c, g in zip(proposed, gates, strict=True)]
    rejections = [g.summary() if g is not None and not g.passed else None for g in gates]
    policy = ctx.commands.policy_for(prompt)
    gated = ctx.settings.improve_requires_approval or policy.approval_before_start
    numbers = ctx.commands.propose_candidates(
        prompt, base.version, versions, proposals, policy, gated=gated,
        reason="machine-written candidates {versions}", rejections=rejections)
    if not numbers:
        why = ("the offline gate refused every candidate" if all(rejections)
               else "a deployment started or production moved since the improver read it")
        log.info("candidates_not_proposed", prompt=prompt, why=why)
        return []
    for cand in proposed:
        ctx.metrics.candidates_proposed.labels(prompt, cand.strategy).inc()
    log.info("candidates_proposed", prompt=prompt, versions=numbers,
             strategies=[c.strategy for c in proposed], awaiting_approval=gated)
    return numbers


def _version_of(prompt: str, base: BaseVersion, c: Candidate) -> VersionCreated:
    """Return the version event of a candidate (its template or messages) with its config.

    The config is the parent's unless the candidate's strategy changed it on purpose.
    """
    config = dict(c.config) if c.config is not None else (
        dict(base.config) if base.config is not None else None)
    if c.messages is None:
        return VersionCreated(
            prompt=prompt, version=0, template=c.template, parent=c.parent_version,
            variables=sorted(template_variables(c.template)), config=config,
            author=IMPROVER_AUTHOR, strategy=c.strategy, rationale=c.rationale,
            addressed_patterns=list(c.addressed_pattern_ids), actor=SYSTEM_ACTOR)
    return VersionCreated(
        prompt=prompt, version=0, template="",
        messages=[ChatMessage.model_validate(m.to_json()) for m in c.messages],
        parent=c.parent_version, variables=sorted(chat_variables(c.messages)), config=config,
        author=IMPROVER_AUTHOR, strategy=c.strategy, rationale=c.rationale,
        addressed_patterns=list(c.addressed_pattern_ids), actor=SYSTEM_ACTOR)


def run_improve(ctx: JobContext, now: float) -> int:
    """Run the improver for every prompt; return how many candidates were proposed."""
    proposed, failed = 0, []
    for prompt in sorted(ctx.live.registry.prompts):
        try:
            proposed += len(improve_prompt(ctx, prompt, now))
        except Exception:
            log.exception("improve_failed", prompt=prompt)
            failed.append(prompt)
    if failed:
        raise RuntimeError(f"improve failed for {', '.join(failed)}")
    return proposed
