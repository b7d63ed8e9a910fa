"""What the pure deployment functions hand back to the service: an event to append, or why not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AUTOMATIC_ACTOR = "promptd"


class TransitionError(Exception):
    """A command that the deployment's current phase does not allow (HTTP 409)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decision:
    """An event to append (``event_type`` None: nothing changes), its reason and evidence.

    ``payload`` is the event's JSON-able body; it repeats ``reason`` and ``evidence`` so the
    log alone explains every change of a deployment.
    """

    event_type: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def changes_state(self) -> bool:
        """Return whether there is an event to append."""
        return self.event_type is not None


def decision(
    event_type: str | None,
    deployment_id: str,
    *,
    actor: str,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Decision:
    """Return a ``Decision`` whose payload carries the id, actor, reason and evidence.

    ``fields`` and ``evidence`` must already be strict JSON (no NaN or infinity, no numpy
    scalars): the callers build them that way, and a tick over many deployments would
    spend much of its time walking them again here.
    """
    clean_evidence = dict(evidence or {})
    if not event_type:
        # No event, no payload to build (most decisions of a tick are these).
        return Decision(event_type=None, payload={}, reason=reason, evidence=clean_evidence)
    payload: dict[str, Any] = {
        "deployment_id": deployment_id,
        "actor": actor,
        "reason": reason,
        **fields,
    }
    if evidence is not None:
        payload["evidence"] = clean_evidence
    return Decision(
        event_type=event_type, payload=payload, reason=reason, evidence=clean_evidence
    )
