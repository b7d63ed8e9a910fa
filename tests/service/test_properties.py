"""Properties of the event contract and of idempotent ingest, checked with Hypothesis.

The contract properties run on the pydantic models alone (microseconds per example). The
ingest properties run against one real daemon on loopback for the module; every example uses
event ids of its own, so examples never see each other's events.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.contract import (
    MAX_TEXT,
    MAX_VERSION,
    PROMPT_NAME_RE,
    SCHEMA_VERSION,
    CorrectionIn,
    EventBatch,
    ExecutionIn,
    payload_of,
)
from service.contract.fields import ROUTE_SUFFIXES
from service.http.errors import validation_details
from tests.support import LiveDaemon, live_daemon

PROMPT = "support/triage"
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)
# Each ingest example makes a handful of durable (fsync'd) requests.
LIVE = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- strategies ---------------------------------------------------------------------------------

# JSON text cannot carry lone surrogates, and the contract refuses NUL.
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=40)
prompt_names = st.from_regex(PROMPT_NAME_RE, fullmatch=True).filter(
    lambda s: len(s) <= 128 and s.split("/")[-1] not in ROUTE_SUFFIXES
    and "/versions/" not in f"/{s}".rsplit("/", 1)[0] + "/")
event_ids = st.from_regex(r"[A-Za-z0-9_.:-]{8,64}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
versions = st.integers(1, MAX_VERSION)


any_moment = st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)


@st.composite
def executions(draw: st.DrawFn, prompt: st.SearchStrategy[str] = prompt_names,
               version: st.SearchStrategy[int] = versions,
               occurred_at: st.SearchStrategy[str] = any_moment) -> dict[str, Any]:
    """Draw a valid execution body: every optional field either absent or within its rule."""
    body: dict[str, Any] = {"type": "execution", "prompt": draw(prompt), "version": draw(version)}
    outcome = draw(st.sets(st.sampled_from(["success", "score", "error_type"]), min_size=1))
    optional: dict[str, st.SearchStrategy[Any]] = {
        "event_id": event_ids,
        "deployment": text, "arm": st.sampled_from(["control", "c1", "c2", "c3"]),
        "step": st.integers(0, 100), "subject": text,
        "latency_ms": st.floats(0, 86_400_000), "input_tokens": st.integers(0, 10_000_000),
        "output_tokens": st.integers(0, 10_000_000), "cost_usd": st.floats(0, 1_000_000),
        "model": text, "input_text": text, "output_text": text,
        "variables": st.dictionaries(text, json_values, max_size=4),
        "metadata": st.dictionaries(text, json_values, max_size=4),
        "occurred_at": occurred_at,
    }
    outcomes: dict[str, st.SearchStrategy[Any]] = {
        "success": st.booleans(), "score": st.floats(0, 1), "error_type": text}
    for name in outcome:
        body[name] = draw(outcomes[name])
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        body[name] = draw(optional[name])
    return body


@st.composite
def corrections(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a valid correction body."""
    body: dict[str, Any] = {
        "type": "correction", "execution_id": draw(event_ids), "prompt": draw(prompt_names),
        "version": draw(versions),
        "category": draw(text.filter(bool)),
        "severity": draw(st.sampled_from(["low", "medium", "high", "critical"])),
    }
    for name in draw(st.sets(st.sampled_from(["reason", "original_output", "corrected_output",
                                               "author"]))):
        body[name] = draw(text)
    return body


