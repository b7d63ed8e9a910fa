"""The public contract: what agents and admins send, validated before it reaches the log.

Agent events (``ExecutionIn``, ``CorrectionIn``, ``EventBatch``) are schema version 1; the
request bodies of the admin API live beside them. The SDK and the daemon both import this
package, and nothing in it imports the server.
"""

from .agent import AgentEvent, CorrectionIn, EventBatch, ExecutionIn, payload_of
from .bodies import (
    CommandBody,
    DeploymentCreate,
    LabelProtect,
    LabelSet,
    PolicyBody,
    PromptCreate,
    RenderRequest,
    RollbackBody,
    TokenIssue,
    VersionCreate,
)
from .fields import (
    MAX_TEMPLATE,
    MAX_TEXT,
    MAX_VERSION,
    PROMPT_NAME_RE,
    SCHEMA_VERSION,
    SEVERITY_WEIGHT,
    PromptName,
)
from .ids import uuid7

__all__ = [
    "MAX_TEMPLATE", "MAX_TEXT", "MAX_VERSION", "PROMPT_NAME_RE", "SCHEMA_VERSION",
    "SEVERITY_WEIGHT", "AgentEvent", "CommandBody", "CorrectionIn", "DeploymentCreate",
    "EventBatch", "ExecutionIn", "LabelProtect", "LabelSet", "PolicyBody", "PromptCreate",
    "PromptName", "RenderRequest", "RollbackBody", "TokenIssue", "VersionCreate",
    "payload_of", "uuid7",
]
