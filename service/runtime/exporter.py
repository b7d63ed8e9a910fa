"""Metrics that follow from the log: traffic per prompt, version and arm, and rollout state.

Called after every group commit with the events this process appended, and after every
reload of the live read models. Label values stay bounded: a version is a label value only
while it is production or in a deployment ("other" otherwise), arms are control/c1..c3.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from deploy.state import SERVING, DeploymentState
from deploy.stats import StepStats
from service.projections.counts import execution_succeeded
from service.runtime.evidence import BOUNDS, Evidence, evidence_of
from service.runtime.live import LiveState
from service.runtime.metrics import (
    DEPLOYMENT_BOUNDARY,
    DEPLOYMENT_EFFECT,
    DEPLOYMENT_LABEL_CHARS,
    DEPLOYMENT_STATES,
    Metrics,
)
from service.store.eventlog import StoredEvent

log = structlog.get_logger("promptd.exporter")
StatsOf = Callable[[Sequence[DeploymentState]], list[tuple[DeploymentState, StepStats]]]

_ARMS = frozenset({"control", "c1", "c2", "c3"})
_RECENT_KEPT = 100_000
Labels = tuple[str, str, str]
_ENDINGS = frozenset({"deployment.rolled_back", "deployment.rejected", "deployment.superseded"})
_TRIGGERS = frozenset({"harm", "srm", "improvement", "non_inferior", "inconclusive",
                       "elimination", "approved", "superseded"})


def _bounded(trigger: str) -> str:
    # Anything else (an admin's command) is "admin": never a free-form label value.
    return trigger if trigger in _TRIGGERS else "admin"


class MetricsExporter:
    """Keeps the Prometheus series in step with the log and the live read models."""

    def __init__(self, metrics: Metrics, live: LiveState, clock: Callable[[], float],
                 stats_of: StatsOf | None = None) -> None:
        self._metrics = metrics
        if stats_of is not None:
            metrics.registry.register(EvidenceCollector(live, stats_of))
        self._live = live
        self._clock = clock
        self._exported: set[Labels] = set()
        # The arm each recent execution was counted in: a correction names its execution,
        # not the arm, and is counted in the same series.
        # An OrderedDict, not a dict: dropping the oldest of a dict (del d[next(iter(d))])
        # skips every slot deleted before it, so each commit got slower as traffic went on
        # (batch ingest fell from 13,000 to 3,400 events/s within a minute).
        self._recent_arms: OrderedDict[str, Labels] = OrderedDict()

    def on_reload(self) -> None:
        """Export rollout state and drop series of versions that stopped being live."""
        self.export_deployments()
        self._retire_labels()

    def export_deployments(self) -> None:
        """Export weights, phase, step and step age of every prompt's deployment."""
        m = self._metrics
        now = self._clock()
        deployments = self._live.deployments
        for prompt in self._live.registry.prompts:
            state = deployments.get(prompt)
            current = state.phase.value if state is not None else "none"
            for phase in DEPLOYMENT_STATES:
                m.deployment_state.labels(prompt, phase).set(1 if phase == current else 0)
            weights = state.weights() if state is not None else {"control": 10_000}
            for arm in ("control", "c1", "c2", "c3"):
                m.deployment_weight.labels(prompt, arm).set(weights.get(arm, 0) / 10_000)
            # Steps count from 1, as the CLI and the API say them; 0: no deployment serves.
            m.deployment_step.labels(prompt).set(state.step_index + 1 if state else 0)
            m.deployment_step_age.labels(prompt).set(
                now - state.step_started_at if state else 0)

    def count(self, stored: list[StoredEvent]) -> None:
        """Count the executions and corrections of one group commit."""
        # Tallied per group commit, then one inc() per series: label lookups take a lock and
        # validate values, which per event cost more than the rest of the fold.
        m = self._metrics
        keys: dict[tuple[str, int, str | None], Labels] = {}
        tallies: dict[Labels, list[int]] = {}  # executions, successes, errors
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
            elif e.type in _ENDINGS or e.type == "deployment.promoted":
                self._count_decision(e.type, p)
            elif e.type == "correction":
                known = recent.get(p["execution_id"])
                arm = known[2] if known and known[1] == str(p["version"]) else None
                m.corrections.labels(*self._labels(p["prompt"], p["version"], arm)).inc()
                m.corrections_by_category.labels(
                    p["prompt"], m.category_label(p["prompt"], p["category"])).inc()
        while len(recent) > _RECENT_KEPT:  # bounded: oldest first out
            recent.popitem(last=False)
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

    def _count_decision(self, event_type: str, p: dict[str, object]) -> None:
        # Counted from the log by the process that appended the decision: the same on every
        # replica, whoever decided (a tick, an admin, the improver).
        m = self._metrics
        prompt = str(p.get("prompt", ""))
        trigger = _bounded(str(p.get("trigger") or "admin"))
        if event_type == "deployment.promoted":
            m.promotions.labels(prompt, trigger).inc()
            return
        m.rollbacks.labels(prompt, trigger).inc()
        if trigger == "srm":
            m.srm_detected.labels(prompt).inc()

    def observe_commit(self, received: int, stored: int, seconds: float) -> None:
        """Record one group commit's size and duration."""
        if received == 0:
            return  # a catch-up with nothing appended is not a group commit
        self._metrics.group_commit_events.observe(received)
        self._metrics.group_commit_seconds.observe(seconds)

    def _live_versions(self, prompt: str) -> set[int]:
        info = self._live.registry.prompts.get(prompt)
        live = {info.labels["production"]} if info and "production" in info.labels else set()
        state = self._live.deployments.get(prompt)
        if state is not None:
            live.update(arm.version for arm in state.arms)
        return live

    def _labels(self, prompt: str, version: int, arm: str | None) -> Labels:
        v = str(version) if version in self._live_versions(prompt) else "other"
        a = arm if arm in _ARMS else ("none" if arm in (None, "", "none") else "other")
        key = (prompt, v, a)
        self._exported.add(key)
        return key

    def _retire_labels(self) -> None:
        m = self._metrics
        for key in list(self._exported):
            prompt, version, _ = key
            if version == "other" or int(version) in self._live_versions(prompt):
                continue
            self._exported.discard(key)
            for counter in (m.executions, m.successes, m.errors, m.corrections):
                with contextlib.suppress(KeyError):
                    counter.remove(*key)