# One way to break each rule, and the field the refusal must name.
BREAKS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("prompt", st.sampled_from(["", "Support/Triage", "/lead", "a//b", "a b", "x" * 129,
                                "ümlaut", "x\n", "x ", "x/resolve", "y/versions/1",
                                "z/history", "w/policy"])),
    ("version", st.sampled_from([0, -1, MAX_VERSION + 1, 2**63, "two", 1.5, None])),
    ("latency_ms", st.sampled_from([-0.001, 86_400_001.0, math.inf, math.nan, "fast"])),
    ("score", st.sampled_from([-0.1, 1.0001, math.nan, math.inf])),
    ("cost_usd", st.sampled_from([-1.0, 1e7, math.inf])),
    ("input_tokens", st.sampled_from([-1, 10_000_001, 0.5])),
    ("step", st.sampled_from([-1, 101])),
    ("event_id", st.sampled_from(["short", "has space in it", "x" * 65, "semi;colon!"])),
    ("subject", st.just("s" * 201)),
    ("arm", text.map(lambda t: t + "\x00")),
    ("output_text", st.just("y" * (MAX_TEXT + 1))),
    ("metadata", st.just({str(i): i for i in range(65)})),
    ("metadata", st.sampled_from([{"x": math.inf}, {"x": [1.0, {"y": -math.inf}]},
                                  {"x": math.nan}])),
    ("variables", st.just({"v": {"w": math.inf}})),
    ("unexpected_field", st.just(1)),
]


# -- contract properties (pure) -------------------------------------------------------------------


@FAST
@given(body=executions())
def test_every_valid_execution_is_accepted_and_its_log_payload_reads_back_equal(
    body: dict[str, Any],
) -> None:
    event = ExecutionIn.model_validate(body)
    payload = payload_of(event)
    assert payload["schema_version"] == SCHEMA_VERSION
    wire = json.loads(json.dumps(payload, allow_nan=False))  # the log stores JSON text
    wire.pop("schema_version")
    again = ExecutionIn.model_validate({**wire, "event_id": event.event_id})
    assert again == event


@FAST
@given(body=corrections())
def test_every_valid_correction_is_accepted_and_its_log_payload_reads_back_equal(
    body: dict[str, Any],
) -> None:
    event = CorrectionIn.model_validate(body)
    wire = json.loads(json.dumps(payload_of(event), allow_nan=False))
    wire.pop("schema_version")
    assert CorrectionIn.model_validate({**wire, "event_id": event.event_id}) == event


@FAST
@given(body=executions(), broken=st.sampled_from(BREAKS).flatmap(
    lambda b: st.tuples(st.just(b[0]), b[1])))
def test_an_execution_breaking_any_one_rule_is_refused_naming_that_field(
    body: dict[str, Any], broken: tuple[str, Any],
) -> None:
    field, value = broken
    with pytest.raises(ValidationError) as caught:
        ExecutionIn.model_validate({**body, field: value})
    named = validation_details(caught.value.errors())
    # Field validators put the name in the location; model validators (NUL) in the message.
    assert any(field in d["field"] or field in d["message"] for d in named), named


@FAST
@given(body=executions())
def test_an_execution_without_any_outcome_is_refused(body: dict[str, Any]) -> None:
    bare = {k: v for k, v in body.items() if k not in ("success", "score", "error_type")}
    with pytest.raises(ValidationError, match="needs an outcome"):
        ExecutionIn.model_validate(bare)


@FAST
@given(events=st.lists(executions() | corrections(), min_size=1, max_size=3), data=st.data())
def test_one_invalid_event_makes_the_whole_batch_invalid_naming_its_index(
    events: list[dict[str, Any]], data: st.DataObject,
) -> None:
    assert EventBatch.model_validate({"events": events})
    index = data.draw(st.integers(0, len(events) - 1))
    bad = {**events[index], "version": 0}
    broken = [*events[:index], bad, *events[index + 1:]]
    with pytest.raises(ValidationError) as caught:
        EventBatch.model_validate({"events": broken})
    fields = [d["field"] for d in validation_details(caught.value.errors())]
    assert fields == [f"events[{index}].version"]


# -- ingest properties (a live daemon) ------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """One daemon for the module, with the prompt every ingest example reports against."""
    with live_daemon(tmp_path_factory.mktemp("properties")) as live:
        live.create_prompt(PROMPT)
        yield live


@pytest.fixture(scope="module")
def agent(daemon: LiveDaemon) -> httpx.Client:
    """An agent-token client of the module's daemon."""
    return daemon.client(daemon.issue("agent"))


