"""The agent SDK: resolve prompts from a local cache, record what happened in batches.

``resolve()`` answers from memory; past its TTL the cached answer is still served at once
(``stale=True``) while one background refresh fetches the new one, and when the daemon cannot
be reached the caller's fallback template stands in. ``record_*`` validates an event, gives it
a UUIDv7 id and queues it; one background sender posts batches and retries transport errors,
408, 429 and 5xx with capped, jittered exponential backoff (at least ``Retry-After``) for as
long as the client is open. Appends are idempotent by event id, so a retry after a lost answer
counts nothing twice. A 4xx drops only the events it names and reports them (a log line,
``client.rejected``, ``on_rejected``); the rest of the batch is sent again.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import random
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
import structlog

from service.contract import CorrectionIn, ExecutionIn
from service.contract.ids import uuid7

__all__ = [
    "AsyncPromptdClient", "BufferFull", "ClientClosed", "DeliveryStats", "PromptUnavailable",
    "PromptdClient", "PromptdError", "RejectedEvent", "Resolution", "Rollout", "Run",
    "Undelivered",
    "parse_retry_after", "render", "retry_delay",
]

log = structlog.get_logger("promptd.sdk")
MAX_RETRY_AFTER_S = 60.0  # a proxy's "Retry-After: 86400" must not park the sender for a day
_EVENT_INDEX = re.compile(r"^events\[(\d+)\]")
_RUN_FIELDS = ("subject", "event_id", "success", "score", "error_type", "latency_ms",
               "input_tokens", "output_tokens", "cost_usd", "model", "input_text",
               "output_text", "variables", "metadata")


class PromptdError(Exception):
    """The SDK could not do what was asked; the message says why."""


class PromptUnavailable(PromptdError):
    """``resolve()`` got no answer from the daemon and has no fallback template."""


class BufferFull(PromptdError):
    """Too many recorded events await delivery: the daemon is down or slower than the agent."""


class ClientClosed(PromptdError):
    """The client is closed (or closing) and accepts no more events."""


class Undelivered(PromptdError):
    """``close()`` ran out of time; ``pending`` holds the JSON of every event not stored."""

    def __init__(self, message: str, pending: list[bytes]) -> None:
        super().__init__(message)
        self.pending = pending


@dataclass(frozen=True, slots=True)
class Resolution:
    """The prompt version an agent should use now, and where that answer came from."""

    prompt: str
    version: int | None  # None only for a fallback template: there is no version to credit
    template: str
    variables: tuple[str, ...]
    label: str = "production"
    deployment: str | None = None
    arm: str | None = None
    stale: bool = False  # served past its TTL while a background refresh runs
    from_fallback: bool = False  # the daemon was unreachable: this is the caller's template
    rollout: Rollout | None = None  # a live deployment's config: arms are assigned locally
    step: int | None = None  # the canary step whose weights chose the arm

    def render(self, **variables: Any) -> str:
        """Return the template rendered in the sandbox with ``variables``."""
        return render(self, **variables)

    def for_subject(self, subject: str | None) -> Resolution:
        """Return the arm of the live deployment this subject gets (itself if none)."""
        if self.rollout is None:
            return self
        from deploy.assignment import assign  # deferred: only agents under a canary pay

        arm = assign(self.rollout.deployment, subject or uuid7(), self.rollout.weights)
        chosen = self.rollout.arms[arm]
        return replace(chosen, stale=self.stale) if self.stale else chosen


@dataclass(frozen=True, slots=True)
class Rollout:
    """A deployment's assignment config, as resolve returns it: weights and each arm."""

    deployment: str
    step: int
    weights: dict[str, int]
    arms: dict[str, Resolution]


def render(resolution: Resolution, **variables: Any) -> str:
    """Return ``resolution``'s template rendered by the sandboxed Jinja2 environment."""
    from improver.templates import render_template  # deferred: importing improver is slow

    return render_template(resolution.template, variables)


