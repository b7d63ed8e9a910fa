"""The Grafana dashboard and its provisioning files are complete and consistent."""

from __future__ import annotations

import re
from typing import Any

from tests.ops.artifacts import (
    DASHBOARD,
    PROVISIONING,
    README,
    alert_queries,
    catalogue,
    dashboard_queries,
    load_dashboard,
    metric_names,
)

DS = {"type": "prometheus", "uid": "${datasource}"}
# Grafana 10.x and 11.x write schema 39; older dashboards are migrated on load, newer ones not.
SCHEMA_VERSION = 39


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _rows(board: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for p in board["panels"]:
        if p["type"] == "row":
            rows.append((p["title"], []))
        else:
            rows[-1][1].append(p)
    return rows


def test_dashboard_has_current_schema_and_datasource_and_prompt_variables() -> None:
    board = load_dashboard()
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert board["uid"] == "promptd-overview" and board["id"] is None
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    prompt = variables["prompt"]
    assert prompt["type"] == "query" and prompt["datasource"] == DS
    assert prompt["query"] == prompt["definition"]
    assert re.fullmatch(r"label_values\(promptd_\w+, prompt\)", prompt["definition"])
    assert prompt["multi"] and prompt["includeAll"] and prompt["allValue"] == ".*"


def test_every_panel_and_annotation_queries_through_the_datasource_variable() -> None:
    board = load_dashboard()
    for p in _panels(board):
        assert p["datasource"] == DS, p["title"]
        assert p["targets"], p["title"]
        assert all(t["datasource"] == DS for t in p["targets"]), p["title"]
        assert [t["refId"] for t in p["targets"]] == [chr(65 + i) for i in
                                                      range(len(p["targets"]))]
    annotations = [a for a in board["annotations"]["list"] if "expr" in a]
    assert all(a["datasource"] == DS for a in annotations)


def test_dashboard_has_a_row_for_each_area_the_issue_names() -> None:
    titles = [title for title, _ in _rows(load_dashboard())]
    assert titles == ["Ingest health", "Prompt quality by arm ($prompt)",
                      "Rollouts ($prompt)", "Mining and improvement", "The daemon"]


def test_every_query_on_a_per_prompt_metric_follows_the_prompt_variable() -> None:
    per_prompt = {name for name, entry in catalogue().items() if "prompt" in entry.labels}
    for query in dashboard_queries():
        for name in metric_names(query.expr) & per_prompt:
            use = rf"(?<![\w:]){name}(?:_bucket|_sum|_count)?(?![\w:])"
            selectors = re.findall(use + r"\{([^}]*)\}", query.expr)
            uses = re.findall(use, query.expr)
            assert len(selectors) == len(uses), (query.user, name)
            assert all('prompt=~"$prompt"' in s for s in selectors), (query.user, name)


def test_rows_named_for_the_prompt_variable_filter_every_panel() -> None:
    for title, panels in _rows(load_dashboard()):
        if "$prompt" in title:
            for p in panels:
                assert all('prompt=~"$prompt"' in t["expr"] for t in p["targets"]), p["title"]


def test_quality_row_splits_success_correction_latency_and_cost_by_arm() -> None:
    _, quality = _rows(load_dashboard())[1]
    by_arm = " ".join(p["title"] for p in quality)
    for metric in ("Success rate", "Correction rate", "latency", "Cost"):
        assert f"{metric}" in by_arm and "by arm" in by_arm
    for p in quality:
        if "by arm" in p["title"]:
            assert all("arm" in t["expr"] for t in p["targets"]), p["title"]


def test_promotions_and_rollbacks_are_annotated_on_every_panel() -> None:
    annotations = {a["name"]: a for a in load_dashboard()["annotations"]["list"] if "expr" in a}
    assert set(annotations) == {"Promotions", "Rollbacks"}
    assert "promptd_promotions_total" in annotations["Promotions"]["expr"]
    assert "promptd_rollbacks_total" in annotations["Rollbacks"]["expr"]
    assert all(a["enable"] and "{{reason}}" in a["textFormat"] for a in annotations.values())


def test_panels_tile_the_grid_without_overlapping_and_have_unique_ids() -> None:
    board = load_dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_every_panel_has_a_unique_title_and_a_description() -> None:
    for p in _panels(load_dashboard()):
        assert len(p["description"]) > 30, p["title"]
    titles = [q.user for q in dashboard_queries()]
    assert len(set(titles)) == len(_panels(load_dashboard())) + 2  # plus two annotations


def _yaml_value(text: str, key: str) -> list[str]:
    return [m.strip().strip('"') for m in re.findall(rf"^\s*-?\s*{key}:\s*(.+)$", text, re.M)]


def test_provisioning_loads_the_dashboard_folder_with_a_prometheus_datasource() -> None:
    datasources = (PROVISIONING / "datasources" / "promptd.yml").read_text()
    assert _yaml_value(datasources, "apiVersion") == ["1"]
    assert _yaml_value(datasources, "type") == ["prometheus"]
    assert _yaml_value(datasources, "isDefault") == ["true"]
    providers = (PROVISIONING / "dashboards" / "promptd.yml").read_text()
    assert _yaml_value(providers, "type") == ["file"]
    [path] = _yaml_value(providers, "path")
    # The README's install commands put ops/grafana/dashboards exactly where the provider looks.
    readme = README.read_text()
    assert f"{DASHBOARD.parent.relative_to(DASHBOARD.parents[3])}:{path}" in readme
    assert f"{path}/" in readme or f"{path} " in readme


def test_readme_explains_every_panel_and_alert() -> None:
    readme = README.read_text()
    for query in dashboard_queries():
        name = query.user.split(" ", 1)[1].strip('"')
        assert name in readme, query.user
    for query in alert_queries():
        assert f"### {query.user.split()[1]} (" in readme, query.user


def test_rollout_panels_speak_of_the_candidates_share_and_steps_counted_from_one() -> None:
    panels = {p["title"]: p for p in _panels(load_dashboard())}
    share = panels["Traffic share by arm"]
    assert share["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert any('arm!="control"' in t["expr"] and t["expr"].startswith("sum by (prompt)")
               for t in share["targets"])
    assert "counted from 1" in panels["Canary step"]["description"]
    assert "Index" not in panels["Canary step"]["description"]
