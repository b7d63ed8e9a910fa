"""The SDK's chat prompts: render_messages feeds the real openai client, sandboxed as ever."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from improver.templates import MissingVariableError, TemplateSecurityError
from service.sdk import AsyncPromptdClient, PromptdClient, PromptdError, Resolution
from service.server import free_port
from tests.improver.llm_stub import serve_llm_stub
from tests.support import LiveDaemon

NAME = "support/chat"
MESSAGES = [
    {"role": "system", "content": "You are ACME's support agent.{% if vip %} Be extra kind."
                                  "{% endif %}"},
    {"role": "placeholder", "name": "history"},
    {"role": "user", "content": "{{ question }}"},
]
CONFIG = {"model": "stub-model", "temperature": 0.0, "max_tokens": 64}
HISTORY = [{"role": "user", "content": "Hi, it is about {{ order }}"},
           {"role": "assistant", "content": "Hello! How can I help?"}]


@pytest.fixture
def chat(live: LiveDaemon) -> LiveDaemon:
    live.client().post("/v1/prompts", json={"name": NAME, "messages": MESSAGES,
                                            "config": CONFIG}).raise_for_status()
    return live


def test_render_messages_is_what_the_openai_client_sends_and_the_stub_answers(
        chat: LiveDaemon) -> None:
    with PromptdClient(chat.url, chat.issue("agent")) as pd, serve_llm_stub() as stub:
        prompt = pd.resolve(NAME, subject="user-42")
        assert prompt.is_chat and prompt.config == CONFIG and prompt.version == 1
        messages = prompt.render_messages(vip=True, question="Where is my order?",
                                          history=HISTORY)
        llm = openai.OpenAI(base_url=stub.base_url, api_key="sk-test", max_retries=0)
        reply = llm.chat.completions.create(messages=messages,  # type: ignore[arg-type]
                                            **prompt.config)
        assert reply.choices[0].message.content.startswith("stub reply ")
        sent = stub.control.requests[0].body
        assert sent["messages"] == messages == [
            {"role": "system", "content": "You are ACME's support agent. Be extra kind."},
            *HISTORY,  # inserted as data: "{{ order }}" is the user's text, not a variable
            {"role": "user", "content": "Where is my order?"}]
        assert sent["model"] == "stub-model" and sent["max_tokens"] == 64
        llm.close()


def test_the_async_client_renders_the_same_messages(chat: LiveDaemon) -> None:
    async def resolve() -> Resolution:
        async with AsyncPromptdClient(chat.url, chat.issue("agent")) as pd:
            return await pd.resolve(NAME)

    prompt = asyncio.run(resolve())
    assert prompt.render_messages(vip=False, question="q", history=[]) == [
        {"role": "system", "content": "You are ACME's support agent."},
        {"role": "user", "content": "q"}]


def test_a_missing_insert_or_variable_is_named_and_templates_stay_sandboxed(
        chat: LiveDaemon) -> None:
    with PromptdClient(chat.url, chat.issue("agent")) as pd:
        prompt = pd.resolve(NAME)
        with pytest.raises(MissingVariableError) as missing:
            prompt.render_messages(vip=False, question="q")
        assert missing.value.variable == "history"
        with pytest.raises(MissingVariableError) as missing:
            prompt.render_messages(vip=False, history=[])
        assert missing.value.variable == "question"
        with pytest.raises(PromptdError, match="render_messages"):
            prompt.render(question="q")
    hostile = [{"role": "user", "content": "{{ question.__class__.__mro__ }}"}]
    with pytest.raises(TemplateSecurityError):
        from service.contract.chat import render_messages

        render_messages(hostile, {"question": "q"})


def test_a_text_prompt_renders_as_one_user_message(live: LiveDaemon) -> None:
    live.create_prompt()
    with PromptdClient(live.url, live.issue("agent")) as pd:
        prompt = pd.resolve("support/triage")
        assert not prompt.is_chat
        assert prompt.render_messages(ticket="T-1", customer="Ada") == [
            {"role": "user", "content": "Answer the ticket T-1 for Ada."}]


def test_a_chat_fallback_serves_while_the_daemon_is_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with PromptdClient(url, "pd_agent_x", fallback_templates={NAME: MESSAGES},
                       resolve_timeout=0.2) as pd:
        prompt = pd.resolve(NAME)
        assert prompt.from_fallback and prompt.version is None
        assert prompt.variables == ("question", "vip")
        assert prompt.render_messages(vip=False, question="q", history=[])[-1] == {
            "role": "user", "content": "q"}
