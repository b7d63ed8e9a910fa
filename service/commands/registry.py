"""Decisions on a prompt's registry: create it, add versions, move labels, roll back, policy.

Each function returns a decision function for ``CommandHandler.on_prompt``: pure, given the
aggregate as committed, it returns the events to append or refuses. Version numbers come
from the aggregate, so two creators racing get two numbers, each with its own template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.commands.aggregates import PromptAggregate
from service.commands.deployments import stop
from service.commands.handler import CommandRefused, Decide, Outcome
from service.contract import system
from service.contract.chat import ChatMessage
from service.contract.labels import PRODUCTION


def _exists(agg: PromptAggregate) -> None:
    if not agg.created:
        raise CommandRefused(404, "not_found", f"unknown prompt {agg.name!r}")


def _has_version(agg: PromptAggregate, version: int, field: str = "version") -> None:
    if version not in agg.versions:
        raise CommandRefused(404, "not_found", f"prompt {agg.name!r} has no version {version}",
                             [{"field": field, "message": f"no version {version}"}])


def create_prompt(name: str, template: str, variables: Sequence[str], description: str,
                  actor: str, *, messages: Sequence[ChatMessage] | None = None,
                  config: dict[str, Any] | None = None) -> Decide[PromptAggregate]:
    """Return the decision creating a prompt with v1 as production (409 if it exists)."""
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        if agg.created:
            raise CommandRefused(409, "conflict", f"prompt {name!r} already exists")
        return Outcome([
            system.PromptCreated(prompt=name, description=description, actor=actor),
            system.VersionCreated(prompt=name, version=1, template=template,
                                  messages=list(messages) if messages is not None else None,
                                  config=config, variables=sorted(variables), parent=None,
                                  author=actor, strategy="manual", rationale="initial version",
                                  actor=actor),
            system.LabelMoved(prompt=name, label=PRODUCTION, version=1, previous=None,
                              reason="prompt created", kind="set", actor=actor),
        ], answer=1)
    return decide


def add_version(name: str, template: str, variables: Sequence[str], *, rationale: str,
                parent: int | None, make_production: bool, actor: str,
                messages: Sequence[ChatMessage] | None = None,
                config: dict[str, Any] | None = None) -> Decide[PromptAggregate]:
    """Return the decision adding the next version (and moving production to it if asked)."""
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        _exists(agg)
        base = parent or agg.production or agg.latest_version
        _has_version(agg, base, "parent")
        version = agg.latest_version + 1
        events: list[system.SystemEvent] = [system.VersionCreated(
            prompt=name, version=version, template=template,
            messages=list(messages) if messages is not None else None, config=config,
            variables=sorted(variables), parent=base, author=actor, strategy="manual",
            rationale=rationale, actor=actor)]
        if make_production:
            _no_running_deployment(agg, "move production")
            events.append(system.LabelMoved(
                prompt=name, label=PRODUCTION, version=version, previous=agg.production,
                reason="version added with make_production", kind="set", actor=actor))
        return Outcome(events, answer=version)
    return decide


def _no_running_deployment(agg: PromptAggregate, what: str) -> None:
    active = agg.active_deployment
    if active is not None:
        raise CommandRefused(409, "conflict", f"cannot {what} of {agg.name!r} while deployment "
                             f"{active.deployment_id} is {active.phase.value}; roll it back or "
                             "let it finish first")


def rollback(name: str, *, to: int | None, expected_from: int | None,
             deployment_id: str | None, reason: str, actor: str) -> Decide[PromptAggregate]:
    """Return the decision of ``promptd rollback``: one meaning, safe to repeat.

    - A deployment that has not ended is rolled back; production stays (unless ``to``).
    - Otherwise production moves to the version it had before the newest forward move (a
      set or a promotion), unless something already rolled that move back (a rollback of
      production, a deployment ended unpromoted): then nothing happens. So repeating the
      command, concurrently or as a retry, rolls back once and never toggles.
    - ``expected_from`` (the production version the caller saw): if production was already
      rolled back from it, nothing happens; if production is still it, it goes back one more
      step of the label's history (a stack), which is how to go back further on purpose.
    - ``deployment_id`` (the deployment the caller saw): if it has ended, nothing happens.
    - ``to`` names the version to make production.
    """
    def done(current: int | None, why: str) -> Outcome[PromptAggregate]:
        return Outcome([], answer={"deployment": None, "production": current, "already": why})

    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        _exists(agg)
        if to is not None:
            _has_version(agg, to, "to")
        current = agg.production
        if deployment_id:
            named = agg.deployments.get(deployment_id)
            if named is None:
                raise CommandRefused(404, "not_found",
                                     f"prompt {name!r} has no deployment {deployment_id!r}")
            if named.is_terminal and to is None:
                return done(current, f"deployment {deployment_id} is {named.phase.value}")
        active = agg.active_deployment
        events: list[system.SystemEvent] = []
        if active is not None:
            events.extend(stop(agg, active, actor=actor, reason=reason or "manual rollback"))
            if to is None:
                return Outcome(events, answer={"deployment": active.deployment_id,
                                               "production": current})
        stopped = active.deployment_id if active is not None else None
        if to is not None:
            if to == current:
                if events:
                    return Outcome(events, answer={"deployment": stopped,
                                                   "production": current})
                raise CommandRefused(409, "conflict", f"v{to} is already production")
            target, kind = to, "set"
        else:
            history = agg.label_history(PRODUCTION)
            if expected_from is not None and current != expected_from:
                last = history[-1] if history else None
                if last is not None and last.kind == "rollback" and last.previous == expected_from:
                    return done(current, f"production was rolled back from v{expected_from} "
                                         f"to v{current} by {last.actor}")
                raise CommandRefused(409, "conflict", f"production of {name!r} is v{current}, "
                                     f"not v{expected_from}: it moved since you looked"
                                     + (f" ({last.kind} by {last.actor})" if last else ""))
            if expected_from is None:
                already = agg.rolled_back_since_last_change()
                if already is not None:
                    return done(current, f"already rolled back ({already}); name a version "
                                         "with --to, or --from the current one, to go further")
            undone = agg.rollback_target(PRODUCTION)
            if undone is None or undone.previous is None:
                raise CommandRefused(409, "conflict", f"v{current} of {name!r} has no earlier "
                                     "production version to roll back to; name one with --to")
            target, kind = undone.previous, "rollback"
        events.append(system.LabelMoved(
            prompt=name, label=PRODUCTION, version=target, previous=current, kind=kind,
            reason=reason or f"manual rollback to v{target}", actor=actor))
        return Outcome(events, answer={"deployment": stopped, "production": target})
    return decide


def set_policy(name: str, overrides: dict[str, Any], actor: str) -> Decide[PromptAggregate]:
    """Return the decision storing a prompt's policy overrides (they replace the old ones)."""
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        _exists(agg)
        return Outcome([system.PolicySet(prompt=name, overrides=overrides, actor=actor)],
                       answer=overrides)
    return decide


