"""Input a real ``promptd serve`` must refuse with a 4xx naming the field, storing nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.contract.ids import uuid7
from tests.support import DaemonProcess, start_process

PROMPT, OTHER = "support/triage", "sales/reply"
MAX_AGE_S = 2 * 86_400  # configured below the 30-day default: the window is a setting


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One ``promptd serve`` for the module, with two prompts."""
    proc = start_process(tmp_path_factory.mktemp("bad-input"),
                         extra_env={"PROMPTD_OCCURRED_AT_MAX_AGE_S": str(MAX_AGE_S)})
    try:
        with _client(proc, proc.admin_token) as admin:
            for name in (PROMPT, OTHER):
                admin.post("/v1/prompts", json={"name": name, "template": "Hi {{ x }}"}
                           ).raise_for_status()
        yield proc
    finally:
        proc.terminate()


def _client(proc: DaemonProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=proc.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def admin(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    """An admin client of the module's daemon."""
    with _client(daemon, daemon.admin_token) as client:
        yield client


@pytest.fixture(scope="module")
def agent(daemon: DaemonProcess, admin: httpx.Client) -> Iterator[httpx.Client]:
    """An agent client of the module's daemon."""
    token = admin.post("/v1/tokens", json={"role": "agent", "name": "t"}).json()["token"]
    with _client(daemon, token) as client:
        yield client


def _execution(event_id: str, prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {"type": "execution", "event_id": event_id, "prompt": prompt, "version": 1,
            "success": False, **extra}


def _correction(execution_id: str, prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {"type": "correction", "event_id": uuid7(), "execution_id": execution_id,
            "prompt": prompt, "version": 1, "category": "tone", **extra}


def _head(admin: httpx.Client) -> int:
    return int(admin.get("/v1/events", params={"limit": 1}).json()["head"])


def _refused(response: httpx.Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


def test_a_correction_must_follow_an_execution_of_its_own_prompt(
    agent: httpx.Client, admin: httpx.Client,
) -> None:
    theirs, kept = uuid7(), uuid7()
    assert agent.post("/v1/executions", json=_execution(theirs, OTHER)).status_code == 200
    head = _head(admin)
    fields = _refused(agent.post("/v1/corrections", json=_correction(uuid7())), 422)
    assert fields == ["execution_id"]
    # Another prompt's execution, a correction instead of an execution, and an execution
    # that comes only later in the same batch: each refused, naming its place.
    a_correction = _correction(theirs, OTHER)
    assert agent.post("/v1/corrections", json=a_correction).status_code == 200
    head = _head(admin)
    for batch, index in (
        ([_execution(uuid7()), _correction(theirs)], 1),
        ([_correction(a_correction["event_id"], OTHER)], 0),
        ([_correction(kept), _execution(kept)], 0),
    ):
        r = agent.post("/v1/events", json={"events": batch})
        assert _refused(r, 422) == [f"events[{index}].execution_id"], r.text
    assert _head(admin) == head  # atomic: the valid events of those batches are not stored
    # Its execution first, in the same batch: accepted.
    r = agent.post("/v1/events", json={"events": [_execution(kept), _correction(kept)]})
    assert r.status_code == 200 and r.json()["stored"] == 2, r.text


def test_a_known_event_id_with_another_payload_is_a_409_naming_where_it_is(
    agent: httpx.Client, admin: httpx.Client,
) -> None:
    event_id = uuid7()
    first = agent.post("/v1/executions", json=_execution(event_id, latency_ms=12.0))
    position = first.json()["position"]
    again = agent.post("/v1/executions", json=_execution(event_id, latency_ms=12.0))
    assert again.status_code == 200 and again.json() == {
        "event_id": event_id, "position": position, "duplicate": True}
    head = _head(admin)
    changed = agent.post("/v1/events", json={"events": [
        _execution(uuid7()), _execution(event_id, latency_ms=99.0)]})
    assert _refused(changed, 409) == ["events[1].event_id"]
    assert f"position {position}" in changed.json()["error"]["message"]
    assert _head(admin) == head


@pytest.mark.parametrize(("raw", "field"), [
    ('{"metadata": {"cost": 1e400}}', "metadata"),
    ('{"metadata": {"nested": [1, {"x": -1e999}]}}', "metadata"),
    ('{"variables": {"v": NaN}}', "variables"),
    ('{"latency_ms": Infinity}', "latency_ms"),
])
def test_a_non_finite_number_anywhere_in_an_event_is_a_422(
    agent: httpx.Client, admin: httpx.Client, raw: str, field: str,
) -> None:
    body = json.dumps(_execution(uuid7()))[:-1] + ", " + raw[1:]
    head = _head(admin)
    for path, content, named in (
        ("/v1/executions", body, field),
        ("/v1/events", '{"events": [' + body + "]}", f"events[0].{field}"),
    ):
        r = agent.post(path, content=content, headers={"Content-Type": "application/json"})
        assert named in _refused(r, 422), r.text
    assert _head(admin) == head


def test_occurred_at_outside_the_configured_window_is_a_422(
    agent: httpx.Client, admin: httpx.Client,
) -> None:
    now = datetime.now(UTC)
    head = _head(admin)
    for moment in ("0001-01-01T00:00:00Z", (now + timedelta(minutes=10)).isoformat(),
                   (now - timedelta(seconds=MAX_AGE_S + 3600)).isoformat(),
                   "9999-12-31T00:00:00"):
        r = agent.post("/v1/executions", json=_execution(uuid7(), occurred_at=moment))
        assert _refused(r, 422) == ["occurred_at"], (moment, r.text)
    assert _head(admin) == head
    for moment in ((now - timedelta(seconds=MAX_AGE_S - 3600)).isoformat(),
                   (now + timedelta(minutes=1)).isoformat()):
        r = agent.post("/v1/executions", json=_execution(uuid7(), occurred_at=moment))
        assert r.status_code == 200, (moment, r.text)


@pytest.mark.parametrize("name", ["x/resolve", "y/versions/1", "z/history", "a/b/policy",
                                  "w/diff", "triage\n", "triage ", "c/candidates"])
def test_a_prompt_name_its_own_routes_would_shadow_is_a_422(
    admin: httpx.Client, agent: httpx.Client, name: str,
) -> None:
    r = admin.post("/v1/prompts", json={"name": name, "template": "Hi"})
    assert _refused(r, 422) == ["name"], r.text
    r = agent.post("/v1/executions", json=_execution(uuid7(), name))
    assert _refused(r, 422) == ["prompt"], r.text


def test_route_words_inside_a_name_are_fine(admin: httpx.Client) -> None:
    r = admin.post("/v1/prompts", json={"name": "resolve/history-bot", "template": "Hi"})
    assert r.status_code == 201, r.text
    assert admin.get("/v1/prompts/resolve/history-bot").json()["name"] == "resolve/history-bot"
