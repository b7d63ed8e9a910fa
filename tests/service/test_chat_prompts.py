"""Chat prompts and model configs through the HTTP API: create, resolve, render, diff, refuse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import LiveDaemon

NAME = "support/chat"
MESSAGES = [
    {"role": "system", "content": "You are ACME's support agent. Tone: {{ tone }}."},
    {"role": "placeholder", "name": "history"},
    {"role": "user", "content": "{{ question }}"},
]
CONFIG = {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 300,
          "response_format": {"type": "json_object"}}


def _create(live: LiveDaemon, **over: Any) -> Any:
    body = {"name": NAME, "messages": MESSAGES, "config": CONFIG, **over}
    return live.client().post("/v1/prompts", json=body)


def _head(live: LiveDaemon) -> int:
    return int(live.client().get("/v1/events", params={"limit": 1}).json()["head"])


def test_a_chat_prompt_resolves_to_its_messages_and_config(live: LiveDaemon) -> None:
    assert _create(live).status_code == 201
    agent = live.client(live.issue("agent"))
    got = agent.get(f"/v1/prompts/{NAME}/resolve").json()
    assert got["messages"] == MESSAGES and got["config"] == CONFIG
    assert got["template"] == "" and got["variables"] == ["question", "tone"]
    shown = live.client().get(f"/v1/prompts/{NAME}/versions/1").json()
    assert shown["messages"] == MESSAGES and shown["config"] == CONFIG


def test_a_text_prompt_still_resolves_with_no_messages(live: LiveDaemon) -> None:
    live.create_prompt()
    got = live.client().get("/v1/prompts/support/triage/resolve").json()
    assert got["messages"] is None and got["config"] is None
    assert "{{ ticket }}" in got["template"]


def test_render_fills_variables_and_inserts_the_history_unrendered(live: LiveDaemon) -> None:
    _create(live)
    history = [{"role": "user", "content": "my order {{ is late }}"},
               {"role": "assistant", "content": "Sorry to hear that."}]
    r = live.client(live.issue("agent")).post(f"/v1/prompts/{NAME}/render", json={
        "variables": {"tone": "warm", "question": "Where is it?", "history": history}})
    assert r.status_code == 200, r.text
    assert r.json()["messages"] == [
        {"role": "system", "content": "You are ACME's support agent. Tone: warm."},
        *history,  # data, not a template: its braces stay as the user typed them
        {"role": "user", "content": "Where is it?"}]


def test_render_without_the_history_names_the_placeholder(live: LiveDaemon) -> None:
    _create(live)
    r = live.client().post(f"/v1/prompts/{NAME}/render",
                           json={"variables": {"tone": "warm", "question": "q"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "variables.history"


@pytest.mark.parametrize(("messages", "config", "field"), [
    ([{"role": "wizard", "content": "x"}], None, "messages[0].role"),
    ([{"role": "system", "content": "  "}], None, "messages[0].content"),
    ([{"role": "user", "content": "ok"}, {"role": "user", "content": "{{ broken"}], None,
     "messages[1].content"),
    ([{"role": "user", "content": "{{ x.__class__ }}"}], None, "messages[0].content"),
    ([{"role": "placeholder"}, {"role": "user", "content": "x"}], None, "messages[0]"),
    ([{"role": "placeholder", "name": "q"}, {"role": "user", "content": "{{ q }}"}], None,
     "messages[0].name"),
    ([{"role": "user", "content": "x"}], {"blob": "x" * 20_000}, "config"),
    ([{"role": "user", "content": "x"}], ["not", "an", "object"], "config"),
])
def test_bad_chat_input_is_a_422_naming_the_field_and_stores_nothing(
        live: LiveDaemon, messages: Any, config: Any, field: str) -> None:
    head = _head(live)
    r = live.client().post("/v1/prompts", json={"name": NAME, "messages": messages,
                                                "config": config})
    assert r.status_code == 422, r.text
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert field in fields, fields
    assert _head(live) == head


def test_a_config_with_nan_is_refused_as_not_json(live: LiveDaemon) -> None:
    head = _head(live)
    raw = '{"name": "support/chat", "template": "x", "config": {"temperature": NaN}}'
    r = live.client().post("/v1/prompts", content=raw,
                           headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert any(d["field"] == "config" for d in r.json()["error"]["details"])
    assert _head(live) == head


def test_template_and_messages_together_are_refused(live: LiveDaemon) -> None:
    r = _create(live, template="hello")
    assert r.status_code == 422
    assert "either template" in r.json()["error"]["message"]


def test_diff_shows_the_changed_message_and_config_keys(live: LiveDaemon) -> None:
    _create(live)
    admin = live.client()
    changed = [dict(MESSAGES[0], content=MESSAGES[0]["content"] + " Cite the policy."),
               *MESSAGES[1:]]
    r = admin.post(f"/v1/prompts/{NAME}/versions",
                   json={"messages": changed, "config": {**CONFIG, "temperature": 0.0}})
    assert r.status_code == 201, r.text
    diff = admin.get(f"/v1/prompts/{NAME}/diff", params={"from": 1, "to": 2}).json()
    assert diff["changed"] == ["messages[0] (system)", "config.temperature"]
    assert "+[system]" not in diff["diff"] and "Cite the policy." in diff["diff"]
    assert '-  "temperature": 0.2' in diff["diff"] and '+  "temperature": 0.0' in diff["diff"]


def test_a_text_version_may_follow_a_chat_version(live: LiveDaemon) -> None:
    _create(live)
    admin = live.client()
    r = admin.post(f"/v1/prompts/{NAME}/versions", json={"template": "Answer {{ question }}"})
    assert r.status_code == 201
    diff = admin.get(f"/v1/prompts/{NAME}/diff", params={"from": 1, "to": 2}).json()
    assert diff["changed"] == ["messages became a text template", "config.max_tokens",
                               "config.model", "config.response_format", "config.temperature"]