def resolution_from(body: Mapping[str, Any]) -> Resolution:
    """Return the Resolution in a ``GET /v1/prompts/{name}/resolve`` answer.

    When the answer carries the deployment's ``rollout`` (weights and every arm), the
    Resolution keeps it: the cache then holds one entry per prompt and picks each subject's
    arm locally, the way feature-flag SDKs do, instead of asking the daemon per subject.
    """
    label = body.get("label", "production")
    rollout = None
    config = body.get("rollout")
    if config:
        arms = {a["arm"]: Resolution(prompt=body["prompt"], version=int(a["version"]),
                                     template=a["template"], variables=tuple(a["variables"]),
                                     label=label, deployment=config["deployment"], arm=a["arm"],
                                     step=int(config["step"]))
                for a in config["arms"]}
        rollout = Rollout(config["deployment"], int(config["step"]), dict(config["weights"]),
                          arms)
    return Resolution(prompt=body["prompt"], version=int(body["version"]),
                      template=body["template"], variables=tuple(body["variables"]),
                      label=label, deployment=body.get("deployment"), arm=body.get("arm"),
                      rollout=rollout, step=body.get("step"))


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event the daemon refused with a 4xx: dropped, never retried."""

    event: bytes  # the event's JSON as it was sent
    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Counters of the event pipeline since the client was made."""

    recorded: int
    pending: int
    stored: int
    duplicates: int
    rejected: int
    requests: int
    retries: int


@dataclass(frozen=True, slots=True)
class _Queued:
    event_id: str
    body: bytes  # encoded once at record time: retries resend the very same bytes


@dataclass(frozen=True, slots=True)
class _Verdict:
    retry: bool = False
    retry_after: float | None = None
    stored: int = 0
    duplicates: int = 0
    rejected: tuple[RejectedEvent, ...] = ()
    resend: tuple[tuple[_Queued, ...], ...] = ()


