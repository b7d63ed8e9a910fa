"""The LLM rewriter against a real OpenAI-compatible server on loopback (the stub)."""

from __future__ import annotations

import email.utils
import random
import socket
import time

import httpx
import pytest

from improver.critique import CRITIQUE_SYSTEM, EDIT_SYSTEM
from improver.model import BaseVersion, Candidate, Skipped
from improver.rewriter import LLM_REWRITER, LLMRewriter, RewriterConfig
from improver.templates import render_template, template_variables
from tests.improver.builders import (
    SUPPORT_TEMPLATE,
    SUPPORT_VARIABLES,
    example,
    pattern,
    tone_pattern,
)
from tests.improver.llm_stub import CHECKLIST_HEADING, LLMStub, ScriptedReply

BASE = BaseVersion("support/triage", 3, SUPPORT_TEMPLATE)
PATTERNS = [pattern(), tone_pattern()]


class SleepRecorder:
    """Records the waits the rewriter asks for instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def rewriter(
    stub: LLMStub, client: httpx.Client, sleep: SleepRecorder | None = None, **overrides
) -> LLMRewriter:
    config = RewriterConfig(
        base_url=stub.base_url, model="stub-model", api_key="sk-test", **overrides
    )
    return LLMRewriter(config, client, sleep=sleep or SleepRecorder(), rng=random.Random(7))


def test_rewriter_reflects_on_traces_then_makes_one_merged_edit(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    r = rewriter(llm_stub, http_client)
    result = r.rewrite(BASE, PATTERNS)
    assert isinstance(result, Candidate)
    assert result.strategy == LLM_REWRITER
    assert result.addressed_pattern_ids == ("p1", "p2")  # one edit, several patterns
    assert template_variables(result.template) == template_variables(SUPPORT_TEMPLATE)
    text = render_template(result.template, SUPPORT_VARIABLES)
    assert text.count(CHECKLIST_HEADING) == 1
    assert '- Refund amount included the shipping costs; answer the way reviewers corrected ' \
           'it, e.g. "Your refund is $50."' in text
    assert "I am sorry for the wait" in text
    assert "Avoid" not in text
    assert "Root causes" in result.rationale  # the diagnosis is kept
    critique, edit = llm_stub.control.requests
    assert critique.body["messages"][0]["content"] == CRITIQUE_SYSTEM
    assert edit.body["messages"][0]["content"] == EDIT_SYSTEM
    sent = edit.body["messages"][1]["content"]
    assert "<critique>" in sent
    # The traces, not only the reasons: input, the agent's output and the correction.
    for line in ("Input: Refund order 12", "Agent output: Your refund is $55 including shipping.",
                 "Reviewer's correction: Your refund is $50.",
                 "Reviewer feedback: Refund amount included the shipping costs",
                 "Input: Where is my package?? Third time asking!"):
        assert line in sent
    assert critique.headers["authorization"] == "Bearer sk-test"
    assert critique.body["model"] == "stub-model"
    assert 0 < critique.body["max_tokens"] <= r.config.max_output_tokens
    assert r.usage.calls == 2 and r.usage.tokens > 0


def test_rewriter_credits_only_the_patterns_the_edit_says_it_addresses(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    # The stub acts only on feedback whose traces carry a correction; a bare "ok" is none.
    uncorrected = tone_pattern(examples=(example("Where is my package??", "ok", "It comes."),))
    result = rewriter(llm_stub, http_client).rewrite(BASE, [pattern(), uncorrected])
    assert isinstance(result, Candidate)
    assert result.addressed_pattern_ids == ("p1",)
    sent = llm_stub.control.requests[-1].body["messages"][1]["content"]
    assert "Reviewer's correction: ok" not in sent
    assert "Input: Where is my package??" in sent  # the trace still shows what went wrong


def test_rewriter_sends_no_noise_and_no_uncommented_failures(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    noise = pattern("n1", representative_reason="thx", statements=(), noise="generic")
    failures = pattern("f1", representative_reason="unsuccessful execution", corrections=0,
                       statements=(("en", "Unsuccessful execution."),), categories=())
    result = rewriter(llm_stub, http_client).rewrite(BASE, [noise, failures, pattern()])
    assert isinstance(result, Candidate) and result.addressed_pattern_ids == ("p1",)
    sent = llm_stub.control.requests[0].body["messages"][1]["content"]
    assert "thx" not in sent and "nsuccessful execution" not in sent
    llm_stub.control.reset()
    silent = rewriter(llm_stub, http_client).rewrite(BASE, [noise, failures])
    assert isinstance(silent, Skipped) and "noise" in silent.reason
    assert llm_stub.control.requests == []  # nothing worth an LLM call


def test_rewriter_skips_an_edit_that_returns_the_prompt_unchanged(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(
        ScriptedReply(),
        ScriptedReply(content=f"<prompt>\n{SUPPORT_TEMPLATE}</prompt><addressed>1</addressed>"),
    )
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped) and "nothing new" in result.reason


def test_rewriter_retries_after_429_waiting_as_long_as_retry_after_says(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(ScriptedReply(status=429, headers={"Retry-After": "2"}))
    sleep = SleepRecorder()
    result = rewriter(llm_stub, http_client, sleep).rewrite(BASE, PATTERNS)
    assert isinstance(result, Candidate)
    assert sleep.waits == [2.0]
    assert len(llm_stub.control.requests) == 3


def test_rewriter_honours_retry_after_ms_and_http_dates(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 3, usegmt=True)
    llm_stub.control.script(
        ScriptedReply(status=429, headers={"retry-after-ms": "1500"}),
        ScriptedReply(status=503, headers={"Retry-After": date}),
    )
    sleep = SleepRecorder()
    config = RewriterConfig(base_url=llm_stub.base_url, model="m")
    r = LLMRewriter(config, http_client, sleep=sleep, clock=lambda: now)
    assert isinstance(r.rewrite(BASE, PATTERNS), Candidate)
    assert sleep.waits == [1.5, 3.0]


def test_rewriter_backs_off_exponentially_on_5xx_without_retry_after(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(*(ScriptedReply(status=s) for s in (500, 502, 503)))
    sleep = SleepRecorder()
    r = rewriter(llm_stub, http_client, sleep, backoff_s=0.5, max_retries=3)
    assert isinstance(r.rewrite(BASE, PATTERNS), Candidate)
    # Attempt n waits within [b*2^n/2, b*2^n] (full delay halved at most by the jitter).
    assert len(sleep.waits) == 3
    for attempt, wait in enumerate(sleep.waits):
        assert 0.5 * 2**attempt / 2 <= wait <= 0.5 * 2**attempt


def test_rewriter_gives_up_when_every_attempt_fails(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(*(ScriptedReply(status=500) for _ in range(3)))
    result = rewriter(llm_stub, http_client, max_retries=2).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "HTTP 500" in result.reason and "3 attempts" in result.reason
    assert len(llm_stub.control.requests) == 3


def test_rewriter_gives_up_when_the_provider_asks_for_too_long_a_wait(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(ScriptedReply(status=429, headers={"Retry-After": "3600"}))
    sleep = SleepRecorder()
    result = rewriter(llm_stub, http_client, sleep).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "3600" in result.reason
    assert sleep.waits == []


def test_rewriter_times_out_a_slow_provider_and_retries(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(ScriptedReply(delay_s=1.5), ScriptedReply(delay_s=1.5))
    started = time.monotonic()
    result = rewriter(llm_stub, http_client, timeout_s=0.2, max_retries=1).rewrite(BASE, PATTERNS)
    elapsed = time.monotonic() - started
    assert isinstance(result, Skipped)
    assert "timed out after 0.2 s" in result.reason and "2 attempts" in result.reason
    assert 0.4 <= elapsed < 1.5  # two 0.2 s timeouts, not the server's 1.5 s delay


def test_rewriter_retries_a_connection_error(http_client: httpx.Client) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = RewriterConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=2)
    sleep = SleepRecorder()
    result = LLMRewriter(config, http_client, sleep=sleep).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "ConnectError" in result.reason
    assert len(sleep.waits) == 2


def test_rewriter_does_not_retry_a_client_error(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(ScriptedReply(status=401))
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "HTTP 401" in result.reason
    assert len(llm_stub.control.requests) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (ScriptedReply(raw_body="<html>bad gateway</html>"), "not JSON"),
        (ScriptedReply(content=None), "content is NoneType, not text"),
        (ScriptedReply(content=["a", "list"]), "content is list, not text"),
        (ScriptedReply(content=42), "content is int, not text"),
        (ScriptedReply(content="   "), "empty content"),
    ],
)
def test_rewriter_skips_a_malformed_reply(
    llm_stub: LLMStub, http_client: httpx.Client, reply: ScriptedReply, reason: str
) -> None:
    llm_stub.control.script(reply)
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "malformed reply" in result.reason and reason in result.reason


def test_rewriter_rejects_an_edit_that_drops_a_variable(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    edited = "<prompt>\nYou are a support agent.\nMessage: {{ message }}\n</prompt>"
    llm_stub.control.script(ScriptedReply(), ScriptedReply(content=edited))
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "lint:" in result.reason
    assert "'category'" in result.reason and "'customer_name'" in result.reason


def test_rewriter_rejects_an_edit_that_tries_to_escape_the_sandbox(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    edited = "<prompt>" + SUPPORT_TEMPLATE + "{{ message.__class__.__mro__ }}</prompt>"
    llm_stub.control.script(ScriptedReply(), ScriptedReply(content=edited))
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert result.reason.startswith("lint: line 10: access to attribute '__")


def test_rewriter_accepts_a_fenced_edit_but_not_a_bare_chat_reply(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    fenced = "Here you go:\n```jinja\n" + SUPPORT_TEMPLATE + "- Be kind.\n```\n"
    llm_stub.control.script(ScriptedReply(), ScriptedReply(content=fenced))
    assert isinstance(rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS), Candidate)
    llm_stub.control.script(ScriptedReply(), ScriptedReply(content="Sure! Be kinder."))
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "no <prompt> block" in result.reason


def test_rewriter_skips_an_edit_cut_off_at_max_tokens(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(ScriptedReply(), ScriptedReply(finish_reason="length"))
    result = rewriter(llm_stub, http_client).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "cut off" in result.reason


def test_rewriter_stops_when_the_call_budget_is_exhausted(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    r = rewriter(llm_stub, http_client, max_calls=3)
    assert isinstance(r.rewrite(BASE, PATTERNS), Candidate)
    result = r.rewrite(BASE, PATTERNS)  # same run: one call left, a rewrite needs two
    assert isinstance(result, Skipped)
    assert "call budget exhausted (3 of 3)" in result.reason
    assert len(llm_stub.control.requests) == 3


def test_retries_count_against_the_call_budget(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    llm_stub.control.script(ScriptedReply(status=429, headers={"Retry-After": "0"}))
    result = rewriter(llm_stub, http_client, max_calls=2).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "call budget exhausted" in result.reason


def test_rewriter_does_not_call_when_the_token_budget_cannot_cover_the_request(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    result = rewriter(llm_stub, http_client, max_tokens_budget=300).rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "token budget exhausted" in result.reason
    assert llm_stub.control.requests == []


def test_token_budget_spans_the_calls_of_one_run(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    probe = rewriter(llm_stub, http_client)
    assert isinstance(probe.rewrite(BASE, PATTERNS), Candidate)
    one_rewrite = probe.usage.tokens
    # Room for one rewrite's tokens plus a little; the second rewrite must be refused.
    r = rewriter(llm_stub, http_client, max_tokens_budget=one_rewrite + 400, min_output_tokens=50)
    assert isinstance(r.rewrite(BASE, PATTERNS), Candidate)
    result = r.rewrite(BASE, PATTERNS)
    assert isinstance(result, Skipped)
    assert "token budget exhausted" in result.reason
    assert r.usage.tokens <= one_rewrite + 400


def test_rewriter_does_not_send_a_prompt_over_the_length_limit(
    llm_stub: LLMStub, http_client: httpx.Client
) -> None:
    big = BaseVersion("big", 1, SUPPORT_TEMPLATE + "Lorem ipsum. " * 4_000)
    result = rewriter(llm_stub, http_client).rewrite(big, PATTERNS)
    assert isinstance(result, Skipped)
    assert "not sent" in result.reason
    assert llm_stub.control.requests == []


def test_rewriter_builds_its_own_client_from_a_transport_and_closes_it(llm_stub: LLMStub) -> None:
    config = RewriterConfig(base_url=llm_stub.base_url, model="m")
    with LLMRewriter(config, transport=httpx.HTTPTransport()) as r:
        assert isinstance(r.rewrite(BASE, PATTERNS), Candidate)
    assert r._client.is_closed
