"""Aggregates folded from their streams: a prompt (with its deployments), the token book.

A command loads one of these at the stream version it was folded to, decides on it, and
appends with that version as the expected one: a concurrent decision on the same stream
makes one of the two conflict in the database, and the loser decides again on what is now
true. Folding is pure and deterministic: the same events give the same aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from deploy.state import SERVING, TERMINAL, DeploymentState, evolve
from service.contract import system
from service.contract.labels import LATEST, PROTECTED_BY_DEFAULT
from service.store.eventlog import StoredEvent


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LabelMove:
    """One move of a label, as the label's history records it."""

    label: str
    version: int
    previous: int | None
    kind: str  # set | promotion | rollback
    actor: str
    reason: str
    at: float
    stream_version: int
    deployment_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the move as the API writes it."""
        return {"label": self.label, "version": self.version, "previous": self.previous,
                "kind": self.kind, "actor": self.actor, "reason": self.reason, "at": self.at,
                "stream_version": self.stream_version, "deployment_id": self.deployment_id}


@dataclass(frozen=True)
class PromptAggregate:
    """A prompt as its stream tells it: versions, labels and their history, deployments."""

    name: str
    version: int = 0  # the stream version folded up to (0: the prompt does not exist)
    created: bool = False
    description: str = ""
    versions: Mapping[int, system.VersionCreated] = field(default_factory=_empty)
    labels: Mapping[str, int] = field(default_factory=_empty)  # set by events (not latest)
    history: tuple[LabelMove, ...] = ()
    protected: frozenset[str] = PROTECTED_BY_DEFAULT  # labels only admin tokens move
    policy_overrides: Mapping[str, Any] = field(default_factory=_empty)
    deployments: Mapping[str, DeploymentState] = field(default_factory=_empty)
    candidates: Mapping[int, system.CandidateProposed] = field(default_factory=_empty)
    # The newest change that moved toward a new version (production set or promoted, a
    # deployment started) and the newest that moved back (production rolled back, a
    # deployment ended unpromoted): (stream version, what it was). A plain rollback acts
    # only when the forward one is newer, which makes it safe to repeat.
    last_forward: tuple[int, str] | None = None
    last_backward: tuple[int, str] | None = None

    @property
    def latest_version(self) -> int:
        """Return the highest version number (0 before the first)."""
        return max(self.versions, default=0)

    @property
    def production(self) -> int | None:
        """Return the version the production label points at."""
        return self.labels.get("production")

    @property
    def active_deployment(self) -> DeploymentState | None:
        """Return the deployment that has not ended, if any (there is at most one)."""
        return next((d for d in self.deployments.values() if d.phase not in TERMINAL), None)

    @property
    def serving_deployment(self) -> DeploymentState | None:
        """Return the deployment whose candidates serve traffic now, if any."""
        active = self.active_deployment
        return active if active is not None and active.phase in SERVING else None

    def label_history(self, label: str | None = None) -> list[LabelMove]:
        """Return the moves of one label (or of every label), oldest first."""
        return [m for m in self.history if label is None or m.label == label]

    def all_labels(self) -> dict[str, int]:
        """Return every label with its version, ``latest`` (the newest version) included."""
        out = dict(self.labels)
        if self.versions:
            out[LATEST] = self.latest_version
        return out

    def rollback_target(self, label: str = "production") -> LabelMove | None:
        """Return the move a rollback of ``label`` undoes (its ``previous`` is the target).

        The history is a stack: every rollback undoes the newest forward move not already
        undone, so rolling back twice goes back two versions, never toggles between two.
        """
        undone = 0
        for move in reversed(self.label_history(label)):
            if move.kind == "rollback":
                undone += 1
            elif undone:
                undone -= 1
            else:
                return move if move.previous is not None else None
        return None

    def rolled_back_since_last_change(self) -> str | None:
        """Return what rolled back the newest forward change, if something did since."""
        if self.last_backward is None:
            return None
        if self.last_forward is None or self.last_backward[0] > self.last_forward[0]:
            return self.last_backward[1]
        return None

    def evolve(self, events: Iterable[StoredEvent]) -> PromptAggregate:
        """Return the aggregate after ``events`` (this stream's, in stream order)."""
        b = _Builder(self)
        for e in events:
            b.apply(e)
        return b.freeze()


class _Builder:
    """Mutable copy of an aggregate while events are folded (one copy per load, not per event)."""

    def __init__(self, agg: PromptAggregate) -> None:
        self.agg = agg
        self.version = agg.version
        self.created = agg.created
        self.description = agg.description
        self.versions = dict(agg.versions)
        self.labels = dict(agg.labels)
        self.history = list(agg.history)
        self.protected = set(agg.protected)
        self.policy = dict(agg.policy_overrides)
        self.deployments = dict(agg.deployments)
        self.candidates = dict(agg.candidates)
        self.last_forward = agg.last_forward
        self.last_backward = agg.last_backward

    def apply(self, e: StoredEvent) -> None:
        self.version = e.stream_version or self.version
        if e.type not in system.EVENT_MODELS:
            return
        if e.type in system.DEPLOYMENT_EVENT_TYPES:
            dep_id = str(e.payload.get("deployment_id", ""))
            before = self.deployments.get(dep_id)
            after = evolve(before, e.type, e.payload, e.recorded_at)
            if after is not None:
                self.deployments[dep_id] = after
                if before is None:
                    self.last_forward = (self.version, f"deployment {dep_id} started")
                elif after.is_terminal and not before.is_terminal and after.winner is None:
                    self.last_backward = (self.version,
                                          f"deployment {dep_id} {after.phase.value}")
            return
        event = system.parse(e.type, e.payload)
        if isinstance(event, system.PromptCreated):
            self.created, self.description = True, event.description
        elif isinstance(event, system.VersionCreated):
            self.versions.setdefault(event.version, event)
        elif isinstance(event, system.LabelMoved):
            self.labels[event.label] = event.version
            self.history.append(LabelMove(event.label, event.version, event.previous,
                                          event.kind, event.actor, event.reason,
                                          e.recorded_at, e.stream_version or 0,
                                          event.deployment_id))
            if event.label == "production":
                what = (f"production {event.kind} v{event.previous} -> v{event.version} "
                        f"by {event.actor}")
                if event.kind == "rollback":
                    self.last_backward = (self.version, what)
                else:
                    self.last_forward = (self.version, what)
        elif isinstance(event, system.LabelProtected):
            if event.protected:
                self.protected.add(event.label)
            else:
                self.protected.discard(event.label)
        elif isinstance(event, system.PolicySet):
            self.policy = dict(event.overrides)
        elif isinstance(event, system.CandidateProposed):
            self.candidates[event.version] = event

    def freeze(self) -> PromptAggregate:
        return replace(
            self.agg, version=self.version, created=self.created,
            description=self.description, versions=MappingProxyType(self.versions),
            labels=MappingProxyType(self.labels), history=tuple(self.history),
            protected=frozenset(self.protected),
            policy_overrides=MappingProxyType(self.policy),
            deployments=MappingProxyType(self.deployments),
            candidates=MappingProxyType(self.candidates),
            last_forward=self.last_forward, last_backward=self.last_backward)


@dataclass(frozen=True)
class TokenBookAggregate:
    """Every token's role and whether it is revoked, as the ``tokens`` stream tells it."""

    version: int = 0
    roles: Mapping[str, str] = field(default_factory=_empty)
    revoked: frozenset[str] = frozenset()

    def active_admins(self) -> list[str]:
        """Return the ids of admin tokens not revoked."""
        return [t for t, role in self.roles.items() if role == "admin" and t not in self.revoked]

    def evolve(self, events: Iterable[StoredEvent]) -> TokenBookAggregate:
        """Return the aggregate after ``events`` (the tokens stream's, in stream order)."""
        version, roles, revoked = self.version, dict(self.roles), set(self.revoked)
        for e in events:
            version = e.stream_version or version
            if e.type == system.TokenIssued.TYPE:
                roles.setdefault(str(e.payload["token_id"]), str(e.payload["role"]))
            elif e.type == system.TokenRevoked.TYPE:
                revoked.add(str(e.payload["token_id"]))
        return TokenBookAggregate(version, MappingProxyType(roles), frozenset(revoked))