def retry_delay(attempt: int, retry_after: float | None, *, base: float, cap: float,
                rng: random.Random) -> float:
    """Return seconds to wait before retry ``attempt`` (0-based): full jitter, >= Retry-After."""
    # Full jitter (uniform below the exponential bound) spreads a fleet of agents that lost
    # the daemon together, so they do not all come back in the same instant.
    backoff = rng.uniform(0.0, min(cap, base * 2.0 ** min(attempt, 30)))
    if retry_after is None:
        return backoff
    return max(min(retry_after, MAX_RETRY_AFTER_S), backoff)


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Return the seconds a Retry-After header asks for (delta or HTTP date); None if absent."""
    if not value or not value.strip():
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch)
    except (TypeError, ValueError):
        return None


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _error_of(response: httpx.Response) -> tuple[str, str, list[dict[str, Any]]]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"]), list(error.get("details") or [])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200], []


def _encode_batch(parts: Sequence[_Queued]) -> bytes:
    return b'{"events":[' + b",".join(p.body for p in parts) + b"]}"


def _judge(parts: tuple[_Queued, ...], response: httpx.Response) -> _Verdict:
    """Return what to do after the daemon answered ``response`` to a POST of ``parts``."""
    status = response.status_code
    if status == 200:
        duplicates = int(response.json()["duplicates"])
        return _Verdict(stored=len(parts) - duplicates, duplicates=duplicates)
    if _retryable(status):
        return _Verdict(retry=True, retry_after=parse_retry_after(
            response.headers.get("retry-after"), time.time()))
    code, message, details = _error_of(response)
    if status in (413, 422):  # the daemon refuses a batch atomically: save what it did not name
        named: dict[int, str] = {}
        for d in details if status == 422 else ():
            m = _EVENT_INDEX.match(str(d.get("field", "")))
            if m and int(m.group(1)) < len(parts):
                named.setdefault(int(m.group(1)), f"{d.get('field')}: {d.get('message')}")
        if named:
            rest = tuple(p for i, p in enumerate(parts) if i not in named)
            return _Verdict(rejected=tuple(RejectedEvent(parts[i].body, status, code, text)
                                           for i, text in sorted(named.items())),
                            resend=(rest,) if rest else ())
        if len(parts) > 1:  # nothing named (or too big): bisect until the culprit is alone
            return _Verdict(resend=(parts[:len(parts) // 2], parts[len(parts) // 2:]))
    return _Verdict(rejected=tuple(RejectedEvent(p.body, status, code, message) for p in parts))


class _Delivery:
    """Sans-IO delivery of one batch: which part to post next and what each answer means."""

    def __init__(self, batch: tuple[_Queued, ...]) -> None:
        self.work: list[tuple[_Queued, ...]] = [batch]
        self.attempt = 0

    def body(self) -> bytes:
        """Return the request body of the next part to post."""
        return _encode_batch(self.work[-1])

    def answered(self, response: httpx.Response | Exception, core: _ClientCore) -> float | None:
        """Settle the last post (an exception: it failed in transit); return a retry delay."""
        if isinstance(response, Exception):
            log.warning("promptd.send_failed", error=f"{type(response).__name__}: {response}")
            verdict = _Verdict(retry=True)
        else:
            try:
                verdict = _judge(self.work[-1], response)
            except (ValueError, KeyError, TypeError):  # a 200 that is not ours (a proxy page)
                log.warning("promptd.send_unreadable", status=response.status_code)
                verdict = _Verdict(retry=True)
        if verdict.retry:
            self.attempt += 1
            core._counts["retries"] += 1
            return retry_delay(self.attempt - 1, verdict.retry_after, base=core.backoff_base,
                               cap=core.backoff_cap, rng=core._rng)
        self.work.pop()
        self.attempt = 0
        self.work.extend(reversed(verdict.resend))
        core._counts["stored"] += verdict.stored
        core._counts["duplicates"] += verdict.duplicates
        for rejected in verdict.rejected:
            core._report(rejected)
        return None

    def unsent(self) -> list[_Queued]:
        """Return every event of the batch not yet stored or rejected, oldest first."""
        return [p for part in reversed(self.work) for p in part]


@dataclass(frozen=True, slots=True)
class _Entry:
    fresh: Resolution
    stale: Resolution
    fresh_until: float  # monotonic seconds
    retry_at: float  # no refresh before this: spaces out attempts while the daemon is down
    by_subject: bool  # the answer names a deployment arm, so it holds for one subject only


@dataclass
class Run:
    """One timed call of a prompt: set its outcome inside the ``with`` block."""

    resolution: Resolution
    subject: str | None = None
    event_id: str = field(default_factory=uuid7)  # known up front, so corrections can cite it
    success: bool | None = None
    score: float | None = None
    error_type: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None
    input_text: str | None = None
    output_text: str | None = None
    variables: dict[str, Any] | None = None  # set them so lint can replay this run
    metadata: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    recorded: bool = False
    started: float = field(default_factory=time.perf_counter)

    def render(self, **variables: Any) -> str:
        """Return the resolved template rendered with ``variables``."""
        return self.resolution.render(**variables)

    def finish(self, exc_type: type[BaseException] | None) -> dict[str, Any] | None:
        """Stop the clock and return the execution's fields (None: nothing to credit)."""
        self.latency_ms = (time.perf_counter() - self.started) * 1000.0
        if exc_type is not None:  # an escaping exception is a failure, whatever was set
            self.success, self.error_type = False, self.error_type or exc_type.__name__
        elif self.success is None and self.score is None and self.error_type is None:
            self.success = True  # finished without raising and nobody said otherwise
        if self.resolution.version is None:
            log.info("promptd.run_not_recorded", prompt=self.resolution.prompt,
                     reason="a fallback template has no version")
            return None
        r = self.resolution
        return {"prompt": r.prompt, "version": r.version, "deployment": r.deployment,
                "arm": r.arm, "step": r.step, **{name: getattr(self, name) for name in _RUN_FIELDS}}