def move_label(name: str, label: str, version: int, *, expected_from: int | None, reason: str,
               actor: str, admin: bool) -> Decide[PromptAggregate]:
    """Return the decision of ``promptd label set``: point ``label`` at ``version``.

    - A protected label moves only for an admin (403 naming the label otherwise).
    - ``expected_from``: the version the caller saw the label at (0: not set). If the label
      moved since, 409 naming who moved it, unless it is already where the caller wants it.
    - A label already at ``version`` does not move again (a retry changes nothing).
    - ``production`` does not move while a deployment runs (it is the canary's control).
    """
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        _exists(agg)
        _has_version(agg, version)
        if label in agg.protected and not admin:
            raise CommandRefused(403, "forbidden", f"label {label!r} of {name!r} is protected: "
                                 "only an admin token moves it",
                                 [{"field": "label", "message": "protected label"}])
        current = agg.labels.get(label)
        answer = {"prompt": name, "label": label, "version": version, "previous": current}
        if current == version:
            return Outcome([], answer={**answer, "changed": False})
        if expected_from is not None and current != (expected_from or None):
            moves = agg.label_history(label)
            last = f" ({moves[-1].kind} by {moves[-1].actor})" if moves else ""
            seen = f"v{expected_from}" if expected_from else "unset"
            now = f"v{current}" if current is not None else "unset"
            raise CommandRefused(409, "conflict", f"label {label!r} of {name!r} is {now}, not "
                                 f"{seen}: it moved since you looked{last}",
                                 [{"field": "from", "message": f"label is {now}"}])
        if label == PRODUCTION:
            _no_running_deployment(agg, "move production")
        return Outcome([system.LabelMoved(
            prompt=name, label=label, version=version, previous=current, kind="set",
            reason=reason or f"{label} set to v{version}", actor=actor)],
            answer={**answer, "changed": True})
    return decide


def protect_label(name: str, label: str, protected: bool, *, reason: str,
                  actor: str) -> Decide[PromptAggregate]:
    """Return the decision protecting a label (only admins move it) or lifting that."""
    def decide(agg: PromptAggregate) -> Outcome[PromptAggregate]:
        _exists(agg)
        answer = {"prompt": name, "label": label, "protected": protected}
        if (label in agg.protected) == protected:
            return Outcome([], answer={**answer, "changed": False})
        return Outcome([system.LabelProtected(prompt=name, label=label, protected=protected,
                                              reason=reason, actor=actor)],
                       answer={**answer, "changed": True})
    return decide
