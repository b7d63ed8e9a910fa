"""The HTTP API against a real uvicorn on loopback: every route, its validation and auth."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support import LiveDaemon

AGENT_ROUTES = {
    ("POST", "/v1/events"), ("POST", "/v1/executions"), ("POST", "/v1/corrections"),
    ("GET", "/v1/prompts/{name}/resolve"), ("POST", "/v1/prompts/{name}/render"),
    ("POST", "/v1/traces"),
    # An agent may move an unprotected label (the decision refuses protected ones).
    ("PUT", "/v1/prompts/{name}/labels/{label}"),
}
PUBLIC_ROUTES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
SPINE_ROUTES = {
    ("POST", "/v1/events"), ("POST", "/v1/executions"), ("POST", "/v1/corrections"),
    ("POST", "/v1/prompts"), ("GET", "/v1/prompts"), ("GET", "/v1/prompts/{name}"),
    ("POST", "/v1/prompts/{name}/versions"), ("GET", "/v1/prompts/{name}/versions/{version}"),
    ("GET", "/v1/prompts/{name}/diff"), ("GET", "/v1/prompts/{name}/resolve"),
    ("POST", "/v1/prompts/{name}/render"), ("GET", "/v1/events"), ("GET", "/healthz"),
    ("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/v1/tokens"), ("GET", "/v1/tokens"),
    ("DELETE", "/v1/tokens/{token_id}"), ("GET", "/v1/status"),
}


def _schema_routes(live: LiveDaemon) -> set[tuple[str, str]]:
    schema = httpx.get(f"{live.url}/openapi.json").json()
    return {(m.upper(), p.replace("{name:path}", "{name}")) for p, ops in schema["paths"].items()
            for m in ops}


def _concrete(path: str) -> str:
    return (path.replace("{name}", "support/triage").replace("{version}", "1")
            .replace("{token_id}", "abc").replace("{label}", "staging"))


def _execution(**over: Any) -> dict[str, Any]:
    body = {"type": "execution", "prompt": "support/triage", "version": 1, "success": True,
            "latency_ms": 120.0, "subject": "user-1"}
    body.update(over)
    return body


def _head(live: LiveDaemon) -> int:
    return int(live.client().get("/v1/events", params={"limit": 1}).json()["head"])


def test_every_spine_route_is_in_the_openapi_schema(live: LiveDaemon) -> None:
    missing = SPINE_ROUTES - _schema_routes(live)
    assert not missing, f"routes missing from /openapi.json: {sorted(missing)}"


def test_every_route_but_health_refuses_a_missing_or_wrong_token(live: LiveDaemon) -> None:
    live.create_prompt()
    for method, path in sorted(_schema_routes(live) - PUBLIC_ROUTES):
        url = f"{live.url}{_concrete(path)}"
        for headers in ({}, {"Authorization": "Bearer pd_admin_nothere_xyz"},
                        {"Authorization": "Basic abc"}):
            r = httpx.request(method, url, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert r.json()["error"]["code"] == "unauthorized"


def test_an_agent_token_reaches_agent_routes_but_not_admin_routes(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    for method, path in sorted(_schema_routes(live) - PUBLIC_ROUTES):
        r = agent.request(method, _concrete(path), json={})
        if (method, path) in AGENT_ROUTES:
            assert r.status_code != 403, (method, path)
        else:
            assert r.status_code == 403, (method, path, r.status_code)
            assert "admin" in r.json()["error"]["message"]


def test_health_routes_need_no_token(live: LiveDaemon) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{live.url}/readyz").status_code == 200
    assert "promptd_log_position" in httpx.get(f"{live.url}/metrics").text


def test_a_revoked_token_is_refused(live: LiveDaemon) -> None:
    token = live.issue("agent")
    token_id = token.split("_")[2]
    assert live.client(token).get("/v1/prompts/x/resolve").status_code == 404
    assert live.client().delete(f"/v1/tokens/{token_id}").status_code == 200
    assert live.client(token).get("/v1/prompts/x/resolve").status_code == 401


def test_the_last_admin_token_cannot_be_revoked(live: LiveDaemon) -> None:
    tokens = live.client().get("/v1/tokens").json()["tokens"]
    (admin,) = [t for t in tokens if t["role"] == "admin"]
    r = live.client().delete(f"/v1/tokens/{admin['token_id']}")
    assert r.status_code == 409 and "last active admin" in r.json()["error"]["message"]


def test_batch_ingest_answers_positions_and_duplicates(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    events = [_execution(event_id=f"evt-batch-{i:04d}") for i in range(3)]
    first = agent.post("/v1/events", json={"events": events}).json()
    assert first["stored"] == 3 and first["duplicates"] == 0
    again = agent.post("/v1/events", json={"events": events}).json()
    assert again["stored"] == 0 and again["duplicates"] == 3
    assert [r["position"] for r in again["results"]] == [r["position"] for r in first["results"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [_execution(latency_ms=-5)]}, "events[0].latency_ms"),
        ({"events": [_execution(), _execution(version="two")]}, "events[1].version"),
        ({"events": [_execution(), {"type": "telemetry", "prompt": "x"}]}, "events[1]"),
        ({"events": [_execution(prompt=None)]}, "events[0].prompt"),
        ({"events": [_execution(success=None)]}, "events[0]"),
        ({"events": [_execution(score=1.5)]}, "events[0].score"),
        ({"events": [_execution(surprise=1)]}, "events[0].surprise"),
        ({"events": [{"type": "correction", "prompt": "support/triage", "version": 1}]},
         "events[0].execution_id"),
        ({"events": []}, "events"),
        ({"evts": []}, "events"),
        ({"events": [_execution(prompt="Bad Name!")]}, "events[0].prompt"),
        ({"events": [_execution(prompt="unknown/prompt")]}, "events[0].prompt"),
        ({"events": [_execution(version=7)]}, "events[0].version"),
    ],
)
def test_invalid_batches_are_rejected_whole_naming_the_field(
    live: LiveDaemon, body: dict[str, Any], field: str
) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    before = _head(live)
    r = agent.post("/v1/events", json=body)
    assert r.status_code == 422, r.text
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert field in fields, fields
    assert _head(live) == before  # nothing invalid reached the log


def test_malformed_json_is_a_422_and_nothing_is_stored(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    before = _head(live)
    r = agent.post("/v1/events", content=b'{"events": [', headers={"content-type":
                                                                  "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]["message"]
    assert _head(live) == before


def test_oversized_bodies_get_413_and_the_daemon_keeps_serving(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    huge = {"events": [_execution(input_text="x" * 90_000) for _ in range(20)]}
    r = agent.post("/v1/events", json=huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks() -> Any:  # no content-length: the limit must hold on streamed bodies too
        yield b'{"events": ['
        for _ in range(10_000):
            yield json.dumps(_execution()).encode() + b","
        yield b"]}"

    r = agent.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert agent.post("/v1/events", json={"events": [_execution()]}).status_code == 200


def test_too_many_events_in_one_batch_is_413_naming_the_limit(tmp_path: Any) -> None:
    from tests.support import live_daemon

    with live_daemon(tmp_path, max_batch_events=5) as live:
        live.create_prompt()
        r = live.client().post("/v1/events", json={"events": [_execution()] * 6})
        assert r.status_code == 413 and "at most 5" in r.json()["error"]["message"]


def test_single_event_routes(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    ex = agent.post("/v1/executions", json=_execution(event_id="evt-single-0001")).json()
    assert ex["position"] > 0 and not ex["duplicate"]
    corr = agent.post("/v1/corrections", json={
        "execution_id": "evt-single-0001", "prompt": "support/triage", "version": 1,
        "category": "format", "reason": "date not ISO", "corrected_output": "2024-01-02",
    })
    assert corr.status_code == 200 and corr.json()["position"] == ex["position"] + 1
    bad = agent.post("/v1/corrections", json={"prompt": "support/triage", "version": 1})
    assert bad.status_code == 422
    shown = live.client().get("/v1/prompts/support/triage").json()
    counts = shown["versions"][0]["counts"]
    assert counts["executions"] == 1 and counts["corrections"] == 1


def test_prompt_lifecycle_create_version_diff_resolve_render(live: LiveDaemon) -> None:
    admin = live.client()
    r = admin.post("/v1/prompts", json={"name": "support/triage",
                                         "template": "Hi {{ customer }}.\nTriage {{ ticket }}."})
    assert r.status_code == 201 and r.json()["labels"] == {"production": 1, "latest": 1}
    assert admin.post("/v1/prompts", json={"name": "support/triage",
                                            "template": "x"}).status_code == 409
    v2 = admin.post("/v1/prompts/support/triage/versions", json={
        "template": "Hi {{ customer }}.\nTriage {{ ticket }} politely.", "rationale": "tone"})
    assert v2.status_code == 201 and v2.json()["version"] == 2 and v2.json()["parent"] == 1
    assert admin.get("/v1/prompts/support/triage/versions/2").json()["rationale"] == "tone"
    diff = admin.get("/v1/prompts/support/triage/diff", params={"from": 1, "to": 2}).json()
    assert "-Triage {{ ticket }}." in diff["diff"] and "+Triage {{ ticket }} politely." in diff[
        "diff"]
    agent = live.client(live.issue("agent"))
    resolved = agent.get("/v1/prompts/support/triage/resolve", params={"subject": "u1"}).json()
    assert resolved["version"] == 1 and resolved["variables"] == ["customer", "ticket"]
    assert resolved["deployment"] is None and resolved["arm"] is None
    admin.post("/v1/prompts/support/triage/versions", json={
        "template": "v3 {{ customer }} {{ ticket }}", "make_production": True})
    assert agent.get("/v1/prompts/support/triage/resolve").json()["version"] == 3
    rendered = agent.post("/v1/prompts/support/triage/render", json={
        "variables": {"customer": "Ada", "ticket": "T-1"}, "version": 1}).json()
    assert rendered["text"] == "Hi Ada.\nTriage T-1."
    listed = admin.get("/v1/prompts").json()["prompts"]
    assert [p["name"] for p in listed] == ["support/triage"]


def test_render_names_the_missing_variable(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    r = agent.post("/v1/prompts/support/triage/render", json={"variables": {"ticket": "T"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "variables.customer"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/prompts/nope/resolve", None),
        ("POST", "/v1/prompts/nope/render", {"variables": {}}),
        ("GET", "/v1/prompts/nope", None),
        ("GET", "/v1/prompts/support/triage/versions/9", None),
        ("POST", "/v1/prompts/nope/versions", {"template": "x"}),
        ("GET", "/v1/prompts/support/triage/diff?from=1&to=9", None),
        ("DELETE", "/v1/tokens/nothere", None),
    ],
)
def test_unknown_things_are_404_naming_them(live: LiveDaemon, method: str, path: str,
                                             body: Any) -> None:
    live.create_prompt()
    r = live.client().request(method, path, json=body)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert "nope" in r.text or "9" in r.text or "nothere" in r.text


def test_a_template_that_does_not_parse_or_escapes_the_sandbox_is_refused(
    live: LiveDaemon,
) -> None:
    admin = live.client()
    for template in ("Hello {{ name ", "{{ ''.__class__.__mro__[1].__subclasses__() }}"):
        r = admin.post("/v1/prompts", json={"name": "bad", "template": template})
        assert r.status_code == 422, template
        assert r.json()["error"]["details"][0]["field"] == "template"
    assert admin.get("/v1/prompts").json()["prompts"] == []


def test_tail_the_log_by_position(live: LiveDaemon) -> None:
    live.create_prompt()
    page = live.client().get("/v1/events", params={"after": 1, "limit": 2}).json()
    assert [e["position"] for e in page["events"]] == [2, 3]
    assert page["next_after"] == 3
    types = [e["type"] for e in live.client().get("/v1/events").json()["events"]]
    assert types[:4] == ["token.issued", "prompt.created", "version.created", "label.moved"]
    assert live.client().get("/v1/events", params={"limit": 0}).status_code == 422


def test_tokens_never_appear_in_the_log_or_the_token_list(live: LiveDaemon) -> None:
    token = live.issue("agent")
    everything = live.client().get("/v1/events", params={"limit": 1000}).text
    assert token not in everything and live.admin_token not in everything
    assert token not in live.client().get("/v1/tokens").text


def test_rejections_are_counted_by_type(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    agent.post("/v1/events", json={"events": [_execution(latency_ms=-1)]})
    agent.post("/v1/events", json={"events": [_execution()]})
    text = httpx.get(f"{live.url}/metrics").text
    assert 'promptd_events_ingested_total{result="rejected",type="execution"} 1.0' in text
    assert 'promptd_events_ingested_total{result="stored",type="execution"} 1.0' in text