class EvidenceCollector(Collector):
    """Exports each serving deployment's effects and boundaries, read at scrape time.

    Computed from the read models when Prometheus asks (``service.runtime.evidence``, the
    canary's own functions), so a series exists exactly while its deployment serves and
    its arm is live: an ended deployment's series are simply not collected any more.
    """

    def __init__(self, live: LiveState, stats_of: StatsOf) -> None:
        self._live = live
        self._stats_of = stats_of

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Return the two families without samples (the registry checks names with them)."""
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Return the two families with a sample per effect bound and per boundary."""
        effect, boundary = self._families()
        serving = [s for s in self._live.deployments.values() if s.phase in SERVING]
        try:
            found = evidence_of(self._stats_of(serving)) if serving else []
        except Exception:  # a failed read must not fail the whole scrape
            log.exception("evidence_export_failed")
            found = []
        for e in found:
            _add_samples(effect, boundary, e)
        return iter((effect, boundary))

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        (name, doc, labels), (bname, bdoc, blabels) = DEPLOYMENT_EFFECT, DEPLOYMENT_BOUNDARY
        return (GaugeMetricFamily(name, doc, labels=labels),
                GaugeMetricFamily(bname, bdoc, labels=blabels))


def _add_samples(effect: GaugeMetricFamily, boundary: GaugeMetricFamily, e: Evidence) -> None:
    deployment = e.deployment_id[:DEPLOYMENT_LABEL_CHARS]
    for x in e.effects:
        for bound in BOUNDS:
            value = x.value(bound)
            if value is not None:  # no bound on that side (one-sided, or too few data)
                effect.add_metric([e.prompt, deployment, x.arm, x.metric, bound], value)
    for metric, kinds in e.boundaries.items():
        for kind, value in kinds.items():
            boundary.add_metric([e.prompt, deployment, metric, kind], value)
