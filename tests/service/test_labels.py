"""Labels beyond production: set, protect, resolve by label, audit trail, refusals."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.service.test_cli import run
from tests.support import LiveDaemon

NAME = "support/triage"


def _with_versions(live: LiveDaemon, n: int = 3) -> None:
    live.create_prompt(NAME, "v1 {{ ticket }}")
    for i in range(2, n + 1):
        live.client().post(f"/v1/prompts/{NAME}/versions",
                           json={"template": f"v{i} {{{{ ticket }}}}"}).raise_for_status()


def _set(client: Any, label: str, version: int, **body: Any) -> Any:
    return client.put(f"/v1/prompts/{NAME}/labels/{label}", json={"version": version, **body})


def _head(live: LiveDaemon) -> int:
    return int(live.client().get("/v1/events", params={"limit": 1}).json()["head"])


def test_resolve_by_label_serves_that_version_and_latest_follows_new_versions(
        live: LiveDaemon) -> None:
    _with_versions(live)
    admin = live.client()
    assert _set(admin, "staging", 2).json()["changed"] is True
    agent = live.client(live.issue("agent"))

    def resolved(label: str) -> int:
        return int(agent.get(f"/v1/prompts/{NAME}/resolve", params={"label": label})
                   .json()["version"])

    assert (resolved("production"), resolved("staging"), resolved("latest")) == (1, 2, 3)
    admin.post(f"/v1/prompts/{NAME}/versions", json={"template": "v4 {{ ticket }}"})
    assert resolved("latest") == 4 and resolved("staging") == 2
    missing = agent.get(f"/v1/prompts/{NAME}/resolve", params={"label": "canary-eu"})
    assert missing.status_code == 404


def test_canaries_run_only_on_production(live: LiveDaemon) -> None:
    _with_versions(live)
    admin = live.client()
    _set(admin, "staging", 1).raise_for_status()
    admin.post("/v1/deployments", json={"prompt": NAME, "versions": [2],
                                        "steps": [50, 100]}).raise_for_status()
    agent = live.client(live.issue("agent"))
    arms = {agent.get(f"/v1/prompts/{NAME}/resolve",
                      params={"subject": f"u{i}", "label": label}).json()["arm"]
            for i in range(40) for label in ("staging",)}
    assert arms == {None}  # staging is never split
    production = {agent.get(f"/v1/prompts/{NAME}/resolve", params={"subject": f"u{i}"})
                  .json()["arm"] for i in range(40)}
    assert production == {"control", "c1"}


def test_an_agent_moves_an_unprotected_label_but_never_a_protected_one(
        live: LiveDaemon) -> None:
    _with_versions(live)
    agent = live.client(live.issue("agent"))
    assert _set(agent, "staging", 2).status_code == 200
    head = _head(live)
    r = _set(agent, "production", 2)
    assert r.status_code == 403 and r.json()["error"]["details"][0]["field"] == "label"
    admin = live.client()
    admin.post(f"/v1/prompts/{NAME}/labels/staging/protect", json={}).raise_for_status()
    r = _set(agent, "staging", 3)
    assert r.status_code == 403
    assert _head(live) == head + 1  # only the admin's protection was appended
    assert _set(admin, "staging", 3).json()["changed"] is True  # an admin still moves it
    admin.post(f"/v1/prompts/{NAME}/labels/staging/protect",
               json={"protected": False}).raise_for_status()
    assert _set(agent, "staging", 1).status_code == 200


@pytest.mark.parametrize(("label", "why"), [
    ("latest", "kept by promptd"), ("versions", "reserved"), ("history", "reserved"),
    ("Staging", "lowercase"), ("2", "starting with a letter"), ("a" * 70, "64"),
    ("staging%0A", "lowercase"),  # a trailing newline: "$" alone would take it
])
def test_reserved_and_malformed_label_names_are_refused_naming_the_label(
        live: LiveDaemon, label: str, why: str) -> None:
    _with_versions(live, 2)
    head = _head(live)
    r = _set(live.client(), label, 2)
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["field"] == "label" and why in detail["message"]
    assert _head(live) == head


def test_from_refuses_a_move_when_the_label_moved_since_and_says_who(
        live: LiveDaemon) -> None:
    _with_versions(live)
    admin = live.client()
    assert _set(admin, "staging", 1, **{"from": 0}).json()["changed"] is True
    _set(admin, "staging", 2, reason="tested OK").raise_for_status()  # someone else
    head = _head(live)
    r = _set(admin, "staging", 3, **{"from": 1})
    assert r.status_code == 409
    assert "is v2, not v1" in r.json()["error"]["message"]
    assert _head(live) == head
    # A retry of a move that landed changes nothing, whatever it expected.
    again = _set(admin, "staging", 2, **{"from": 1})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert _head(live) == head


def test_concurrent_moves_with_the_same_from_land_exactly_once(live: LiveDaemon) -> None:
    _with_versions(live, 4)
    admin = live.client()
    _set(admin, "staging", 1).raise_for_status()
    results: list[int] = []

    def move(version: int) -> None:
        results.append(_set(live.client(), "staging", version, **{"from": 1}).status_code)

    threads = [threading.Thread(target=move, args=(v,)) for v in (2, 3, 4) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = admin.get(f"/v1/prompts/{NAME}/labels", params={"label": "staging"}).json()
    moves = [m for m in history["history"] if m["previous"] == 1]
    assert len(moves) == 1  # one winner moved it from v1; every other saw it had moved
    winner = moves[0]["version"]
    assert results.count(200) == 3 and results.count(409) == 6  # the winner's twins: no-ops
    assert history["labels"][0]["version"] == winner


def test_production_does_not_move_by_label_set_while_a_canary_runs(live: LiveDaemon) -> None:
    _with_versions(live)
    admin = live.client()
    admin.post("/v1/deployments", json={"prompt": NAME, "versions": [2]}).raise_for_status()
    r = _set(admin, "production", 3)
    assert r.status_code == 409 and "deployment" in r.json()["error"]["message"]


def test_label_history_tells_who_moved_which_label_from_which_to_which_and_why(
        live: LiveDaemon) -> None:
    _with_versions(live)
    admin = live.client()
    agent_token = live.issue("agent")
    _set(live.client(agent_token), "staging", 2, reason="QA passed").raise_for_status()
    _set(admin, "production", 3, reason="ship it").raise_for_status()
    admin.post(f"/v1/prompts/{NAME}/rollback", json={}).raise_for_status()
    got = admin.get(f"/v1/prompts/{NAME}/labels").json()
    moves = [(m["label"], m["previous"], m["version"], m["kind"], m["reason"])
             for m in got["history"]]
    assert moves == [("production", None, 1, "set", "prompt created"),
                     ("staging", None, 2, "set", "QA passed"),
                     ("production", 1, 3, "set", "ship it"),
                     ("production", 3, 1, "rollback", "manual rollback to v1")]
    actors = [m["actor"] for m in got["history"]]
    assert actors[1] != actors[2] and all(a.startswith("token:") for a in actors)
    labels = {lbl["label"]: (lbl["version"], lbl["protected"]) for lbl in got["labels"]}
    assert labels == {"latest": (3, False), "production": (1, True), "staging": (2, False)}
    history = json.loads(run(live, "history", NAME, "--json").stdout)["history"]
    moved = [h for h in history if h["type"] == "label.moved"]
    assert [(h["label"], h.get("previous"), h["version"], h["kind"]) for h in moved] == [
        (m[0], m[1], m[2], m[3]) for m in moves]
    table = run(live, "history", NAME).stdout
    assert "label=staging" in table and "kind=rollback" in table and "previous=3" in table


def test_label_cli_sets_lists_protects_and_shows_history(live: LiveDaemon) -> None:
    _with_versions(live)
    out = run(live, "label", "set", NAME, "staging", "2", "--reason", "QA")
    assert out.returncode == 0 and "staging unset -> v2" in out.stdout, out.stderr
    out = run(live, "label", "set", NAME, "staging", "3", "--from", "1")
    assert out.returncode == 1 and "409" in out.stderr and "is v2, not v1" in out.stderr
    out = run(live, "label", "protect", NAME, "staging")
    assert out.returncode == 0 and "staging is protected" in out.stdout
    agent = live.issue("agent")
    out = run(live, "label", "set", NAME, "staging", "3", token=agent)
    assert out.returncode == 1 and "403" in out.stderr and "protected" in out.stderr
    listed = run(live, "label", "list", NAME).stdout
    assert "staging" in listed and "protected" in listed and "latest" in listed
    history = run(live, "label", "history", NAME, "staging").stdout
    assert "unset" not in history and "- -> v2" in history and "QA" in history