class _ClientCore:
    """Options, cache and event bookkeeping shared by the sync and async clients."""

    def __init__(self, url: str, token: str, *,
                 transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
                 timeout: float = 10.0, resolve_timeout: float = 2.0, cache_ttl: float = 30.0,
                 cache_size: int = 10_000, batch_size: int = 100,
                 max_batch_bytes: int = 900_000, flush_interval: float = 0.5,
                 max_buffer: int = 100_000, block_timeout: float = 1.0,
                 backoff_base: float = 0.05, backoff_cap: float = 5.0,
                 fallback_templates: Mapping[str, str] | None = None,
                 on_rejected: Callable[[RejectedEvent], None] | None = None,
                 seed: int | None = None) -> None:
        if not 1 <= batch_size <= max_buffer:
            raise ValueError("need 1 <= batch_size <= max_buffer")
        self.url = url.rstrip("/")
        self.resolve_timeout, self.cache_ttl, self.cache_size = (resolve_timeout, cache_ttl,
                                                                 cache_size)
        self.batch_size, self.max_batch_bytes = batch_size, max_batch_bytes
        self.flush_interval, self.max_buffer = flush_interval, max_buffer
        self.block_timeout, self.backoff_base, self.backoff_cap = (block_timeout, backoff_base,
                                                                   backoff_cap)
        self.fallback_templates = dict(fallback_templates or {})
        self.on_rejected = on_rejected
        self.rejected: deque[RejectedEvent] = deque(maxlen=10_000)
        self._rng = random.Random(seed)
        self._cache: dict[tuple[Any, ...], _Entry] = {}
        self._cache_lock = threading.Lock()
        self._refreshing: set[tuple[Any, ...]] = set()
        self._buffer: deque[_Queued] = deque()
        self._unsent: list[_Queued] = []  # left behind by an abandoned sender
        self._recorded = self._finished = 0  # events in; events stored, duplicate or rejected
        self._counts = {"stored": 0, "duplicates": 0, "rejected": 0, "requests": 0,
                        "retries": 0}
        self._flush_waiters = 0
        self._closing = self._closed = False
        self._open({"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                   transport, timeout)

    def _open(self, headers: dict[str, str], transport: Any, timeout: float) -> None:
        raise NotImplementedError

    def _start_refresh(self, key: tuple[Any, ...], prompt: str, subject: str | None,
                       label: str) -> None:
        raise NotImplementedError

    @property
    def stats(self) -> DeliveryStats:
        """Return the event pipeline's counters now."""
        return DeliveryStats(recorded=self._recorded, pending=self._recorded - self._finished,
                             **self._counts)

    # -- resolve ----------------------------------------------------------------------------
    def _cached(self, prompt: str, subject: str | None, label: str) -> Resolution | None:
        key: tuple[Any, ...] = (prompt, label)
        entry = self._cache.get(key)
        if entry is not None and entry.by_subject:
            key = (prompt, label, subject)
            entry = self._cache.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if now < entry.fresh_until:
            return entry.fresh
        if now >= entry.retry_at and key not in self._refreshing:
            with self._cache_lock:  # one refresh per key, however many callers see it stale
                claimed = key not in self._refreshing
                self._refreshing.add(key)
            if claimed:
                self._start_refresh(key, prompt, subject, label)
        return entry.stale

    def _store(self, subject: str | None, res: Resolution) -> None:
        until = time.monotonic() + self.cache_ttl
        # With a rollout config the entry serves every subject; an older daemon's answer
        # that names an arm without it holds for this subject only.
        by_subject = res.deployment is not None and res.rollout is None
        entry = _Entry(res, replace(res, stale=True), until, until, by_subject)
        with self._cache_lock:
            self._cache[(res.prompt, res.label)] = entry  # a per-subject answer: the marker
            if entry.by_subject:
                self._cache[(res.prompt, res.label, subject)] = entry
            while len(self._cache) > self.cache_size:
                del self._cache[next(iter(self._cache))]

    def _refresh_failed(self, key: tuple[Any, ...], exc: Exception) -> None:
        log.warning("promptd.refresh_failed", prompt=key[0], label=key[1], error=str(exc))
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache[key] = replace(entry,
                                           retry_at=time.monotonic() + min(self.cache_ttl, 1.0))

    def _fallback(self, prompt: str, label: str, problem: PromptdError) -> Resolution:
        template = self.fallback_templates.get(prompt)
        if template is None:
            raise problem
        from improver.templates import template_variables  # deferred: importing it is slow

        log.warning("promptd.fallback_template", prompt=prompt, label=label, error=str(problem))
        res = Resolution(prompt, None, template, tuple(sorted(template_variables(template))),
                         label, from_fallback=True)
        now = time.monotonic()
        # Cached as already expired: served at once, and replaced by a background refresh
        # as soon as the daemon answers again.
        with self._cache_lock:
            self._cache[(prompt, label)] = _Entry(res, res, now, now + min(self.cache_ttl, 1.0),
                                                  False)
        return res

    def _resolve_path(self, prompt: str, subject: str | None,
                      label: str) -> tuple[str, dict[str, str]]:
        params = {"label": label} if subject is None else {"label": label, "subject": subject}
        return f"/v1/prompts/{prompt}/resolve", params

    def _resolve_answer(self, prompt: str, response: httpx.Response | Exception,
                        attempt: int, retries: int) -> Resolution | float:
        """Return the Resolution, or seconds to wait before trying again; raise when done."""
        if isinstance(response, Exception):
            problem = PromptUnavailable(f"cannot reach promptd at {self.url}: "
                                        f"{type(response).__name__}: {response}")
            retryable, retry_after = True, None
        elif response.status_code == 200:
            try:
                return resolution_from(response.json())
            except (ValueError, KeyError, TypeError) as exc:  # a 200 that is not ours
                problem = PromptUnavailable(f"resolve {prompt!r}: unreadable answer: {exc!r}")
                retryable, retry_after = False, None
        else:
            code, message, _ = _error_of(response)
            problem = PromptUnavailable(f"resolve {prompt!r}: {response.status_code} {code}: "
                                        f"{message}")
            retryable = _retryable(response.status_code)
            retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        if not retryable or attempt >= retries:
            raise problem
        # The agent is waiting: a short pause, then the fallback beats a long wait.
        return min(0.5, retry_delay(attempt, retry_after, base=self.backoff_base,
                                    cap=self.backoff_cap, rng=self._rng))

    # -- events -----------------------------------------------------------------------------
    def _encode(self, kind: type[ExecutionIn] | type[CorrectionIn],
                fields: dict[str, Any]) -> _Queued:
        fields = {k: v for k, v in fields.items() if v is not None}
        fields.setdefault("event_id", uuid7())
        fields.setdefault("occurred_at", datetime.now(UTC))  # batching delays recorded_at
        event = kind.model_validate(fields)  # a bad event fails here, at the call site
        return _Queued(fields["event_id"], event.model_dump_json(exclude_none=True).encode())

    def _admit(self, item: _Queued) -> bool:
        """Queue ``item`` (the caller holds the lock and made room); True: wake the sender."""
        if self._closing:
            raise ClientClosed("the promptd client is closed")
        self._buffer.append(item)
        self._recorded += 1
        # The first event starts the sender's flush_interval clock; a full batch goes at once.
        return len(self._buffer) == 1 or len(self._buffer) >= self.batch_size

    def _has_room(self) -> bool:
        return self._closing or self._recorded - self._finished < self.max_buffer

    def _buffer_full(self) -> BufferFull:
        return BufferFull(f"{self.max_buffer} events await delivery to {self.url}; the daemon "
                          "is unreachable or slower than the agent")

    def _plan(self, first_seen: float | None
              ) -> tuple[tuple[_Queued, ...] | None, float | None, float | None]:
        """Return (batch to send now, or None and how long to wait; -1: stop), first_seen."""
        if not self._buffer:
            return None, (-1.0 if self._closing else None), None
        now = time.monotonic()
        first_seen = first_seen or now
        wait = first_seen + self.flush_interval - now
        if len(self._buffer) >= self.batch_size or self._flush_waiters or self._closing:
            wait = 0.0
        if wait > 0:
            return None, wait, first_seen
        batch: list[_Queued] = []
        size = 0
        while self._buffer and len(batch) < self.batch_size:
            size += len(self._buffer[0].body) + 1
            if batch and size > self.max_batch_bytes:
                break
            batch.append(self._buffer.popleft())
        return tuple(batch), 0.0, None

    def _settle(self, sent: int, unsent: list[_Queued]) -> bool:
        """Account a finished batch (the caller holds the lock); True: the sender must stop."""
        self._finished += sent - len(unsent)
        if not unsent:
            return False
        self._unsent.extend((*unsent, *self._buffer))  # abandoned by close()
        self._buffer.clear()
        return True

    def _requeue(self, batch: tuple[_Queued, ...], exc: Exception) -> None:
        """Put a batch back after a fault in delivery (the caller holds the lock)."""
        log.error("promptd.sender_fault", error=repr(exc), events=len(batch))
        self._buffer.extendleft(reversed(batch))

    def _flushed(self, target: int) -> bool:
        return self._finished >= target or bool(self._unsent)

    def _check_flushed(self, target: int) -> None:
        if self._finished < target:
            raise PromptdError(f"flush: {target - self._finished} events not yet delivered "
                               f"to {self.url}")

    def _check_delivered(self, timeout: float) -> None:
        pending = [p.body for p in (*self._unsent, *self._buffer)]
        if pending:
            log.error("promptd.undelivered", events=len(pending), url=self.url)
            raise Undelivered(f"close: {len(pending)} events could not be delivered to "
                              f"{self.url} within {timeout}s", pending)

    def _report(self, rejected: RejectedEvent) -> None:
        self._counts["rejected"] += 1
        log.error("promptd.event_rejected", status=rejected.status, code=rejected.code,
                  message=rejected.message,
                  body=rejected.event[:500].decode(errors="replace"))
        self.rejected.append(rejected)
        if self.on_rejected is not None:
            try:
                self.on_rejected(rejected)
            except Exception as exc:  # the caller's hook must not stop delivery
                log.error("promptd.on_rejected_failed", error=repr(exc))


_open_clients: weakref.WeakSet[PromptdClient] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_open_clients):  # the sender is a daemon thread: deliver before exit
        try:
            client.close(timeout=5.0)
        except PromptdError as exc:
            log.error("promptd.exit_undelivered", error=str(exc))


class PromptdClient(_ClientCore):
    """The synchronous agent SDK: cached resolve, batched event delivery from a thread."""

    def _open(self, headers: dict[str, str], transport: Any, timeout: float) -> None:
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)
        self._cond = threading.Condition()
        self._abandon = threading.Event()
        self._sender: threading.Thread | None = None

    def __enter__(self) -> PromptdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, prompt: str, subject: str | None = None, *,
                label: str = "production") -> Resolution:
        """Return the version to use now: cached, stale while refreshing, or the fallback."""
        cached = self._cached(prompt, subject, label)
        if cached is not None:
            return cached.for_subject(subject)
        try:
            res = self._fetch(prompt, subject, label, retries=1)
        except PromptdError as exc:
            return self._fallback(prompt, label, exc)
        self._store(subject, res)
        return res.for_subject(subject)

    def _fetch(self, prompt: str, subject: str | None, label: str, retries: int) -> Resolution:
        path, params = self._resolve_path(prompt, subject, label)
        for attempt in range(retries + 1):
            try:
                response: httpx.Response | Exception = self._http.get(
                    path, params=params, timeout=self.resolve_timeout)
            except httpx.TransportError as exc:
                response = exc
            answer = self._resolve_answer(prompt, response, attempt, retries)
            if isinstance(answer, Resolution):
                return answer
            time.sleep(answer)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_refresh(self, key: tuple[Any, ...], prompt: str, subject: str | None,
                       label: str) -> None:
        def refresh() -> None:
            try:
                self._store(subject, self._fetch(prompt, subject, label, retries=0))
            except PromptdError as exc:
                self._refresh_failed(key, exc)
            finally:
                self._refreshing.discard(key)

        threading.Thread(target=refresh, name="promptd-refresh", daemon=True).start()

    def record_execution(self, prompt: str, version: int, **fields: Any) -> str:
        """Queue an execution event (fields as in ``ExecutionIn``); return its event id."""
        return self._enqueue(self._encode(ExecutionIn, {"prompt": prompt, "version": version,
                                                        **fields}))

    def record_correction(self, execution_id: str, prompt: str, version: int, category: str,
                          **fields: Any) -> str:
        """Queue a correction of an execution (fields as in ``CorrectionIn``); return its id."""
        return self._enqueue(self._encode(CorrectionIn, {
            "execution_id": execution_id, "prompt": prompt, "version": version,
            "category": category, **fields}))

    def execution(self, prompt: str, subject: str | None = None, *,
                  label: str = "production") -> _TimedRun:
        """Return a context manager that resolves, times the block and records its outcome."""
        return _TimedRun(self, prompt, subject, label)

    def _enqueue(self, item: _Queued) -> str:
        with self._cond:
            if not self._cond.wait_for(self._has_room, self.block_timeout):
                raise self._buffer_full()
            if self._admit(item):
                self._cond.notify_all()
            if self._sender is None:  # started on first use: a resolve-only client has none
                self._sender = threading.Thread(target=self._send_loop, name="promptd-sender",
                                                daemon=True)
                self._sender.start()
                _open_clients.add(self)
        return item.event_id

    def _send_loop(self) -> None:
        first_seen: float | None = None
        while True:
            with self._cond:
                batch, wait, first_seen = self._plan(first_seen)
                if batch is None:
                    if wait is not None and wait < 0:
                        return
                    self._cond.wait(wait)
                    continue
            try:
                unsent = self._deliver(batch)
            except Exception as exc:  # a fault must not kill the only sender: keep the batch
                with self._cond:
                    self._requeue(batch, exc)
                self._abandon.wait(self.backoff_cap)
                continue
            with self._cond:
                stop = self._settle(len(batch), unsent)
                self._cond.notify_all()
            if stop:
                return

    def _deliver(self, batch: tuple[_Queued, ...]) -> list[_Queued]:
        delivery = _Delivery(batch)
        while delivery.work:
            if self._abandon.is_set():
                return delivery.unsent()
            self._counts["requests"] += 1
            try:
                response: httpx.Response | Exception = self._http.post(
                    "/v1/events", content=delivery.body())
            except httpx.TransportError as exc:
                response = exc
            delay = delivery.answered(response, self)
            if delay is not None:
                self._abandon.wait(delay)
        return []

    def flush(self, timeout: float | None = None) -> None:
        """Return once every event recorded so far is stored or rejected; raise on timeout."""
        with self._cond:
            target = self._recorded
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: self._flushed(target), timeout)
            finally:
                self._flush_waiters -= 1
        self._check_flushed(target)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver everything recorded, stop and free the connections; raise if that failed."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout)
            if self._sender.is_alive():  # give up: interrupt the backoff, keep what is unsent
                self._abandon.set()
                self._sender.join()
        with self._cond:
            self._closed = True
        _open_clients.discard(self)
        self._http.close()
        self._check_delivered(timeout)


