"""In-memory read models for the hot paths (resolve, auth), reloaded when the log changes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from service.projections.tokens import TokenRecord
from service.store.schema import labels, prompts, tokens, version_counts, versions


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One immutable prompt version."""

    prompt: str
    version: int
    template: str
    variables: tuple[str, ...]
    parent: int | None
    author: str
    strategy: str
    rationale: str
    addressed_patterns: tuple[str, ...]
    created_at: float
    messages: tuple[dict[str, str], ...] | None = None  # a chat prompt's (None: text)
    config: dict[str, Any] | None = None

    @property
    def is_chat(self) -> bool:
        """Return whether this version is a chat prompt (a list of messages)."""
        return self.messages is not None

    def messages_json(self) -> list[dict[str, str]] | None:
        """Return a copy of the messages as the API writes them (None for a text prompt)."""
        return None if self.messages is None else [dict(m) for m in self.messages]

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form used by the API."""
        return {
            "prompt": self.prompt, "version": self.version, "template": self.template,
            "messages": self.messages_json(), "config": self.config,
            "variables": list(self.variables), "parent": self.parent, "author": self.author,
            "strategy": self.strategy, "rationale": self.rationale,
            "addressed_patterns": list(self.addressed_patterns), "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class PromptInfo:
    """A prompt, its labels and latest version number."""

    name: str
    description: str
    created_at: float
    created_by: str
    latest_version: int
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryView:
    """Every prompt and version, keyed for O(1) lookups on the resolve path."""

    prompts: dict[str, PromptInfo]
    versions: dict[tuple[str, int], VersionInfo]

    def version_for(self, prompt: str, label: str = "production") -> VersionInfo | None:
        """Return the version a label points at, or None."""
        info = self.prompts.get(prompt)
        if info is None or label not in info.labels:
            return None
        return self.versions.get((prompt, info.labels[label]))

    def versions_of(self, prompt: str) -> list[VersionInfo]:
        """Return a prompt's versions, oldest first."""
        return sorted((v for (p, _), v in self.versions.items() if p == prompt),
                      key=lambda v: v.version)


def load_registry(conn: Connection) -> RegistryView:
    """Return the registry read model as it stands in the database."""
    label_map: dict[str, dict[str, int]] = {}
    for row in conn.execute(select(labels)):
        label_map.setdefault(row.prompt, {})[row.label] = row.version
    prompt_map = {
        row.name: PromptInfo(row.name, row.description, row.created_at, row.created_by,
                             row.latest_version, label_map.get(row.name, {}))
        for row in conn.execute(select(prompts))
    }
    version_map = {
        (row.prompt, row.version): VersionInfo(
            row.prompt, row.version, row.template, tuple(json.loads(row.variables)), row.parent,
            row.author, row.strategy, row.rationale, tuple(json.loads(row.addressed_patterns)),
            row.created_at,
            tuple(json.loads(row.messages)) if row.messages is not None else None,
            json.loads(row.config) if row.config is not None else None,
        )
        for row in conn.execute(select(versions))
    }
    return RegistryView(prompt_map, version_map)


def load_tokens(conn: Connection) -> dict[str, TokenRecord]:
    """Return every token record by id."""
    return {
        row.token_id: TokenRecord(row.token_id, row.role, row.name, row.token_hash,
                                  row.revoked_at is not None)
        for row in conn.execute(select(tokens))
    }


def load_counts(conn: Connection, prompt: str) -> dict[int, dict[str, float]]:
    """Return per-version execution and correction counts of one prompt."""
    rows = conn.execute(select(version_counts).where(version_counts.c.prompt == prompt))
    return {
        row.version: {
            "executions": row.executions, "successes": row.successes, "failures": row.failures,
            "errors": row.errors, "corrections": row.corrections,
            "success_rate": (row.successes / row.executions) if row.executions else None,
            "mean_latency_ms": (row.latency_us_sum / 1000 / row.executions)
            if row.executions else None,
            "cost_usd": row.cost_nanousd_sum / 1e9,
        }
        for row in rows
    }
