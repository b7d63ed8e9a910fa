"""Export and import: prompts in files, moved between daemons, history never rewritten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.service.test_cli import run
from tests.support import LiveDaemon, live_daemon

CHAT = "support/chat"
TEXT = "support/triage"
MESSAGES = [{"role": "system", "content": "Be kind.\nCite the policy."},
            {"role": "placeholder", "name": "history"},
            {"role": "user", "content": "{{ question }}"}]


def _seed(live: LiveDaemon) -> None:
    admin = live.client()
    admin.post("/v1/prompts", json={"name": CHAT, "messages": MESSAGES,
                                    "config": {"model": "m1", "temperature": 0.1},
                                    "description": "chat"}).raise_for_status()
    admin.post(f"/v1/prompts/{CHAT}/versions", json={
        "messages": [*MESSAGES[:2], {"role": "user", "content": "Q: {{ question }}"}],
        "config": {"model": "m2"}, "rationale": "model swap"}).raise_for_status()
    admin.put(f"/v1/prompts/{CHAT}/labels/staging", json={"version": 2}).raise_for_status()
    admin.post(f"/v1/prompts/{CHAT}/labels/staging/protect", json={}).raise_for_status()
    live.create_prompt(TEXT, "Triage {{ ticket }}")


def _head(live: LiveDaemon) -> int:
    return int(live.client().get("/v1/events", params={"limit": 1}).json()["head"])


def _contents(live: LiveDaemon, name: str) -> list[tuple[Any, ...]]:
    out = []
    for v in live.client().get(f"/v1/prompts/{name}").json()["versions"]:
        shown = live.client().get(f"/v1/prompts/{name}/versions/{v['version']}").json()
        out.append((shown["template"], shown["messages"], shown["config"]))
    return out


def test_a_yaml_export_imports_into_another_daemon_with_versions_labels_and_configs(
        live: LiveDaemon, tmp_path: Path) -> None:
    _seed(live)
    out = run(live, "prompts", "export", "--all", "-o", str(tmp_path / "prompts.yaml"))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "prompts.yaml").read_text()
    assert "Be kind.\n" in text and "content: |" in text  # multi-line stays readable
    with live_daemon(tmp_path / "other") as other:
        out = run(other, "prompts", "import", str(tmp_path / "prompts.yaml"))
        assert out.returncode == 0, out.stderr
        assert f"created {CHAT}: v1, v2; production unset -> v1, staging unset -> v2" \
            in out.stdout
        assert _contents(other, CHAT) == _contents(live, CHAT)
        assert _contents(other, TEXT) == _contents(live, TEXT)
        labels = other.client().get(f"/v1/prompts/{CHAT}/labels").json()
        assert {lbl["label"]: lbl["version"] for lbl in labels["labels"]} == {
            "latest": 2, "production": 1, "staging": 2}
        assert labels["protected"] == ["production", "staging"]
        assert all(m["reason"] == "imported from prompts.yaml" for m in labels["history"])
        v2 = other.client().get(f"/v1/prompts/{CHAT}/versions/2").json()
        assert v2["strategy"] == "import" and "model swap" in v2["rationale"]


def test_importing_the_same_file_again_changes_nothing(live: LiveDaemon) -> None:
    _seed(live)
    admin = live.client()
    exported = admin.get("/v1/export").json()
    head = _head(live)
    r = admin.post("/v1/import", json=exported)
    assert r.status_code == 200, r.text
    assert all(p["added"] == [] and p["labels"] == {} for p in r.json()["imported"])
    assert _head(live) == head


def test_an_edited_file_appends_only_the_changed_version_and_moves_labels(
        live: LiveDaemon) -> None:
    _seed(live)
    admin = live.client()
    exported = admin.get("/v1/export", params={"prompt": CHAT}).json()
    entry = exported["prompts"][0]
    edited = dict(entry["versions"][-1], version=3, parent=2, config={"model": "m3"})
    entry["versions"].append(edited)
    entry["labels"] = {"production": 3, "staging": 2}
    r = admin.post("/v1/import", json=exported, params={"source": "git@abc123"})
    assert r.status_code == 200, r.text
    result = r.json()["imported"][0]
    assert result["added"] == [3] and result["versions"] == {"1": 1, "2": 2, "3": 3}
    assert result["labels"] == {"production": {"from": 1, "to": 3}}
    labels = admin.get(f"/v1/prompts/{CHAT}/labels").json()
    assert labels["history"][-1]["previous"] == 1 and labels["history"][-1]["version"] == 3
    assert labels["history"][-1]["reason"] == "imported from git@abc123"
    # v1 and v2 are what they were: nothing is rewritten.
    assert admin.get(f"/v1/prompts/{CHAT}/versions/1").json()["strategy"] == "manual"


def test_a_bad_version_anywhere_in_the_file_stores_nothing_and_names_it(
        live: LiveDaemon) -> None:
    _seed(live)
    admin = live.client()
    exported = admin.get("/v1/export").json()
    exported["prompts"].append({"name": "new/one", "versions": [
        {"version": 1, "template": "fine {{ x }}"},
        {"version": 2, "messages": [{"role": "user", "content": "{% if %}"}]}]})
    head = _head(live)
    r = admin.post("/v1/import", json=exported)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == \
        "prompts[2].versions[1].messages[0].content"
    assert _head(live) == head
    exported["prompts"][-1]["versions"][1] = {"version": 2, "template": "ok"}
    exported["prompts"][-1]["labels"] = {"staging": 7}
    r = admin.post("/v1/import", json=exported)
    assert r.status_code == 422 and "labels.staging" in r.json()["error"]["message"]
    exported["prompts"][-1]["labels"] = {"latest": 1}
    r = admin.post("/v1/import", json=exported)
    assert r.status_code == 422 and "kept by promptd" in r.json()["error"]["message"]
    assert _head(live) == head


def test_import_refuses_yaml_values_json_has_no_type_for(live: LiveDaemon,
                                                         tmp_path: Path) -> None:
    doc = {"format": "promptd.prompts/v1", "prompts": [
        {"name": "a/b", "versions": [{"version": 1, "template": "x"}]}]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc).replace("template: x", "template: 2024-01-01"))
    out = run(live, "prompts", "import", str(path))
    assert out.returncode == 1 and "versions[0].template" in out.stderr
    assert "date is not JSON" in out.stderr
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert run(live, "prompts", "import", str(path)).returncode == 0
