"""Ingest parses the raw body once: NULs are still refused, defaults are not stored."""

from __future__ import annotations

import json

from service.projections.failures import load_failures
from tests.support import LiveDaemon


def _stored_payloads(live: LiveDaemon) -> list[dict[str, object]]:
    page = live.client().get("/v1/events", params={"type": ["execution", "correction"],
                                                   "limit": 100}).json()
    return [e["payload"] for e in page["events"]]


def test_a_nul_escape_is_refused_on_every_path(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    clean = {"type": "execution", "prompt": "support/triage", "version": 1, "success": True}
    # The first request of a route goes through FastAPI; later ones through RequestGuard's
    # shortcut, which validates the raw text and skips the NUL check without a \u0000 escape.
    assert agent.post("/v1/executions", json=clean).status_code == 200
    assert agent.post("/v1/executions", json=clean).status_code == 200
    for path, body in (("/v1/executions", {**clean, "arm": "c1\x00"}),
                       ("/v1/events", {"events": [clean, {**clean, "model": "m\x00"}]})):
        text = json.dumps(body)
        assert "\\u0000" in text
        for _ in range(2):
            r = agent.post(path, content=text, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, r.text
            assert "NUL" in r.text
    assert len(_stored_payloads(live)) == 2  # the two clean ones only


def test_absent_optional_fields_and_defaults_are_not_stored(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    r = agent.post("/v1/events", json={"events": [
        {"type": "execution", "event_id": "evt-defaults-1", "prompt": "support/triage",
         "version": 1, "success": False, "metadata": {}},
        {"type": "correction", "execution_id": "evt-defaults-1", "prompt": "support/triage",
         "version": 1, "category": "format", "severity": "medium", "reason": ""}]})
    assert r.status_code == 200, r.text
    execution, correction = _stored_payloads(live)
    assert execution == {"prompt": "support/triage", "version": 1, "success": False,
                         "schema_version": 1}
    assert correction == {"execution_id": "evt-defaults-1", "prompt": "support/triage",
                          "version": 1, "category": "format", "schema_version": 1}
    # Readers take the missing keys as their defaults: the failure record has medium weight.
    with live.daemon.engine.connect() as conn:
        records = load_failures(conn, "support/triage", since=0.0)
    assert [(r.kind, r.severity) for r in records] == [("failure", 1.0), ("correction", 2.0)]
