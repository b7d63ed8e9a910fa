"""The prompt registry read model: prompts, their versions and labels."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, update

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
            p = e.payload
            if e.type == "prompt.created":
                # First one wins: two replicas racing to create the same name must not stop
                # the fold (and replay makes the same choice).
                if exists(conn, prompts, name=p["prompt"]):
                    continue
                conn.execute(
                    prompts.insert().values(
                        name=p["prompt"], description=p.get("description", ""),
                        created_at=e.recorded_at, created_by=p.get("actor", "unknown"),
                        latest_version=0,
                    )
                )
            elif e.type == "version.created":
                if exists(conn, versions, prompt=p["prompt"], version=p["version"]):
                    continue
                conn.execute(
                    versions.insert().values(
                        prompt=p["prompt"], version=p["version"], template=p["template"],
                        variables=json.dumps(sorted(p.get("variables", []))),
                        parent=p.get("parent"), author=p.get("author", p.get("actor", "unknown")),
                        strategy=p.get("strategy", "manual"), rationale=p.get("rationale", ""),
                        addressed_patterns=json.dumps(list(p.get("addressed_patterns", []))),
                        created_at=e.recorded_at, position=e.position,
                    )
                )
                conn.execute(
                    update(prompts).where(prompts.c.name == p["prompt"])
                    .values(latest_version=p["version"])
                )
            elif e.type == "label.moved":
                upsert(conn, labels, {"prompt": p["prompt"], "label": p["label"]},
                        {"version": p["version"], "previous": p.get("previous"),
                         "moved_at": e.recorded_at,
                         "moved_by": p.get("actor", "unknown")})
