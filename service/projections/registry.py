"""The prompt registry read model: prompts, their versions and labels.

``latest`` is kept here, not by events: every new version moves it (a label no one sets by
hand, so replaying any log, old ones included, gives the same answer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from service.contract import system
from service.contract.labels import LATEST
from service.projections.projector import exists, upsert
from service.store.eventlog import StoredEvent
from service.store.schema import labels, prompts, versions


class RegistryProjection:
    """Prompts, their versions and labels (which version is `production`)."""

    name = "registry"
    types = frozenset({"prompt.created", "version.created", "label.moved"})
    tables = (prompts, versions, labels)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            event = system.parse(e.type, e.payload)
            if isinstance(event, system.PromptCreated):
                # First one wins: two replicas racing to create the same name must not stop
                # the fold (and replay makes the same choice).
                if exists(conn, prompts, name=event.prompt):
                    continue
                conn.execute(prompts.insert().values(
                    name=event.prompt, description=event.description,
                    created_at=e.recorded_at, created_by=event.actor, latest_version=0))
            elif isinstance(event, system.VersionCreated):
                if exists(conn, versions, prompt=event.prompt, version=event.version):
                    continue
                messages = (None if event.messages is None else json.dumps(
                    [m.to_json() for m in event.messages]))
                config = None if event.config is None else json.dumps(event.config,
                                                                      sort_keys=True)
                conn.execute(versions.insert().values(
                    prompt=event.prompt, version=event.version, template=event.template,
                    messages=messages, config=config,
                    variables=json.dumps(sorted(event.variables)), parent=event.parent,
                    author=event.author, strategy=event.strategy, rationale=event.rationale,
                    addressed_patterns=json.dumps(list(event.addressed_patterns)),
                    created_at=e.recorded_at, position=e.position))
                conn.execute(update(prompts).where(prompts.c.name == event.prompt)
                             .values(latest_version=event.version))
                self._move_latest(conn, event, e.recorded_at)
            elif isinstance(event, system.LabelMoved) and event.label != LATEST:
                upsert(conn, labels, {"prompt": event.prompt, "label": event.label},
                       {"version": event.version, "previous": event.previous,
                        "moved_at": e.recorded_at, "moved_by": event.actor})

    @staticmethod
    def _move_latest(conn: Connection, event: system.VersionCreated, at: float) -> None:
        row = conn.execute(select(labels.c.version).where(
            labels.c.prompt == event.prompt, labels.c.label == LATEST)).first()
        if row is not None and row.version >= event.version:
            return
        upsert(conn, labels, {"prompt": event.prompt, "label": LATEST},
               {"version": event.version, "previous": row.version if row else None,
                "moved_at": at, "moved_by": event.actor})
