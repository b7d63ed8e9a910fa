"""Prometheus metrics, built on a registry the caller gives (tests get a fresh one).

Label values stay bounded: prompts are only those in the registry, versions only while live
or in a deployment, arms are control/c1..c3, categories are capped per prompt.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from service import __version__

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
EXEC_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
GROUP_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
MAX_CATEGORIES_PER_PROMPT = 20
# A deployment's label value: "dep-" and the time-ordered head of its id (milliseconds and a
# counter), unique in practice, and a prefix `promptd deployment show` accepts.
DEPLOYMENT_LABEL_CHARS = 22
# Exported at scrape time from the read models (``exporter.EvidenceCollector``), one series
# per serving deployment, live candidate and watched metric: they vanish when it ends.
DEPLOYMENT_EFFECT = (
    "promptd_deployment_effect",
    "Candidate minus control per serving deployment, arm and metric: the canary's estimate "
    "and its always-valid lower and upper bounds (bound)",
    ("prompt", "deployment", "arm", "metric", "bound"))
DEPLOYMENT_BOUNDARY = (
    "promptd_deployment_boundary",
    "The delta a bound is judged against, per serving deployment and metric: harm (a bound "
    "beyond it rolls back) or promotion (the primary lower bound above it promotes)",
    ("prompt", "deployment", "metric", "kind"))
DEPLOYMENT_STATES = (
    "none", "pending_approval", "running", "awaiting_promotion", "paused", "promoted",
    "rolled_back", "superseded",
)


class Metrics:
    """Every metric promptd exports (catalogue: ops/METRICS.md)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, backend: str = "sqlite"
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.build_info = Info("promptd_build", "promptd version and backend", registry=r)
        self.build_info.info({"version": __version__, "backend": backend})
        # ingest
        self.events_ingested = Counter(
            "promptd_events_ingested_total", "Events received, by type and result",
            ["type", "result"], registry=r)
        self.ingest_seconds = Histogram(
            "promptd_ingest_duration_seconds", "Time to validate and durably append a request",
            ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.otlp_spans = Counter(
            "promptd_otlp_spans_total",
            "Spans received on /v1/traces, by result (mapped, ignored, rejected) and reason",
            ["result", "reason"], registry=r)
        self.otlp_evaluations = Counter(
            "promptd_otlp_evaluations_total",
            "gen_ai.evaluation results on received spans, by what they became",
            ["result"], registry=r)
        self.resolve_seconds = Histogram(
            "promptd_resolve_duration_seconds", "Time to answer a resolve request",
            buckets=LATENCY_BUCKETS, registry=r)
        self.http_requests = Counter(
            "promptd_http_requests_total", "HTTP requests by route template and status code",
            ["route", "method", "code"], registry=r)
        self.group_commit_events = Histogram(
            "promptd_group_commit_events", "Events committed together in one transaction",
            buckets=GROUP_BUCKETS, registry=r)
        self.group_commit_seconds = Histogram(
            "promptd_group_commit_duration_seconds", "Duration of one group commit",
            buckets=LATENCY_BUCKETS, registry=r)
        self.writer_queue_depth = Gauge(
            "promptd_writer_queue_depth", "Append requests waiting for the writer", registry=r)
        self.log_position = Gauge(
            "promptd_log_position", "Position of the newest event in the log", registry=r)
        self.projection_lag = Gauge(
            "promptd_projection_lag_events", "Events not yet folded into the read models",
            registry=r)
        # prompt quality
        self.executions = Counter(
            "promptd_executions_total", "Executions reported, by prompt, version and arm",
            ["prompt", "version", "arm"], registry=r)
        self.successes = Counter(
            "promptd_execution_successes_total", "Successful executions",
            ["prompt", "version", "arm"], registry=r)
        self.errors = Counter(
            "promptd_execution_errors_total", "Executions that reported an error_type",
            ["prompt", "version", "arm"], registry=r)
        self.corrections = Counter(
            "promptd_corrections_total", "Corrections reported, by prompt, version and arm",
            ["prompt", "version", "arm"], registry=r)
        self.corrections_by_category = Counter(
            "promptd_corrections_by_category_total",
            f"Corrections by category (first {MAX_CATEGORIES_PER_PROMPT} per prompt, then other)",
            ["prompt", "category"], registry=r)
        self.execution_latency = Histogram(
            "promptd_execution_latency_seconds", "Agent-reported execution latency",
            ["prompt", "arm"], buckets=EXEC_LATENCY_BUCKETS, registry=r)
        self.execution_cost = Counter(
            "promptd_execution_cost_usd_total", "Agent-reported cost in US dollars",
            ["prompt", "arm"], registry=r)
        # rollouts
        self.deployment_weight = Gauge(
            "promptd_deployment_weight_ratio", "Share of traffic per arm of the live deployment",
            ["prompt", "arm"], registry=r)
        self.deployment_state = Gauge(
            "promptd_deployment_state", "1 for the prompt's current deployment state",
            ["prompt", "state"], registry=r)
        self.deployment_step = Gauge(
            "promptd_deployment_step",
            "Current canary step counted from 1 (0: no deployment serves)",
            ["prompt"], registry=r)
        self.deployment_step_age = Gauge(
            "promptd_deployment_step_age_seconds", "Seconds since the current step began",
            ["prompt"], registry=r)
        self.promotions = Counter(
            "promptd_promotions_total", "Deployments promoted, by reason",
            ["prompt", "reason"], registry=r)
        self.rollbacks = Counter(
            "promptd_rollbacks_total", "Deployments rolled back, by reason",
            ["prompt", "reason"], registry=r)
        self.srm_detected = Counter(
            "promptd_srm_detected_total", "Sample-ratio mismatches detected", ["prompt"],
            registry=r)
        # mining and improvement
        self.patterns_active = Gauge(
            "promptd_patterns_active", "Failure patterns in the latest mining snapshot",
            ["prompt"], registry=r)
        self.candidates_proposed = Counter(
            "promptd_candidates_proposed_total", "Candidate versions proposed, by strategy",
            ["prompt", "strategy"], registry=r)
        # scheduler: the label is job_name, not job, because Prometheus attaches its own `job`
        # target label to every scraped series and would rename ours to `exported_job`.
        self.job_runs = Counter(
            "promptd_job_runs_total", "Scheduled job runs by job and result",
            ["job_name", "result"], registry=r)
        self.job_seconds = Histogram(
            "promptd_job_duration_seconds", "Scheduled job duration", ["job_name"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=r)
        self.job_last_success = Gauge(
            "promptd_job_last_success_timestamp_seconds", "When each job last succeeded",
            ["job_name"], registry=r)
        self.is_leader = Gauge(
            "promptd_scheduler_leader", "1 when this process runs the scheduled jobs",
            registry=r)
        self._categories: dict[str, set[str]] = {}

    def category_label(self, prompt: str, category: str) -> str:
        """Return a bounded label value for a correction category."""
        seen = self._categories.setdefault(prompt, set())
        if category in seen:
            return category
        if len(seen) < MAX_CATEGORIES_PER_PROMPT:
            seen.add(category)
            return category
        return "other"
