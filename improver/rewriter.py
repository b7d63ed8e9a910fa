"""The LLM rewriter: reflection on traces, then one merged edit, over any OpenAI-compatible
chat-completions endpoint.

Works with OpenAI, vLLM, Ollama and LM Studio (all serve ``POST {base_url}/chat/completions``).
The HTTP client is injected, httpx-style, so tests drive a real server on loopback and the
service passes one built from settings. Off unless configured: nothing here runs until the
service builds an ``LLMRewriter``. One instance is one improve run; its budget of calls and
tokens spans every request it makes, retries included.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from analytics.mining.model import Pattern
from improver.chat import chat_text
from improver.critique import (
    Message,
    critique_messages,
    edit_messages,
    extract_addressed,
    extract_template,
    format_chat,
    parse_chat,
    trace_report,
)
from improver.feedback import guided_patterns, prompt_language, why_silent
from improver.lint import LintConfig, lint_candidate, lint_chat_candidate, normalised_hash
from improver.model import BaseVersion, Candidate, Skipped
from improver.prompt_text import describe

LLM_REWRITER = "llm_rewriter"
_RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx
_CHARS_PER_TOKEN = 4  # rough estimate for budgeting before the provider reports usage


@dataclass(frozen=True, slots=True)
class RewriterConfig:
    """Where the LLM is and how much of it one improve run may use."""

    base_url: str  # e.g. https://api.openai.com/v1, http://localhost:11434/v1 (Ollama)
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    max_retries: int = 3
    max_calls: int = 10  # HTTP requests per run, retries included
    max_tokens_budget: int = 50_000  # prompt + completion tokens per run
    max_output_tokens: int = 2_000
    min_output_tokens: int = 256  # a call that could not get this many is not worth making
    temperature: float = 0.0
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    max_retry_after_s: float = 60.0  # a provider asking for a longer wait means: not this run
    max_patterns: int = 3  # patterns whose traces one merged edit reflects on
    max_examples: int = 3  # traces per pattern
    max_field_chars: int = 600
    lint: LintConfig = field(default_factory=LintConfig)


class RewriterError(RuntimeError):
    """A call that could not produce a usable reply; the message says why."""


class BudgetExhausted(RewriterError):
    """The run's budget of calls or tokens does not allow another call."""