def _log_of(admin: httpx.Client, after: int) -> list[dict[str, Any]]:
    """Return every event after a position."""
    return list(admin.get("/v1/events", params={"after": after, "limit": 10_000}).json()["events"])


def _head(admin: httpx.Client) -> int:
    return int(admin.get("/v1/events", params={"limit": 1}).json()["head"])


# The daemon takes occurred_at within 30 days back and 5 minutes ahead of its clock.
recent = st.floats(-29 * 86_400.0, 60.0).map(
    lambda offset: datetime.fromtimestamp(time.time() + offset, UTC).isoformat())
live_execution = executions(prompt=st.just(PROMPT), version=st.just(1), occurred_at=recent)

# Batches as lists of indices into a small pool of ids, so the same id recurs across batches,
# within a batch, and in retries of a whole batch.
batches = st.lists(
    st.tuples(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.booleans()),
    min_size=1, max_size=5,
)


@LIVE
@given(plan=batches, body=live_execution)
def test_ingest_stores_each_event_id_once_whatever_the_retries_and_repeats(
    daemon: LiveDaemon, agent: httpx.Client, plan: list[tuple[list[int], bool]],
    body: dict[str, Any],
) -> None:
    prefix = uuid.uuid4().hex[:12]
    admin = daemon.client()
    start = _head(admin)
    first_position: dict[str, int] = {}
    for indices, retried in plan:
        # An id always comes with the same event (a retry), wherever it recurs.
        events = [{**body, "event_id": f"{prefix}-{i}", "latency_ms": float(i)}
                  for i in indices]
        for _ in range(2 if retried else 1):
            r = agent.post("/v1/events", json={"events": events})
            assert r.status_code == 200, r.text
            answer = r.json()
            new = 0
            for event, result in zip(events, answer["results"], strict=True):
                eid = event["event_id"]
                assert result["event_id"] == eid
                if eid in first_position:
                    assert result["duplicate"] and result["position"] == first_position[eid]
                else:
                    assert not result["duplicate"]
                    assert result["position"] > max(first_position.values(), default=start)
                    first_position[eid] = result["position"]
                    new += 1
            assert answer["stored"] == new
            assert answer["duplicates"] == len(events) - new
    log = [e for e in _log_of(admin, start) if e["event_id"].startswith(prefix)]
    assert sorted(e["event_id"] for e in log) == sorted(first_position)
    assert {e["event_id"]: e["position"] for e in log} == first_position


@LIVE
@given(plan=batches, body=live_execution, data=st.data())
def test_a_known_event_id_with_another_payload_is_a_409_naming_the_first_position(
    daemon: LiveDaemon, agent: httpx.Client, plan: list[tuple[list[int], bool]],
    body: dict[str, Any], data: st.DataObject,
) -> None:
    prefix = uuid.uuid4().hex[:12]
    admin = daemon.client()
    indices = plan[0][0]
    events = [{**body, "event_id": f"{prefix}-{i}", "latency_ms": float(i)} for i in indices]
    stored = agent.post("/v1/events", json={"events": events})
    assert stored.status_code == 200, stored.text
    position = {r["event_id"]: r["position"] for r in stored.json()["results"]}
    # Again, with one of them changed and some new events around it.
    changed = data.draw(st.integers(0, len(events) - 1))
    fresh = [{**body, "event_id": f"{prefix}-new-{n}"} for n in range(data.draw(
        st.integers(0, 3)))]
    again = [*fresh, *events]
    again[len(fresh) + changed] = {**events[changed], "latency_ms": 1e6}
    head = _head(admin)
    r = agent.post("/v1/events", json={"events": again})
    assert r.status_code == 409, r.text
    eid = events[changed]["event_id"]
    (detail,) = r.json()["error"]["details"]
    # An unchanged twin of the id earlier in the batch is a plain retry, not the conflict.
    assert detail["field"] == f"events[{len(fresh) + changed}].event_id"
    assert f"position {position[eid]}" in detail["message"]
    assert _head(admin) == head  # the batch is atomic: the fresh events are not stored either


