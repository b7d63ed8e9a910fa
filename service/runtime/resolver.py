"""Resolve: which version (and deployment arm) an agent should use, from memory only."""

from __future__ import annotations

from typing import Any

from deploy.assignment import assign
from deploy.state import SERVING
from service.contract import uuid7
from service.contract.responses import Resolved
from service.projections.views import VersionInfo
from service.runtime.live import LiveState

_ANSWERS_KEPT = 4096


class Resolver:
    """Answers resolve from the live read models, caching the answers they determine.

    An answer depends on the prompt, the label and the arm the subject falls in, and on
    nothing else while the read models stay as they are; so answers are built once per
    (prompt, label, arm) and dropped whenever the registry or the deployments reload.
    """

    def __init__(self, live: LiveState) -> None:
        self._live = live
        self._answers: dict[tuple[str, str, str | None], Resolved] = {}
        self._rollouts: dict[str, dict[str, Any]] = {}
        live.on_reload(self.invalidate)

    def invalidate(self) -> None:
        """Forget every cached answer (the read models changed)."""
        self._answers = {}
        self._rollouts = {}

    def resolve(self, prompt: str, subject: str | None,
                label: str = "production") -> tuple[VersionInfo, str | None, str | None] | None:
        """Return (version, deployment id, arm) for ``subject``, or None if unlabelled."""
        registry = self._live.registry
        version = registry.version_for(prompt, label)
        if version is None:
            return None
        state = self._live.deployments.get(prompt) if label == "production" else None
        if state is None or state.phase not in SERVING:
            return version, None, None
        arm = assign(state.deployment_id, subject or uuid7(), state.weights())
        served = registry.versions.get((prompt, state.version_of(arm)))
        if served is None:  # cannot happen for a valid deployment; never fail a resolve
            return version, None, None
        return served, state.deployment_id, arm

    def answer(self, prompt: str, subject: str | None, label: str = "production"
               ) -> Resolved | None:
        """Return the resolve answer for ``subject``, or None if the label is unset."""
        resolution = self.resolve(prompt, subject, label)
        if resolution is None:
            return None
        version, deployment, arm = resolution
        answers = self._answers
        key = (prompt, label, arm)
        cached = answers.get(key)
        if cached is not None and cached.version == version.version \
                and cached.deployment == deployment:
            return cached
        rollout = self.rollout_config(prompt) if deployment is not None else None
        answer = Resolved(prompt=prompt, version=version.version, template=version.template,
                          variables=list(version.variables), label=label,
                          messages=version.messages_json(), config=version.config,
                          deployment=deployment, arm=arm,
                          step=rollout["step"] if rollout else None,
                          stratum=rollout["stratum"] if rollout else None, rollout=rollout)
        if len(answers) >= _ANSWERS_KEPT:
            answers.clear()
        answers[key] = answer
        return answer

    def rollout_config(self, prompt: str) -> dict[str, Any] | None:
        """Return the live deployment's weights and arms (for local assignment in SDKs)."""
        state = self._live.deployments.get(prompt)
        if state is None or state.phase not in SERVING:
            return None
        cached = self._rollouts.get(prompt)
        if cached is not None and cached["deployment"] == state.deployment_id \
                and cached["stratum"] == state.stratum:
            return cached
        weights = state.weights()
        versions = self._live.registry.versions
        arms = []
        for arm in state.arms:
            if arm.name not in weights:
                continue
            v = versions[(prompt, arm.version)]
            arms.append({"arm": arm.name, "version": v.version, "template": v.template,
                         "variables": list(v.variables), "messages": v.messages_json(),
                         "config": v.config})
        config = {"deployment": state.deployment_id, "step": state.step_index,
                  "stratum": state.stratum,
                  "weights": weights, "arms": arms}
        self._rollouts[prompt] = config
        return config
