"""The running daemon: wires the log, writer, projections, read models, metrics and jobs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from deploy.assignment import assign
from deploy.policy import CanaryPolicy, merge_policy
from deploy.state import SERVING, DeploymentState
from service.contract.ids import uuid7
from service.projections.projector import (
    Projection,
    Projector,
    default_projections,
    execution_succeeded,
)
from service.projections.rollout import (
    DEPLOYMENT_TYPES,
    load_deployments,
    load_policy_overrides,
)
from service.projections.views import (
    RegistryView,
    VersionInfo,
    load_registry,
    load_tokens,
)
from service.runtime import auth
from service.runtime.auth import Principal, TokenRecord
from service.runtime.metrics import DEPLOYMENT_STATES, Metrics
from service.runtime.scheduler import Job, JobScheduler
from service.runtime.settings import Settings
from service.store import eventlog
from service.store.database import create_log_engine
from service.store.eventlog import AppendResult, NewEvent, StoredEvent
from service.store.writer import EventWriter

log = structlog.get_logger("promptd.daemon")

SYSTEM_ACTOR = "promptd"
_ARMS = frozenset({"control", "c1", "c2", "c3"})
Clock = Callable[[], float]


def stream_of(event_type: str, payload: dict[str, Any]) -> str:
    """Return the stream an event belongs to (its prompt, deployment or token)."""
    if "deployment_id" in payload and event_type.startswith("deployment."):
        return f"deployment:{payload['deployment_id']}"
    if "prompt" in payload:
        return f"prompt:{payload['prompt']}"
    if "token_id" in payload:
        return f"token:{payload['token_id']}"
    return "promptd"


class Daemon:
    """One promptd process. ``start()`` before serving; ``stop()`` loses nothing queued."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Clock = time.time,
        extra_projections: Sequence[Projection] = (),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics(registry, backend="sqlite" if settings.is_sqlite else "postgresql")
        # Writes go through one engine (BEGIN IMMEDIATE on SQLite: writers queue for the lock);
        # everything that only reads (routes, jobs, views) uses deferred transactions, which
        # in WAL mode never wait for a group commit nor make one wait.
        self.write_engine = create_log_engine(settings.database_url)
        self.engine = create_log_engine(settings.database_url, for_writing=False)
        self.projector = Projector([*default_projections(), *extra_projections])
        self.writer = EventWriter(
            self.write_engine, self.projector, max_queue=settings.writer_queue_max,
            max_group_events=settings.writer_max_group, on_commit=self._observe_commit,
        )
        self.registry = RegistryView({}, {})
        # Live deployments by prompt: the resolve hot path reads this, never the database.
        self.deployments: dict[str, DeploymentState] = {}
        self.default_policy = merge_policy(CanaryPolicy(), settings.canary_policy)
        # Version numbers and deployment starts are decided one command at a time.
        self.registry_lock = threading.RLock()
        self.last_analysis: dict[str, float] = {}
        self._rollouts: dict[str, tuple[DeploymentState, dict[str, Any]]] = {}
        self._exported: set[tuple[str, str, str]] = set()
        self._recent_arms: dict[str, tuple[str, str, str]] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self._reload_lock = threading.Lock()
        self.writer.add_listener(self._on_change)
        self.started_at = clock()
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()
        self.admin_token_written: Path | None = None
        self.scheduler = JobScheduler(self.write_engine, self.metrics, clock)
        for job in self._jobs():
            self.scheduler.add(job)

    def _jobs(self) -> list[Job]:
        s = self.settings
        return [Job("mine", self._mine, s.mine_interval_s),
                Job("improve", self._improve, s.improve_interval_s),
                Job("canary", self._canary, s.canary_interval_s)]

    # The jobs import lazily: analytics and improver pull in scikit-learn and Jinja2, which
    # a daemon that only serves resolve and ingest need not pay for at start-up.
    def _mine(self, now: float) -> int:
        from service.jobs.mining import run_mining

        return run_mining(self, now)

    def _improve(self, now: float) -> int:
        from service.jobs.improve import run_improve

        return run_improve(self, now)

    def _canary(self, now: float) -> int:
        from service.jobs.decisions import run_canary

        return run_canary(self, now)

    def refresh_deployment_metrics(self) -> None:
        """Export weights, phase, step and step age of every prompt's deployment."""
        self._export_deployments()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Catch up the read models, start the writer, make sure an admin token exists."""
        self._reload(reload_all=True)
        self.writer.start()
        self.metrics.log_position.set(self.writer.position)
        self._ensure_admin_token()
        self._stop.clear()
        self._refresher = threading.Thread(target=self._refresh_loop, name="promptd-refresh",
                                           daemon=True)
        self._refresher.start()
        if self.settings.scheduler_enabled:
            self.scheduler.start()
        log.info("daemon_started", backend="sqlite" if self.settings.is_sqlite else "postgresql",
                 position=self.writer.position)

    def stop(self) -> None:
        """Stop the background work; every append already queued is committed first."""
        self._stop.set()
        self.scheduler.stop()
        if self._refresher is not None:
            self._refresher.join(5)
        self.writer.stop()
        self.engine.dispose()
        self.write_engine.dispose()
        log.info("daemon_stopped", position=self.writer.position)

    # -- appending ---------------------------------------------------------------------------

    def new_event(self, event_type: str, payload: dict[str, Any],
                  event_id: str | None = None) -> NewEvent:
        """Return a new event stamped with an id, its stream and the daemon's clock."""
        return NewEvent(event_id or uuid7(), event_type, stream_of(event_type, payload), payload,
                        self.clock())

    async def append(self, batch: Sequence[NewEvent]) -> list[AppendResult]:
        """Append ``batch`` through the group-commit writer; returns once it is durable."""
        return await asyncio.wrap_future(self.writer.submit(batch))

    def append_sync(self, batch: Sequence[NewEvent]) -> list[AppendResult]:
        """Append from a plain thread (scheduler jobs); returns once durable."""
        return self.writer.append(batch)

    def record(self, event_type: str, payload: dict[str, Any]) -> AppendResult:
        """Append one system event from a plain thread and return where it landed."""
        return self.append_sync([self.new_event(event_type, payload)])[0]

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal | None:
        """Return the caller behind a bearer token, or None."""
        return auth.verify(token, self.tokens)

    def issue_token(self, role: auth.Role, name: str, actor: str) -> tuple[str, str]:
        """Append a ``token.issued`` event; return (token_id, token). The token is not logged."""
        token_id, token = auth.new_token(role)
        self.record("token.issued", {"token_id": token_id, "role": role, "name": name,
                                     "token_hash": auth.hash_token(token), "actor": actor})
        return token_id, token

    def _ensure_admin_token(self) -> None:
        if any(t.role == "admin" and not t.revoked for t in self.tokens.values()):
            return
        _, token = self.issue_token("admin", "bootstrap", SYSTEM_ACTOR)
        path = self.settings.token_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.chmod(path, 0o600)
        self.admin_token_written = path
        log.warning("admin_token_created", path=str(path.resolve()),
                    hint="read it from this file; it is not logged anywhere")

    # -- read models -------------------------------------------------------------------------

    def _on_change(self, stored: list[StoredEvent], seen: set[str], head: int) -> None:
        self.metrics.log_position.set(head)
        self._count(stored)
        if seen & {"prompt.created", "version.created", "label.moved"}:
            self._reload(registry=True)
        if seen & {"token.issued", "token.revoked"}:
            self._reload(tokens=True)
        if seen & DEPLOYMENT_TYPES:
            self._reload(deployments=True)

    def _reload(self, *, registry: bool = False, tokens: bool = False,
                deployments: bool = False, reload_all: bool = False) -> None:
        with self._reload_lock, self.engine.connect() as conn:
            if registry or reload_all:
                self.registry = load_registry(conn)
            if tokens or reload_all:
                self.tokens = load_tokens(conn)
            if deployments or reload_all:
                self.deployments = {d.prompt: d for d in load_deployments(conn, active_only=True)}
            if registry or deployments or reload_all:
                self._export_deployments()
                self._retire_labels()

    def _export_deployments(self) -> None:
        m = self.metrics
        now = self.clock()
        for prompt in self.registry.prompts:
            state = self.deployments.get(prompt)
            current = state.phase.value if state is not None else "none"
            for phase in DEPLOYMENT_STATES:
                m.deployment_state.labels(prompt, phase).set(1 if phase == current else 0)
            weights = state.weights() if state is not None else {"control": 10_000}
            for arm in ("control", "c1", "c2", "c3"):
                m.deployment_weight.labels(prompt, arm).set(weights.get(arm, 0) / 10_000)
            m.deployment_step.labels(prompt).set(state.step_index if state else 0)
            m.deployment_step_age.labels(prompt).set(
                now - state.step_started_at if state else 0)

    def _live_versions(self, prompt: str) -> set[int]:
        """Return the versions of a prompt that may be metric labels: production and canary."""
        info = self.registry.prompts.get(prompt)
        live = {info.labels["production"]} if info and "production" in info.labels else set()
        state = self.deployments.get(prompt)
        if state is not None:
            live.update(arm.version for arm in state.arms)
        return live

    def _labels(self, prompt: str, version: int, arm: str | None) -> tuple[str, str, str]:
        # Bounded label values: a version only while live or in a deployment, a known arm.
        v = str(version) if version in self._live_versions(prompt) else "other"
        a = arm if arm in _ARMS else ("none" if arm in (None, "", "none") else "other")
        key = (prompt, v, a)
        self._exported.add(key)
        return key

    def _count(self, stored: list[StoredEvent]) -> None:
        # Tallied per group commit, then one inc() per series: label lookups take a lock and
        # validate values, which per event cost more than the rest of the fold.
        m = self.metrics
        keys: dict[tuple[str, int, str | None], tuple[str, str, str]] = {}
        tallies: dict[tuple[str, str, str], list[int]] = {}  # executions, successes, errors
        latencies: dict[tuple[str, str], list[float]] = {}
        costs: dict[tuple[str, str], float] = {}
        recent = self._recent_arms
        for e in stored:
            p = e.payload
            if e.type == "execution":
                raw = (p["prompt"], p["version"], p.get("arm"))
                labels = keys.get(raw)
                if labels is None:
                    labels = keys[raw] = self._labels(*raw)
                recent[e.event_id] = labels
                tally = tallies.get(labels)
                if tally is None:
                    tally = tallies[labels] = [0, 0, 0]
                tally[0] += 1
                tally[1] += execution_succeeded(p)
                tally[2] += bool(p.get("error_type"))
                latency_ms = p.get("latency_ms")
                if latency_ms is not None:
                    latencies.setdefault((labels[0], labels[2]), []).append(latency_ms / 1000.0)
                if p.get("cost_usd"):
                    series = (labels[0], labels[2])
                    costs[series] = costs.get(series, 0.0) + p["cost_usd"]
            elif e.type == "correction":
                # A correction names its execution, not the arm: take the arm we counted it in.
                known = recent.get(p["execution_id"])
                arm = known[2] if known and known[1] == str(p["version"]) else None
                m.corrections.labels(*self._labels(p["prompt"], p["version"], arm)).inc()
                m.corrections_by_category.labels(
                    p["prompt"], m.category_label(p["prompt"], p["category"])).inc()
        while len(recent) > 100_000:  # bounded: oldest first out
            del recent[next(iter(recent))]
        for labels, (executions, successes, errors) in tallies.items():
            m.executions.labels(*labels).inc(executions)
            if successes:
                m.successes.labels(*labels).inc(successes)
            if errors:
                m.errors.labels(*labels).inc(errors)
        for series, values in latencies.items():
            histogram = m.execution_latency.labels(*series)
            for value in values:
                histogram.observe(value)
        for series, cost in costs.items():
            m.execution_cost.labels(*series).inc(cost)

    def _retire_labels(self) -> None:
        """Drop the series of versions that are no longer live (their counts stop anyway)."""
        m = self.metrics
        for key in list(self._exported):
            prompt, version, _ = key
            if version == "other" or int(version) in self._live_versions(prompt):
                continue
            self._exported.discard(key)
            for counter in (m.executions, m.successes, m.errors, m.corrections):
                with contextlib.suppress(KeyError):
                    counter.remove(*key)

    def _observe_commit(self, received: int, stored: int, seconds: float) -> None:
        if received == 0:
            return  # a catch-up with nothing appended is not a group commit
        self.metrics.group_commit_events.observe(received)
        self.metrics.group_commit_seconds.observe(seconds)

    def _refresh_loop(self) -> None:
        # Other processes (API replicas on PostgreSQL) may append too; fold their events in.
        last_head = self.writer.position
        while not self._stop.wait(self.settings.refresh_interval_s):
            try:
                with self.engine.connect() as conn:
                    head = eventlog.head_position(conn)
                    lag = self.projector.lag(conn)
                self.metrics.projection_lag.set(lag)
                self.metrics.log_position.set(head)
                self._export_deployments()  # step age moves even when nothing else does
                self.metrics.writer_queue_depth.set(self.writer.queue_depth)
                if head != last_head and head > self.writer.position:
                    self.writer.append([])
                last_head = head
            except Exception:
                log.exception("refresh_failed")

    def resolve(self, prompt: str, subject: str | None,
                label: str = "production") -> tuple[VersionInfo, str | None, str | None] | None:
        """Return (version, deployment id, arm) an agent should use, or None if unlabelled."""
        version = self.registry.version_for(prompt, label)
        if version is None:
            return None
        state = self.deployments.get(prompt) if label == "production" else None
        if state is None or state.phase not in SERVING:
            return version, None, None
        arm = assign(state.deployment_id, subject or uuid7(), state.weights())
        served = self.registry.versions.get((prompt, state.version_of(arm)))
        if served is None:  # cannot happen for a valid deployment; never fail a resolve
            return version, None, None
        return served, state.deployment_id, arm

    def rollout_config(self, prompt: str) -> dict[str, Any] | None:
        """Return the live deployment's weights and arms (for local assignment in SDKs)."""
        state = self.deployments.get(prompt)
        if state is None or state.phase not in SERVING:
            return None
        cached = self._rollouts.get(prompt)
        if cached is not None and cached[0] is state:  # same fold result: same config
            return cached[1]
        weights = state.weights()
        arms = []
        for arm in state.arms:
            if arm.name not in weights:
                continue
            v = self.registry.versions[(prompt, arm.version)]
            arms.append({"arm": arm.name, "version": v.version, "template": v.template,
                         "variables": list(v.variables)})
        config = {"deployment": state.deployment_id, "step": state.step_index,
                  "weights": weights, "arms": arms}
        self._rollouts[prompt] = (state, config)
        return config

    def policy_for(self, prompt: str) -> CanaryPolicy:
        """Return the canary policy of a prompt: settings defaults plus stored overrides."""
        with self.engine.connect() as conn:
            overrides = load_policy_overrides(conn, prompt)
        return merge_policy(self.default_policy, overrides) if overrides else self.default_policy

    def projection_lag(self) -> int:
        """Return how many events the read models are behind the log (0 when caught up)."""
        with self.engine.connect() as conn:
            return self.projector.lag(conn)