@LIVE
@given(events=st.lists(live_execution, min_size=1, max_size=4), data=st.data())
def test_a_batch_with_any_invalid_event_stores_nothing_and_names_the_event(
    daemon: LiveDaemon, agent: httpx.Client, events: list[dict[str, Any]], data: st.DataObject,
) -> None:
    field, value = data.draw(st.sampled_from(BREAKS).flatmap(
        lambda b: st.tuples(st.just(b[0]), b[1])))
    index = data.draw(st.integers(0, len(events) - 1))
    batch = [dict(e) for e in events]
    batch[index][field] = value
    admin = daemon.client()
    before = _head(admin)
    # Non-finite numbers go out as Python writes them (Infinity, NaN), which its reader takes
    # back, as it takes 1e400: the daemon must refuse them, not store them.
    r = agent.post("/v1/events", content=json.dumps({"events": batch}),
                   headers={"Content-Type": "application/json"})
    assert r.status_code in (413, 422), r.text
    if r.status_code == 422:
        fields = [d["field"] for d in r.json()["error"]["details"]]
        assert all(f.startswith(f"events[{index}]") for f in fields), fields
    assert _head(admin) == before


@pytest.fixture(scope="module")
def agents(daemon: LiveDaemon) -> list[httpx.Client]:
    """Four agent clients, one per concurrent sender."""
    token = daemon.issue("agent")
    return [daemon.client(token) for _ in range(4)]


@settings(LIVE, max_examples=10)
@given(ids=st.lists(st.integers(0, 9), min_size=4, max_size=12), body=live_execution)
def test_concurrent_retries_of_the_same_events_store_each_once_at_one_position(
    daemon: LiveDaemon, agents: list[httpx.Client], ids: list[int], body: dict[str, Any],
) -> None:
    prefix = uuid.uuid4().hex[:12]
    answers: list[list[dict[str, Any]]] = []
    errors: list[str] = []
    ready = threading.Barrier(len(agents))

    def send(client: httpx.Client, order: list[int]) -> None:
        events = [{**body, "event_id": f"{prefix}-{i}"} for i in order]
        ready.wait(10)
        r = client.post("/v1/events", json={"events": events})
        if r.status_code != 200:
            errors.append(r.text)
            return
        answers.append(r.json()["results"])

    # Four agents send the same ids in different orders at the same moment.
    orders = [ids, ids[::-1], ids[1:] + ids[:1], sorted(ids)]
    threads = [threading.Thread(target=send, args=(c, o)) for c, o in zip(agents, orders,
                                                                           strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    positions: dict[str, set[int]] = {}
    for results in answers:
        for result in results:
            positions.setdefault(result["event_id"], set()).add(result["position"])
    assert all(len(p) == 1 for p in positions.values()), positions
    assert sum(not r["duplicate"] for results in answers for r in results) == len(set(ids))
    log = [e for e in _log_of(daemon.client(), 0) if e["event_id"].startswith(prefix)]
    assert sorted(e["event_id"] for e in log) == sorted({f"{prefix}-{i}" for i in ids})


def test_a_nul_in_any_query_filter_is_refused_with_a_422_on_every_backend(
    log_url: str, tmp_path: Path,
) -> None:
    with live_daemon(tmp_path, database_url=log_url) as live:
        live.create_prompt(PROMPT)
        admin = live.client()

        @settings(max_examples=15, deadline=None, derandomize=True, database=None)
        @given(value=st.tuples(text, text).map("\x00".join),
               where=st.sampled_from([("/v1/events", "stream"), ("/v1/events", "type"),
                                      ("/v1/deployments", "prompt")]))
        def refused(value: str, where: tuple[str, str]) -> None:
            path, name = where
            r = admin.get(path, params={name: value})
            assert r.status_code == 422, (path, name, r.status_code, r.text[:200])
            assert r.json()["error"]["details"][0]["field"] == name

        refused()
        assert admin.get("/v1/events", params={"stream": f"prompt:{PROMPT}"}).json()["events"]
