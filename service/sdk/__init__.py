"""The agent SDK: resolve prompts from a local cache and report what happened.

It imports nothing of the server: installing ``promptd`` without the ``server`` extra gives
an agent this package, the event contract, the template sandbox and sticky assignment.
"""

from ._client import (
    AsyncPromptdClient,
    BufferFull,
    ClientClosed,
    DeliveryStats,
    PromptdClient,
    PromptdError,
    PromptUnavailable,
    RejectedEvent,
    Resolution,
    Rollout,
    Run,
    Undelivered,
    parse_retry_after,
    render,
    retry_delay,
)

__all__ = [
    "AsyncPromptdClient", "BufferFull", "ClientClosed", "DeliveryStats", "PromptUnavailable",
    "PromptdClient", "PromptdError", "RejectedEvent", "Resolution", "Rollout", "Run",
    "Undelivered", "parse_retry_after", "render", "retry_delay",
]
