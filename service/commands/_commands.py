"""The commands admins, jobs and replicas issue, each one decision on one stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from deploy.decision import Decision
from deploy.policy import CanaryPolicy, merge_policy
from deploy.state import DeploymentState
from service.commands import deployments, imports, registry
from service.commands.aggregates import PromptAggregate
from service.commands.handler import CommandHandler, CommandRefused, Outcome
from service.contract import system
from service.contract.chat import ChatMessage
from service.runtime import auth
from service.runtime.daemon import Daemon
from service.store.eventlog import StreamConflict

log = structlog.get_logger("promptd.commands")


class Commands:
    """Every decision promptd records, through one ``CommandHandler``."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self.handler = CommandHandler(daemon.engine, daemon.writer, daemon.clock)

    # -- registry ----------------------------------------------------------------------------

    def create_prompt(self, name: str, template: str, variables: Sequence[str],
                      description: str, actor: str, *,
                      messages: Sequence[ChatMessage] | None = None,
                      config: dict[str, Any] | None = None) -> Outcome[PromptAggregate]:
        """Create a prompt with v1 (a template, or messages) as production."""
        return self.handler.on_prompt(name, registry.create_prompt(
            name, template, variables, description, actor, messages=messages, config=config))

    def add_version(self, name: str, template: str, variables: Sequence[str], *,
                    rationale: str, parent: int | None, make_production: bool, actor: str,
                    messages: Sequence[ChatMessage] | None = None,
                    config: dict[str, Any] | None = None) -> Outcome[PromptAggregate]:
        """Add the next version of a prompt; ``answer`` is its number."""
        return self.handler.on_prompt(name, registry.add_version(
            name, template, variables, rationale=rationale, parent=parent,
            make_production=make_production, actor=actor, messages=messages, config=config))

    def move_label(self, name: str, label: str, version: int, *, expected_from: int | None,
                   reason: str, actor: str, admin: bool) -> Outcome[PromptAggregate]:
        """Point a label at a version (see ``registry.move_label``)."""
        return self.handler.on_prompt(name, registry.move_label(
            name, label, version, expected_from=expected_from, reason=reason, actor=actor,
            admin=admin))

    def protect_label(self, name: str, label: str, protected: bool, *, reason: str,
                      actor: str) -> Outcome[PromptAggregate]:
        """Protect a label (only admin tokens move it) or lift the protection."""
        return self.handler.on_prompt(name, registry.protect_label(
            name, label, protected, reason=reason, actor=actor))

    def rollback(self, name: str, *, to: int | None, expected_from: int | None,
                 deployment_id: str | None, reason: str,
                 actor: str) -> Outcome[PromptAggregate]:
        """Roll a prompt back (see ``registry.rollback`` for the one meaning it has)."""
        return self.handler.on_prompt(name, registry.rollback(
            name, to=to, expected_from=expected_from, deployment_id=deployment_id,
            reason=reason, actor=actor))

    def import_prompt(self, name: str, description: str,
                      versions: Sequence[system.VersionCreated], labels: dict[str, int],
                      protected: Sequence[str] | None, *, source: str,
                      actor: str) -> Outcome[PromptAggregate]:
        """Append an exported prompt's new versions and move its labels (one decision)."""
        return self.handler.on_prompt(name, imports.import_prompt(
            name, description, versions, labels, protected, source=source, actor=actor))

    def set_policy(self, name: str, overrides: dict[str, Any],
                   actor: str) -> Outcome[PromptAggregate]:
        """Store a prompt's canary policy overrides."""
        return self.handler.on_prompt(name, registry.set_policy(name, overrides, actor))

    def policy_for(self, name: str) -> CanaryPolicy:
        """Return a prompt's effective policy: the daemon's defaults plus its overrides."""
        overrides = dict(self.handler.prompt(name).policy_overrides)
        default = self._daemon.default_policy
        return merge_policy(default, overrides) if overrides else default

    # -- deployments -------------------------------------------------------------------------

    def deploy(self, prompt: str, versions: Sequence[int], policy: CanaryPolicy, *,
               actor: str, requires_approval: bool | None,
               supersede: bool = True) -> Outcome[PromptAggregate]:
        """Start an admin's canary; it supersedes a machine-written one unless told not to."""
        return self.handler.on_prompt(prompt, deployments.start_deployment(
            prompt, versions, policy, actor=actor, requires_approval=requires_approval,
            machine_written=False, supersede_machine=supersede))

    def deployment_command(self, deployment_id: str, name: str, *, actor: str,
                           full: bool = False, arm: str | None = None,
                           reason: str = "") -> Outcome[PromptAggregate]:
        """Apply an admin's command to a deployment; ``answer`` is the ``Decision``."""
        state = self._daemon.queries.deployment(deployment_id)
        if state is None:
            raise CommandRefused(404, "not_found", f"unknown deployment {deployment_id!r}")
        return self.handler.on_prompt(state.prompt, deployments.admin_command(
            state.prompt, deployment_id, name, actor=actor, full=full, arm=arm,
            reason=reason))

    def apply_tick(self, state: DeploymentState, d: Decision) -> bool:
        """Append a canary tick's decision if the deployment is still as it was decided on."""
        outcome = self.handler.on_prompt(state.prompt, deployments.tick_decision(state, d))
        if not outcome.events:
            log.info("tick_decision_dropped", deployment_id=state.deployment_id,
                     event_type=d.event_type, why="the deployment changed since the tick read it")
            return False
        log.info("deployment_decision", deployment_id=state.deployment_id, prompt=state.prompt,
                 event_type=d.event_type, reason=d.reason)
        return True

    def propose_candidates(self, prompt: str, base_version: int,
                           versions: Sequence[system.VersionCreated],
                           proposals: Sequence[system.CandidateProposed], policy: CanaryPolicy,
                           *, gated: bool, reason: str,
                           rejections: Sequence[str | None] = ()) -> list[int]:
        """Append the improver's candidates and their canary; return the canaried versions.

        Candidates with a rejection (the offline gate's) are stored and marked rejected.
        """
        outcome = self.handler.on_prompt(prompt, deployments.propose_candidates(
            prompt, base_version, versions, proposals, policy, gated=gated, reason=reason,
            rejections=rejections))
        return list(outcome.answer or [])

    # -- tokens and mining -------------------------------------------------------------------

    def issue_token(self, role: auth.Role, name: str, actor: str) -> tuple[str, str]:
        """Append ``token.issued`` (hash only); return (token_id, token), never logged."""
        token_id, token = auth.new_token(role)
        self.handler.record(system.TokenIssued(token_id=token_id, role=role, name=name,
                                               token_hash=auth.hash_token(token), actor=actor))
        return token_id, token

    def revoke_token(self, token_id: str, actor: str) -> None:
        """Revoke a token; refuses the last active admin token (decided on the token book)."""
        def decide(book: Any) -> Outcome[Any]:
            role = book.roles.get(token_id)
            if role is None:
                raise CommandRefused(404, "not_found", f"unknown token {token_id!r}")
            if token_id in book.revoked:
                raise CommandRefused(409, "conflict", f"token {token_id} is already revoked")
            if role == "admin" and book.active_admins() == [token_id]:
                raise CommandRefused(409, "conflict",
                                     "refusing to revoke the last active admin token")
            return Outcome([system.TokenRevoked(token_id=token_id, actor=actor)])
        self.handler.on_tokens(decide)

    def record_patterns(self, snapshot: system.PatternsMined, expected_version: int) -> bool:
        """Append a mining snapshot unless another miner appended one since; True if stored."""
        try:
            self.handler.append_at([snapshot], {snapshot.stream(): expected_version})
        except StreamConflict:
            return False
        return True
