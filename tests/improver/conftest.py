"""Fixtures for the improver tests: one LLM stub server per session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.improver.llm_stub import LLMStub, serve_llm_stub


@pytest.fixture(scope="session")
def llm_stub_server() -> Iterator[LLMStub]:
    """The OpenAI-compatible stub on loopback, shared by the session."""
    with serve_llm_stub() as stub:
        yield stub


@pytest.fixture
def llm_stub(llm_stub_server: LLMStub) -> Iterator[LLMStub]:
    """The stub with an empty script and no recorded requests."""
    llm_stub_server.control.reset()
    yield llm_stub_server
    llm_stub_server.control.reset()


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    """A real httpx client that ignores proxy settings from the environment (loopback only)."""
    with httpx.Client(trust_env=False) as client:
        yield client
