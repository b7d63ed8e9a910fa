"""Options, the resolve cache and event bookkeeping shared by the sync and async clients."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from service.contract import CorrectionIn, ExecutionIn
from service.contract.ids import uuid7

from ._delivery import (
    DeliveryStats,
    RejectedEvent,
    _error_of,
    _Queued,
    _retryable,
    parse_retry_after,
    retry_delay,
)
from ._log import EventLogger
from ._models import (
    BufferFull,
    ClientClosed,
    PromptdError,
    PromptUnavailable,
    Resolution,
    Undelivered,
    resolution_from,
)

log = EventLogger("promptd.sdk")


@dataclass(frozen=True, slots=True)
class _Entry:
    fresh: Resolution
    stale: Resolution
    fresh_until: float  # monotonic seconds
    retry_at: float  # no refresh before this: spaces out attempts while the daemon is down
    by_subject: bool  # the answer names a deployment arm, so it holds for one subject only


class _ClientCore:
    """Options, cache and event bookkeeping shared by the sync and async clients."""

    def __init__(self, url: str, token: str, *,
                 transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
                 timeout: float = 10.0, resolve_timeout: float = 2.0, cache_ttl: float = 30.0,
                 cache_size: int = 10_000, batch_size: int = 100,
                 max_batch_bytes: int = 900_000, flush_interval: float = 0.5,
                 max_buffer: int = 100_000, block_timeout: float = 1.0,
                 backoff_base: float = 0.05, backoff_cap: float = 5.0,
                 fallback_templates: Mapping[str, str | Sequence[Mapping[str, str]]]
                 | None = None,
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
        # OrderedDict: evicting a plain dict's oldest entry skips every slot deleted before
        # it, which grows with the number of evictions (see runtime.exporter).
        self._cache: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
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
                self._cache.popitem(last=False)

    def _refresh_failed(self, key: tuple[Any, ...], exc: Exception) -> None:
        log.warning("promptd.refresh_failed", prompt=key[0], label=key[1], error=str(exc))
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache[key] = replace(entry,
                                           retry_at=time.monotonic() + min(self.cache_ttl, 1.0))

    def _fallback(self, prompt: str, label: str, problem: PromptdError) -> Resolution:
        fallback = self.fallback_templates.get(prompt)
        if fallback is None:
            raise problem
        from improver.templates import template_variables  # deferred: importing it is slow

        log.warning("promptd.fallback_template", prompt=prompt, label=label, error=str(problem))
        if isinstance(fallback, str):
            res = Resolution(prompt, None, fallback, tuple(sorted(template_variables(fallback))),
                             label, from_fallback=True)
        else:  # a chat prompt's messages
            messages = tuple(dict(m) for m in fallback)
            names = set().union(*(template_variables(m.get("content") or "")
                                  for m in messages if m.get("role") != "placeholder"))
            res = Resolution(prompt, None, "", tuple(sorted(names)), label,
                             from_fallback=True, messages=messages)
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
