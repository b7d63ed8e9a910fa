"""ops/METRICS.md, the dashboard and the alerts agree with what /metrics really exposes."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.ops.artifacts import (
    alert_queries,
    catalogue,
    created_base,
    dashboard_queries,
    exposed_families,
    metric_names,
)
from tests.ops.conftest import Exercised

# Labels Prometheus attaches to every scraped series: a metric using them gets them renamed.
RESERVED_LABELS = {"job", "instance"}


def test_metrics_md_lists_every_exposed_family_and_nothing_else(exercised: Exercised) -> None:
    families = exposed_families(exercised.exposition)
    documented = catalogue()
    undocumented = {name for name in families
                    if name not in documented and created_base(name, families) not in documented}
    assert undocumented == set(), "exposed but missing from ops/METRICS.md"
    assert set(documented) - set(families) == set(), "in ops/METRICS.md but not exposed"
    for name, entry in documented.items():
        assert entry.type == families[name], name


def test_metrics_md_lists_the_labels_each_family_really_has(exercised: Exercised) -> None:
    documented = catalogue()
    for family in text_string_to_metric_families(exercised.exposition):
        exposed = family.name if family.type != "counter" else f"{family.name}_total"
        entry = documented.get(exposed) or documented.get(family.name)
        if entry is None:
            continue  # an unused _created companion, covered by the test above
        if not family.samples:
            continue  # every series retired (e.g. versions no longer live): nothing to compare
        labels = {k for s in family.samples for k in s.labels if k not in ("le", "quantile")}
        assert labels == set(entry.labels), entry.name


def test_metrics_md_names_exactly_the_panels_annotations_and_alerts_using_each_metric() -> None:
    queries = dashboard_queries() + alert_queries()
    for name, entry in catalogue().items():
        users = {q.user for q in queries if name in metric_names(q.expr)}
        assert entry.used_by == users, name


def test_every_metric_the_dashboard_and_alerts_query_is_exposed(exercised: Exercised) -> None:
    families = exposed_families(exercised.exposition)
    queried = {n for q in dashboard_queries() + alert_queries() for n in metric_names(q.expr)}
    assert queried - set(families) == {"up"}  # `up` is written by Prometheus itself


def test_exposition_follows_prometheus_naming_conventions(exercised: Exercised) -> None:
    for family in text_string_to_metric_families(exercised.exposition):
        assert family.name.startswith("promptd_"), family.name
        labels = {k for s in family.samples for k in s.labels}
        assert not labels & RESERVED_LABELS, family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram" and "duration" in family.name:
            assert family.name.endswith("_seconds"), family.name
        if family.type == "gauge" and family.name.endswith("_total"):
            raise AssertionError(f"gauge {family.name} is named like a counter")


def test_every_alert_and_panel_the_issue_asks_for_exists() -> None:
    alerts = {q.user for q in alert_queries()}
    assert alerts == {f"alert {a}" for a in (
        "PromptdDown", "PromptdIngestRejectionsHigh", "PromptdProjectionLagHigh",
        "PromptdJobFailing", "PromptdRollback", "PromptdDeploymentStuck", "PromptdSRMDetected")}
    rollback = next(q for q in alert_queries() if q.user == "alert PromptdRollback")
    assert "increase(promptd_rollbacks_total[" in rollback.expr
    stuck = next(q for q in alert_queries() if q.user == "alert PromptdDeploymentStuck")
    assert "promptd_deployment_step_age_seconds" in stuck.expr
