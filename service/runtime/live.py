"""The read models the hot paths read from memory, reloaded when the log changes.

Resolve and authentication must not touch the database: they read the registry, the live
deployment per prompt and the token records from here. Each is an immutable value replaced
whole on reload, so a reader holding one never sees it half-updated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine

from deploy.state import DeploymentState
from service.projections.rollout import load_deployments
from service.projections.tokens import TokenRecord
from service.projections.views import RegistryView, load_registry, load_tokens

Reloaded = Callable[[], None]


class LiveState:
    """Registry, live deployments by prompt, and tokens, as of the last reload."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.registry = RegistryView({}, {})
        self.deployments: dict[str, DeploymentState] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self._listeners: list[Reloaded] = []

    def on_reload(self, listener: Reloaded) -> None:
        """Call ``listener()`` after every reload of the registry or the deployments."""
        self._listeners.append(listener)

    def reload(self, *, registry: bool = False, deployments: bool = False,
               tokens: bool = False) -> None:
        """Read the named read models again from the database."""
        if not (registry or deployments or tokens):
            return
        with self._lock, self._engine.connect() as conn:
            if registry:
                self.registry = load_registry(conn)
            if tokens:
                self.tokens = load_tokens(conn)
            if deployments:
                self.deployments = {d.prompt: d
                                    for d in load_deployments(conn, active_only=True)}
        if registry or deployments:
            for listener in self._listeners:
                listener()

    def reload_all(self) -> None:
        """Read every read model again."""
        self.reload(registry=True, deployments=True, tokens=True)
