"""Turning deployment decisions into events: the one path for the canary job and for admins."""

from __future__ import annotations

from typing import Any

import structlog

from deploy.canary import command
from deploy.decision import Decision
from deploy.state import DeploymentState
from service.contract import uuid7
from service.runtime.daemon import SYSTEM_ACTOR, Daemon
from service.store.eventlog import NewEvent

log = structlog.get_logger("promptd.canary")


def decision_events(daemon: Daemon, state: DeploymentState, d: Decision) -> list[NewEvent]:
    """Return the events a decision appends: the deployment event, and a label move on promotion."""
    assert d.event_type is not None
    batch = [daemon.new_event(d.event_type, {**d.payload, "prompt": state.prompt})]
    if d.event_type == "deployment.promoted":
        winner = str(d.payload["winner"])
        previous = daemon.live.registry.prompts[state.prompt].labels.get("production")
        batch.append(daemon.new_event("label.moved", {
            "prompt": state.prompt, "label": "production", "version": state.version_of(winner),
            "previous": previous, "actor": d.payload.get("actor", SYSTEM_ACTOR),
            "reason": f"deployment {state.deployment_id} promoted {winner}",
            "deployment_id": state.deployment_id}))
    return batch


def apply_decision(daemon: Daemon, state: DeploymentState, d: Decision) -> None:
    """Append a decision's events (durably) and count it in the metrics."""
    if not d.changes_state:
        return
    daemon.append_sync(decision_events(daemon, state, d))
    trigger = str(d.payload.get("trigger") or d.payload.get("actor", "admin"))
    metrics = daemon.metrics
    if d.event_type == "deployment.promoted":
        metrics.promotions.labels(state.prompt, _bounded(trigger)).inc()
    elif d.event_type in ("deployment.rolled_back", "deployment.rejected"):
        metrics.rollbacks.labels(state.prompt, _bounded(trigger)).inc()
        if trigger == "srm":
            metrics.srm_detected.labels(state.prompt).inc()
    log.info("deployment_decision", deployment_id=state.deployment_id, prompt=state.prompt,
             event_type=d.event_type, reason=d.reason)


_TRIGGERS = {"harm", "srm", "improvement", "non_inferior", "inconclusive", "elimination",
             "approved"}


def _bounded(trigger: str) -> str:
    # Admin actors are token ids: never a label value.
    return trigger if trigger in _TRIGGERS else "admin"


def run_command(daemon: Daemon, state: DeploymentState, name: str, *, actor: str,
                full: bool = False, arm: str | None = None, reason: str = "") -> dict[str, Any]:
    """Apply an admin command (raises ``TransitionError`` when the phase forbids it)."""
    d = command(state, name, actor=actor, now=daemon.clock(),  # type: ignore[arg-type]
                full=full, arm=arm, reason=reason)
    apply_decision(daemon, state, d)
    return {"deployment_id": state.deployment_id, "event": d.event_type, "reason": d.reason}


def new_deployment_id(prompt: str) -> str:
    """Return a fresh deployment id (readable prefix, time-ordered suffix)."""
    return f"dep-{uuid7()}"