@dataclass(slots=True)
class Usage:
    """Calls and tokens spent so far in this run."""

    calls: int = 0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The text of a completion and what it cost."""

    content: str
    total_tokens: int
    finish_reason: str | None


def _estimate_tokens(messages: Sequence[Message]) -> int:
    return sum(len(m["content"]) for m in messages) // _CHARS_PER_TOKEN + 8 * len(messages)


def _retry_after_s(response: httpx.Response, now: float) -> float | None:
    """Return the wait the provider asked for, from retry-after-ms or Retry-After."""
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - now, 0.0)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _parse_reply(response: httpx.Response) -> ChatReply:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RewriterError(f"malformed reply: not JSON: {response.text[:120]!r}") from None
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise RewriterError("malformed reply: no choices[0].message.content") from None
    if not isinstance(content, str):
        raise RewriterError(f"malformed reply: content is {type(content).__name__}, not text")
    if not content.strip():
        raise RewriterError("malformed reply: empty content")
    usage = body.get("usage") if isinstance(body, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    if not isinstance(total, int) or total < 0:
        total = len(content) // _CHARS_PER_TOKEN  # some servers omit usage; charge an estimate
    return ChatReply(content, total, choice.get("finish_reason"))


class LLMRewriter:
    """Writes a candidate by asking an LLM to reflect on failure traces, then edit once."""

    def __init__(
        self,
        config: RewriterConfig,
        client: httpx.Client | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._owns_client = client is None
        self._client = client or httpx.Client(transport=transport, timeout=config.timeout_s)
        self._sleep = sleep
        self._clock = clock  # only to turn an HTTP-date Retry-After into seconds
        self._rng = rng or random.Random()
        self.usage = Usage()

    def close(self) -> None:
        """Close the HTTP client if this rewriter created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> LLMRewriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one chat completion, with retries and budget -------------------------------------

    def _reserve(self, messages: Sequence[Message]) -> int:
        """Count one call against the budget; return the max_tokens it may ask for."""
        cfg = self.config
        if self.usage.calls >= cfg.max_calls:
            raise BudgetExhausted(f"call budget exhausted ({self.usage.calls} of {cfg.max_calls})")
        room = cfg.max_tokens_budget - self.usage.tokens - _estimate_tokens(messages)
        if room < cfg.min_output_tokens:
            raise BudgetExhausted(
                f"token budget exhausted ({self.usage.tokens:,} of {cfg.max_tokens_budget:,} "
                f"used; this call needs about {_estimate_tokens(messages):,} plus output)"
            )
        self.usage.calls += 1
        return min(cfg.max_output_tokens, room)

    def _backoff_s(self, attempt: int) -> float:
        ceiling = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempt)
        return ceiling * (0.5 + 0.5 * self._rng.random())  # jitter spreads synchronized retries

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def complete(self, messages: Sequence[Message]) -> ChatReply:
        """Return the model's reply to the messages, retrying 429/5xx/timeouts within budget."""
        cfg = self.config
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        last_problem = "no attempt made"
        for attempt in range(cfg.max_retries + 1):
            max_tokens = self._reserve(messages)
            payload: dict[str, Any] = {
                "model": cfg.model,
                "messages": list(messages),
                "temperature": cfg.temperature,
                "max_tokens": max_tokens,
            }
            wait: float | None = None
            try:
                response = self._client.post(
                    url, json=payload, headers=self._headers(), timeout=cfg.timeout_s
                )
            except httpx.TimeoutException:
                last_problem = f"timed out after {cfg.timeout_s:g} s"
            except httpx.TransportError as exc:
                last_problem = f"transport error: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 300:
                    reply = _parse_reply(response)
                    self.usage.tokens += reply.total_tokens
                    return reply
                if status not in _RETRYABLE_STATUS and status < 500:
                    raise RewriterError(f"HTTP {status} from the provider: {response.text[:200]!r}")
                last_problem = f"HTTP {status}"
                wait = _retry_after_s(response, self._clock())
                if wait is not None and wait > cfg.max_retry_after_s:
                    raise RewriterError(
                        f"HTTP {status}: the provider asked to wait {wait:g} s, more than the "
                        f"{cfg.max_retry_after_s:g} s this run allows"
                    )
            if attempt == cfg.max_retries:
                break
            self._sleep(wait if wait is not None else self._backoff_s(attempt))
        attempts = cfg.max_retries + 1
        raise RewriterError(f"{last_problem} (gave up after {attempts} attempts)")

    # -- the rewrite -----------------------------------------------------------------------

    def rewrite(
        self,
        base: BaseVersion,
        patterns: Sequence[Pattern],
        *,
        recorded_variables: Sequence[Mapping[str, Any]] = (),
        rejected_hashes: Collection[str] = (),
    ) -> Candidate | Skipped:
        """Return a linted candidate written by the LLM, or Skipped with the reason.

        A chat prompt is shown as tagged messages; the reply must keep every message's
        role, their order and the placeholders, and the candidate is linted message by
        message (``lint_chat_candidate``).
        """
        cfg = self.config
        if len(base.source) > cfg.lint.max_chars:
            return Skipped(
                LLM_REWRITER,
                f"the current version is {len(base.source):,} chars, over the "
                f"{cfg.lint.max_chars:,}-char limit; not sent to the LLM",
            )
        chat = base.messages is not None
        shown = format_chat(base.messages) if base.messages is not None else base.template
        language = prompt_language(chat_text(base.messages) if base.messages is not None
                                   else base.template)
        top, passed = guided_patterns(patterns, cfg.max_patterns, language)
        if not top:
            return Skipped(LLM_REWRITER, why_silent(passed))
        report = trace_report(top, language=language, max_examples=cfg.max_examples,
                              max_field_chars=cfg.max_field_chars)
        try:
            critique = self.complete(critique_messages(shown, report, chat=chat)).content.strip()
            reply = self.complete(edit_messages(shown, report, critique, chat=chat))
        except RewriterError as exc:
            return Skipped(LLM_REWRITER, str(exc))
        if reply.finish_reason == "length":
            return Skipped(LLM_REWRITER, "the edited prompt was cut off at max_tokens")
        template = extract_template(reply.content)
        if template is None:
            return Skipped(LLM_REWRITER, "the reply has no <prompt> block or fenced block")
        messages = parse_chat(template, base.messages) if base.messages is not None else None
        if isinstance(messages, str):
            return Skipped(LLM_REWRITER, messages)
        candidate = Candidate(template="" if chat else template, strategy=LLM_REWRITER,
                              rationale="", addressed_pattern_ids=(),
                              parent_version=base.version, messages=messages)
        if normalised_hash(candidate.source) == normalised_hash(base.source):
            return Skipped(LLM_REWRITER, "nothing new: the LLM returned the current version")
        said = extract_addressed(reply.content, len(top))
        addressed = top if said is None else [top[i] for i in said]
        if not addressed:
            return Skipped(LLM_REWRITER, "the LLM says its edit addresses none of the patterns")
        if messages is not None and base.messages is not None:
            issues = lint_chat_candidate(messages, parent=base.messages,
                                         recorded_variables=recorded_variables,
                                         rejected_hashes=rejected_hashes, config=cfg.lint)
        else:
            issues = lint_candidate(template, parent_text=base.template,
                                    recorded_variables=recorded_variables,
                                    rejected_hashes=rejected_hashes, config=cfg.lint)
        if issues:
            return Skipped(LLM_REWRITER, "lint: " + "; ".join(i.message for i in issues))
        return replace(
            candidate,
            rationale=(
                f"One merged edit by {cfg.model} after reflecting on the traces of "
                f"{len(top)} pattern(s); it addresses "
                + "; ".join(describe(p) for p in addressed)
                + f". Diagnosis: {critique[:1_000]}"
            ),
            addressed_pattern_ids=tuple(p.pattern_id for p in addressed),
        )
