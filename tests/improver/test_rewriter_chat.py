"""The LLM rewriter on chat prompts: it sees tagged messages and must keep their structure."""

from __future__ import annotations

import random

import httpx

from improver.chat import Message
from improver.critique import CHAT_EDIT, format_chat, parse_chat
from improver.model import BaseVersion, Candidate, Skipped
from improver.rewriter import LLMRewriter, RewriterConfig
from tests.improver.builders import pattern, tone_pattern
from tests.improver.llm_stub import CHECKLIST_HEADING, LLMStub, ScriptedReply

SYSTEM = Message("system", "You are a support agent for ACME.\nBe concise.")
HISTORY = Message("placeholder", name="history")
USER = Message("user", "{{ question }}")
CHAT = BaseVersion("support/chat", 3, "", (SYSTEM, HISTORY, USER), {"model": "m1"})


def _rewriter(stub: LLMStub, client: httpx.Client) -> LLMRewriter:
    config = RewriterConfig(base_url=stub.base_url, model="stub-model")
    return LLMRewriter(config, client, sleep=lambda _s: None, rng=random.Random(7))


def test_the_rewriter_edits_the_system_message_and_keeps_the_conversation(
        llm_stub: LLMStub, http_client: httpx.Client) -> None:
    result = _rewriter(llm_stub, http_client).rewrite(CHAT, [pattern(), tone_pattern()])
    assert isinstance(result, Candidate), result
    assert result.template == "" and result.messages is not None
    system, history, user = result.messages
    assert CHECKLIST_HEADING in system.content and "Your refund is $50." in system.content
    assert (history, user) == (HISTORY, USER) and result.config is None
    edit = llm_stub.control.requests[1].body["messages"]
    assert edit[0]["content"].endswith(CHAT_EDIT)
    assert '<placeholder name="history"/>' in edit[1]["content"]


def test_a_reply_that_changes_roles_or_drops_the_placeholder_is_skipped(
        llm_stub: LLMStub, http_client: httpx.Client) -> None:
    changed = format_chat((SYSTEM, Message("assistant", "{{ question }}")))
    llm_stub.control.script(ScriptedReply(),
                            ScriptedReply(content=f"<prompt>\n{changed}\n</prompt>"))
    result = _rewriter(llm_stub, http_client).rewrite(CHAT, [pattern()])
    assert isinstance(result, Skipped)
    assert "changed the conversation's messages" in result.reason


def test_a_reply_with_text_outside_the_messages_is_skipped(
        llm_stub: LLMStub, http_client: httpx.Client) -> None:
    shown = format_chat(CHAT.messages or ()) + "\nAlso: be nice."
    llm_stub.control.script(ScriptedReply(),
                            ScriptedReply(content=f"<prompt>\n{shown}\n</prompt>"))
    result = _rewriter(llm_stub, http_client).rewrite(CHAT, [pattern()])
    assert isinstance(result, Skipped) and "outside the messages" in result.reason


def test_an_edit_that_breaks_a_message_is_refused_by_lint(
        llm_stub: LLMStub, http_client: httpx.Client) -> None:
    broken = format_chat((SYSTEM, HISTORY, Message("user", "{{ question")))
    llm_stub.control.script(ScriptedReply(),
                            ScriptedReply(content=f"<prompt>\n{broken}\n</prompt>"))
    result = _rewriter(llm_stub, http_client).rewrite(CHAT, [pattern()])
    assert isinstance(result, Skipped) and "messages[2] (user)" in result.reason


def test_format_and_parse_are_inverse_on_a_chat_prompt() -> None:
    messages = (SYSTEM, HISTORY, Message("user", "line one\n\nline two", name="ada"), USER)
    assert parse_chat(format_chat(messages), messages) == messages
