"""A tiny OpenAI-compatible chat-completions server for tests (no LLM runs here).

It answers ``POST /v1/chat/completions`` deterministically from the request, like an LLM
that follows the rewriter's instructions to the letter:

- a trace report (``Pattern N:`` blocks with ``Reviewer feedback:`` and traces) gets, at the
  diagnosis step, one root cause per pattern; at the edit step (a ``<critique>`` block) the
  ``<prompt>`` back with ONE merged checklist that turns each pattern's feedback and first
  ``Reviewer's correction:`` into an instruction, and ``<addressed>`` naming the patterns it
  covered: like a model that learns from corrections, it only addresses patterns whose
  traces carry one (feedback without a corrected answer is not acted on); a chat prompt
  (``<message role="system">`` blocks) gets the checklist inside its system message;
- an older report with ``Reason:`` lines gets a critique listing them, and at the edit step
  one ``- Avoid: <reason>`` line per reason;
- the offline gate's calls: an answer (a system prompt, then the recorded input) is
  ``answer to <input>``, marked ``[follows feedback]`` when the prompt carries reviewer
  feedback; a judgment (``improver.gate.JUDGE_SYSTEM``) prefers the answer so marked, A or B
  as shown, and ``TIE`` when both or neither are;
- anything else gets ``stub reply <sha256 prefix of the message>``.

Faults on demand: ``control.script(ScriptedReply(status=429, headers={"Retry-After": "1"}))``
queues replies that are served, one per request, before the default behaviour resumes; a
``ScriptedReply()`` with no overrides serves the default answer, so a fault can target the
second call. Every request is recorded in ``control.requests``.

Usage (any test, e2e included)::

    with serve_llm_stub() as stub:
        config = RewriterConfig(base_url=stub.base_url, model="stub")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

_DEFAULT: Any = object()  # sentinel: "answer as the stub normally would"
_PROMPT_BLOCK = re.compile(r"<prompt>\n?(.*?)\n?</prompt>", re.DOTALL)
_REASON_LINE = re.compile(r"^Reason: (.+)$", re.MULTILINE)
_PATTERN_BLOCK = re.compile(r"^Pattern (\d+): .*?(?=^Pattern \d+: |\Z)", re.MULTILINE | re.DOTALL)
_FEEDBACK_LINE = re.compile(r"^Reviewer feedback: (.+)$", re.MULTILINE)
_CORRECTION_LINE = re.compile(r"^Reviewer's correction: (.+)$", re.MULTILINE)
CHECKLIST_HEADING = "Before answering, check:"
SYSTEM_OPEN = '<message role="system">'


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer: a status, headers, a delay, or an odd body."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content: Any = _DEFAULT  # message content to send (may be None, a list, a number ...)
    raw_body: str | None = None  # sent verbatim instead of a completion object
    finish_reason: str = "stop"


@dataclass(frozen=True)
class RecordedRequest:
    """What the stub received."""

    headers: Mapping[str, str]
    body: Any
    received_at: float  # time.monotonic()


class StubControl:
    """Thread-safe script of faults and record of requests, shared with the server thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[ScriptedReply] = deque()
        self._requests: list[RecordedRequest] = []

    def script(self, *replies: ScriptedReply) -> None:
        """Queue replies to serve, in order, before the default behaviour resumes."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the requests received so far."""
        with self._lock:
            return list(self._requests)

    def _next(self, recorded: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self._requests.append(recorded)
            return self._script.popleft() if self._script else ScriptedReply()


def _traces_answer(user: str, block: re.Match[str] | None) -> str | None:
    """Return the answer to a trace report, or None when the message holds none."""
    report = user.split("</prompt>", 1)[-1].split("<critique>", 1)[0]
    patterns = []
    for match in _PATTERN_BLOCK.finditer(report):
        feedback = _FEEDBACK_LINE.search(match.group(0))
        corrections = _CORRECTION_LINE.findall(match.group(0))
        patterns.append((int(match.group(1)), feedback.group(1).strip() if feedback else "",
                         corrections))
    if not any(feedback for _n, feedback, _c in patterns):
        return None
    if "<critique>" not in user or block is None:
        return "Root causes:\n" + "\n".join(
            f"- Pattern {n}: the prompt never asks for this: {feedback}"
            for n, feedback, _c in patterns if feedback)
    acted = [(n, feedback, corrections[0]) for n, feedback, corrections in patterns
             if feedback and corrections]
    body = block.group(1).rstrip("\n")
    if acted:
        checklist = "\n".join(["", CHECKLIST_HEADING] + [
            f'- {feedback.rstrip(".")}; answer the way reviewers corrected it, e.g. "{fixed}".'
            for _n, feedback, fixed in acted])
        system = body.find(SYSTEM_OPEN)
        if system >= 0:  # a chat prompt: as told, instructions go into the system message
            end = body.index("\n</message>", system)
            body = body[:end] + "\n" + checklist + body[end:]
        else:
            body += "\n" + checklist
    addressed = ", ".join(str(n) for n, _f, _x in acted)
    return "<prompt>\n" + body + f"\n</prompt>\n<addressed>{addressed}</addressed>"


FOLLOWS = "[follows feedback]"
_GUIDED = ("Reviewers flagged these problems", CHECKLIST_HEADING)
_ANSWER = re.compile(r"<answer_([ab])>\n(.*?)\n</answer_\1>", re.DOTALL)


def _gate_content(messages: list[dict[str, Any]], user: str) -> str | None:
    """Return the stub's answer to an offline-gate call, or None when it is not one."""
    from improver.gate import JUDGE_SYSTEM

    system = messages[0].get("content", "") if messages[0].get("role") == "system" else None
    if system == JUDGE_SYSTEM:
        answers = dict(_ANSWER.findall(user))
        marked = [k.upper() for k in ("a", "b") if FOLLOWS in answers.get(k, "")]
        return marked[0] if len(marked) == 1 else "TIE"
    if system is not None and len(messages) == 2 and not any(
            marker in user for marker in ("<prompt>", "Pattern ", "Reason: ")):
        guided = any(heading in str(system) for heading in _GUIDED)
        return f"answer to {user}" + (f" {FOLLOWS}" if guided else "")
    return None


def default_content(messages: list[dict[str, Any]]) -> str:
    """Return the stub's deterministic answer to a conversation."""
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    user = user if isinstance(user, str) else json.dumps(user)
    gate = _gate_content(messages, user)
    if gate is not None:
        return gate
    block = _PROMPT_BLOCK.search(user)
    answer = _traces_answer(user, block)
    if answer is not None:
        return answer
    reasons = list(dict.fromkeys(r.strip() for r in _REASON_LINE.findall(user)))
    if "<critique>" in user and block is not None:
        lines = [block.group(1).rstrip("\n"), *(f"- Avoid: {r}" for r in reasons)]
        return "<prompt>\n" + "\n".join(lines) + "\n</prompt>"
    if reasons:
        return "The prompt does not address these failures:\n" + "\n".join(
            f"- {r}" for r in reasons
        )
    return "stub reply " + hashlib.sha256(user.encode()).hexdigest()[:12]


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def create_stub_app(control: StubControl) -> FastAPI:
    """Return the FastAPI app serving the OpenAI-compatible endpoint."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except json.JSONDecodeError:
            body = None
        reply = control._next(RecordedRequest(dict(request.headers), body, time.monotonic()))
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.raw_body is not None:
            return Response(reply.raw_body, reply.status, dict(reply.headers), "text/plain")
        if reply.status >= 300:
            error = {"error": {"message": f"stub error {reply.status}", "type": "stub"}}
            return JSONResponse(error, reply.status, dict(reply.headers))
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            error = {"error": {"message": "'messages' is required", "type": "invalid_request"}}
            return JSONResponse(error, 400)
        content = default_content(messages) if reply.content is _DEFAULT else reply.content
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in messages)
        completion_tokens = _tokens(str(content))
        completion = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return JSONResponse(completion, 200, dict(reply.headers))

    return app


@dataclass
class LLMStub:
    """A running stub: its base URL (ending in /v1, as OpenAI clients expect) and control."""

    base_url: str
    control: StubControl
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve_llm_stub() -> Iterator[LLMStub]:
    """Serve the stub on a free loopback port in a thread for the duration of the block."""
    control = StubControl()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port first
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_stub_app(control),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="llm-stub", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the LLM stub did not start")
        time.sleep(0.01)
    try:
        yield LLMStub(f"http://127.0.0.1:{port}/v1", control, server, thread)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
