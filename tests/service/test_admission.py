"""Admission control's bookkeeping: route classes, caps, and the latency-budget controller."""

from __future__ import annotations

from service.http.admission import (
    ADMIN,
    HEALTH,
    INGEST,
    MIN_SCALE,
    RESOLVE,
    Admission,
    LoopLag,
    route_class,
)
from tests.service.test_cli import run

CAPS = {INGEST: 3, RESOLVE: 2, ADMIN: 2, HEALTH: 1}


def test_requests_are_classed_by_their_request_line_alone() -> None:
    assert route_class("POST", "/v1/events") == INGEST
    assert route_class("POST", "/v1/executions") == INGEST
    assert route_class("POST", "/v1/corrections") == INGEST
    assert route_class("GET", "/v1/events") == ADMIN  # tailing the log is an admin read
    assert route_class("GET", "/v1/prompts/a/b/resolve") == RESOLVE
    assert route_class("POST", "/v1/prompts/a/resolve") == ADMIN
    assert route_class("GET", "/readyz") == HEALTH
    assert route_class("GET", "/v1/prompts/a") == ADMIN


def test_each_class_and_the_process_have_their_own_cap() -> None:
    admission = Admission(CAPS, total=4, ingest_bytes=10_000)
    assert [admission.enter(RESOLVE, 0) for _ in range(3)] == [True, True, False]
    assert "2 resolve requests" in admission.refusal(RESOLVE)
    assert [admission.enter(INGEST, 10) for _ in range(3)] == [True, True, False]
    assert "4 requests are in flight" in admission.refusal(INGEST)  # the process is full
    assert admission.enter(HEALTH, 0)  # probes are outside the process total
    admission.leave(RESOLVE, 0)
    assert admission.enter(INGEST, 10)
    assert not admission.enter(INGEST, 10)  # its own cap now
    for klass, size in ((RESOLVE, 0), (INGEST, 10), (INGEST, 10), (INGEST, 10), (HEALTH, 0)):
        admission.leave(klass, size)
    assert admission.total == 0 and admission.ingest_bytes == 0


def test_ingest_is_also_capped_in_body_bytes_but_one_request_always_gets_in() -> None:
    admission = Admission(CAPS, total=10, ingest_bytes=1000)
    assert admission.enter(INGEST, 5000)  # alone: the body limit bounds it
    assert not admission.enter(INGEST, 1)
    assert "5000 bytes of events" in admission.refusal(INGEST)
    admission.leave(INGEST, 5000)
    assert admission.enter(INGEST, 600) and not admission.enter(INGEST, 600)
    assert admission.enter(INGEST, 400)


def test_a_loop_late_beyond_the_budget_halves_the_costly_caps_down_to_an_eighth() -> None:
    admission = Admission({INGEST: 64, RESOLVE: 64, ADMIN: 64, HEALTH: 4}, total=256,
                          ingest_bytes=8000)
    lag = LoopLag(admission, budget_s=0.2)
    lag.observe(0.3)
    assert admission.caps[ADMIN] == 32 and admission.bytes_cap == 4000
    assert admission.caps[INGEST] == 64 and admission.caps[RESOLVE] == 64  # cheap: kept
    for _ in range(10):
        lag.observe(1.0)
    assert admission.scale == MIN_SCALE
    assert admission.caps[ADMIN] == 8 and admission.bytes_cap == 1000
    lag.observe(0.15)  # within the budget but above half of it: hold
    assert admission.scale == MIN_SCALE
    for _ in range(30):
        lag.observe(0.01)
    assert admission.scale == 1.0 and admission.caps[ADMIN] == 64
    assert admission.bytes_cap == 8000


def test_serve_help_documents_the_admission_knobs() -> None:
    out = run(None, "serve", "--help")
    assert out.returncode == 0
    for knob in ("PROMPTD_MAX_IN_FLIGHT ", "PROMPTD_MAX_IN_FLIGHT_INGEST",
                 "PROMPTD_MAX_IN_FLIGHT_RESOLVE", "PROMPTD_MAX_IN_FLIGHT_ADMIN",
                 "PROMPTD_MAX_INGEST_BYTES_IN_FLIGHT", "PROMPTD_LATENCY_BUDGET_S",
                 "PROMPTD_RETRY_AFTER_S", "PROMPTD_OCCURRED_AT_MAX_AGE_S",
                 "PROMPTD_OCCURRED_AT_MAX_AHEAD_S", "--debug"):
        assert knob in out.stdout, knob