class _TimedRun:
    """``with client.execution(...) as run``: resolve, time the block, record the outcome."""

    def __init__(self, client: PromptdClient, prompt: str, subject: str | None,
                 label: str) -> None:
        self.client, self.prompt, self.subject, self.label = client, prompt, subject, label
        self.run: Run | None = None

    def __enter__(self) -> Run:
        self.run = Run(self.client.resolve(self.prompt, self.subject, label=self.label),
                       self.subject)
        return self.run

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.run is not None and (fields := self.run.finish(exc_type)) is not None:
            try:
                self.client.record_execution(**fields)
            except (PromptdError, ValueError) as problem:
                if exc_type is None:
                    raise
                log.error("promptd.run_not_recorded", error=str(problem))  # keep the original
            else:
                self.run.recorded = True


class AsyncPromptdClient(_ClientCore):
    """The asyncio agent SDK: ``PromptdClient``'s surface, awaitable, with a sender task."""

    def _open(self, headers: dict[str, str], transport: Any, timeout: float) -> None:
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout,
                                       transport=transport)
        self._cond = asyncio.Condition()  # binds to the running loop on first use
        self._abandon = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # refreshes, referenced so none is lost

    async def __aenter__(self) -> AsyncPromptdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def resolve(self, prompt: str, subject: str | None = None, *,
                      label: str = "production") -> Resolution:
        """Return the version to use now: cached, stale while refreshing, or the fallback."""
        cached = self._cached(prompt, subject, label)
        if cached is not None:
            return cached.for_subject(subject)
        try:
            res = await self._fetch(prompt, subject, label, retries=1)
        except PromptdError as exc:
            return self._fallback(prompt, label, exc)
        self._store(subject, res)
        return res.for_subject(subject)

    async def _fetch(self, prompt: str, subject: str | None, label: str,
                     retries: int) -> Resolution:
        path, params = self._resolve_path(prompt, subject, label)
        for attempt in range(retries + 1):
            try:
                response: httpx.Response | Exception = await self._http.get(
                    path, params=params, timeout=self.resolve_timeout)
            except httpx.TransportError as exc:
                response = exc
            answer = self._resolve_answer(prompt, response, attempt, retries)
            if isinstance(answer, Resolution):
                return answer
            await asyncio.sleep(answer)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_refresh(self, key: tuple[Any, ...], prompt: str, subject: str | None,
                       label: str) -> None:
        async def refresh() -> None:
            try:
                self._store(subject, await self._fetch(prompt, subject, label, retries=0))
            except PromptdError as exc:
                self._refresh_failed(key, exc)
            finally:
                self._refreshing.discard(key)

        task = asyncio.get_running_loop().create_task(refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def record_execution(self, prompt: str, version: int, **fields: Any) -> str:
        """Queue an execution event (fields as in ``ExecutionIn``); return its event id."""
        return await self._enqueue(self._encode(ExecutionIn, {
            "prompt": prompt, "version": version, **fields}))

    async def record_correction(self, execution_id: str, prompt: str, version: int,
                                category: str, **fields: Any) -> str:
        """Queue a correction of an execution (fields as in ``CorrectionIn``); return its id."""
        return await self._enqueue(self._encode(CorrectionIn, {
            "execution_id": execution_id, "prompt": prompt, "version": version,
            "category": category, **fields}))

    def execution(self, prompt: str, subject: str | None = None, *,
                  label: str = "production") -> _AsyncTimedRun:
        """Return an async context manager that resolves, times the block and records it."""
        return _AsyncTimedRun(self, prompt, subject, label)

    async def _enqueue(self, item: _Queued) -> str:
        async with self._cond:
            if not self._has_room():  # checked first: wait_for costs a task per call
                try:
                    await asyncio.wait_for(self._cond.wait_for(self._has_room),
                                           self.block_timeout)
                except TimeoutError:
                    raise self._buffer_full() from None
            if self._admit(item):
                self._cond.notify_all()
            if self._sender is None:
                self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        return item.event_id

    async def _send_loop(self) -> None:
        first_seen: float | None = None
        while True:
            async with self._cond:
                batch, wait, first_seen = self._plan(first_seen)
                if batch is None:
                    if wait is not None and wait < 0:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), wait)
                    continue
            try:
                unsent = await self._deliver(batch)
            except Exception as exc:  # a fault must not kill the only sender: keep the batch
                async with self._cond:
                    self._requeue(batch, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._abandon.wait(), self.backoff_cap)
                continue
            async with self._cond:
                stop = self._settle(len(batch), unsent)
                self._cond.notify_all()
            if stop:
                return

    async def _deliver(self, batch: tuple[_Queued, ...]) -> list[_Queued]:
        delivery = _Delivery(batch)
        while delivery.work:
            if self._abandon.is_set():
                return delivery.unsent()
            self._counts["requests"] += 1
            try:
                response: httpx.Response | Exception = await self._http.post(
                    "/v1/events", content=delivery.body())
            except httpx.TransportError as exc:
                response = exc
            delay = delivery.answered(response, self)
            if delay is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._abandon.wait(), delay)
        return []

    async def flush(self, timeout: float | None = None) -> None:
        """Return once every event recorded so far is stored or rejected; raise on timeout."""
        async with self._cond:
            target = self._recorded
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait_for(lambda: self._flushed(target)),
                                           timeout)
            finally:
                self._flush_waiters -= 1
        self._check_flushed(target)

    async def close(self, timeout: float = 30.0) -> None:
        """Deliver everything recorded, stop and free the connections; raise if that failed."""
        if self._closed:
            return
        async with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._sender is not None:
            done, _ = await asyncio.wait({self._sender}, timeout=timeout)
            if not done:  # give up: interrupt the backoff, keep what is unsent
                self._abandon.set()
                await asyncio.wait({self._sender})
        for task in list(self._tasks):
            task.cancel()
        self._closed = True
        await self._http.aclose()
        self._check_delivered(timeout)


class _AsyncTimedRun:
    """``async with client.execution(...) as run``: the async twin of ``_TimedRun``."""

    def __init__(self, client: AsyncPromptdClient, prompt: str, subject: str | None,
                 label: str) -> None:
        self.client, self.prompt, self.subject, self.label = client, prompt, subject, label
        self.run: Run | None = None

    async def __aenter__(self) -> Run:
        self.run = Run(await self.client.resolve(self.prompt, self.subject, label=self.label),
                       self.subject)
        return self.run

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.run is not None and (fields := self.run.finish(exc_type)) is not None:
            try:
                await self.client.record_execution(**fields)
            except (PromptdError, ValueError) as problem:
                if exc_type is None:
                    raise
                log.error("promptd.run_not_recorded", error=str(problem))  # keep the original
            else:
                self.run.recorded = True
