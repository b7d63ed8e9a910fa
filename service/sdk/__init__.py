"""The agent SDK: resolve prompts from a local cache, record what happened in batches.

``resolve()`` answers from memory; past its TTL the cached answer is still served at once
(``stale=True``) while one background refresh fetches the new one, and when the daemon cannot
be reached the caller's fallback template stands in. ``record_*`` validates an event, gives it
a UUIDv7 id and queues it; one background sender posts batches and retries transport errors,
408, 429 and 5xx with capped, jittered exponential backoff (at least ``Retry-After``) for as
long as the client is open. Appends are idempotent by event id, so a retry after a lost answer
counts nothing twice. A 4xx drops only the events it names and reports them (a log line,
``client.rejected``, ``on_rejected``); the rest of the batch is sent again.

It imports nothing of the server: installing ``promptd`` without the ``server`` extra gives
an agent this package, the event contract, the template sandbox and sticky assignment.
"""

from ._admin import AdminClient, AdminError, default_token
from ._async import AsyncPromptdClient
from ._delivery import DeliveryStats, RejectedEvent, parse_retry_after, retry_delay
from ._models import (
    BufferFull,
    ClientClosed,
    PromptdError,
    PromptUnavailable,
    Resolution,
    Rollout,
    Run,
    Undelivered,
    render,
)
from ._sync import PromptdClient

__all__ = [
    "AdminClient", "AdminError", "AsyncPromptdClient", "BufferFull", "ClientClosed",
    "DeliveryStats", "PromptUnavailable", "PromptdClient", "PromptdError", "RejectedEvent",
    "Resolution", "Rollout", "Run", "Undelivered", "default_token", "parse_retry_after",
    "render", "retry_delay",
]
