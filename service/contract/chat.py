"""Chat prompts in the contract: messages, placeholders, the model config, and rendering.

A version is a text ``template`` or a list of ``messages`` (never both). Each message is a
role (system, user, assistant, tool) and a ``content`` template; a placeholder
``{"role": "placeholder", "name": "history"}`` is where the agent inserts a list of
messages when it renders (chat history, retrieved turns). Inserted messages are data: they
pass through as given and are never rendered as templates, so a user's text in the history
cannot run template code.

``config`` is the model configuration a version carries (model, temperature, max_tokens,
response_format, tools, ...): free-form JSON, an object of at most ``MAX_CONFIG_BYTES``.

``render_messages`` is the one renderer of chat prompts (the SDK's and the daemon's): every
message renders in the template sandbox; the render budget's output and CPU seconds are
shared by the whole prompt, and each message's work is metered under its step budget.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .fields import MAX_TEMPLATE, Strict

if TYPE_CHECKING:
    from improver.render_budget import RenderBudget

MAX_MESSAGES = 50
MAX_CONFIG_BYTES = 16_384
PLACEHOLDER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
Role = Literal["system", "user", "assistant", "tool", "placeholder"]


class ChatMessage(Strict):
    """One message of a chat prompt: a role and a content template, or a placeholder."""

    role: Role = Field(description="system, user, assistant, tool, or placeholder")
    content: Annotated[str, Field(max_length=MAX_TEMPLATE, validate_default=True, description=(
        "the message's template (sandboxed Jinja2); empty for a placeholder"))] = ""
    name: Annotated[str | None, Field(max_length=64, description=(
        "a placeholder's name (the keyword the agent passes the inserted messages with); "
        "for other roles the API's optional participant name"))] = None

    @field_validator("content")
    @classmethod
    def _content(cls, value: str, info: ValidationInfo) -> str:
        role = info.data.get("role")
        if role == "placeholder" and value:
            raise ValueError("a placeholder has no content: the agent inserts messages there "
                             "when it renders")
        if role != "placeholder" and not value.strip():
            raise ValueError(f"a {role} message needs a non-empty content")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("role") == "placeholder" and (
                not value or not PLACEHOLDER_NAME_RE.match(value)):
            raise ValueError("a placeholder needs a name: letters, digits and '_', not "
                             "starting with a digit (e.g. 'history')")
        return value

    def to_json(self) -> dict[str, str]:
        """Return the message as the API answers it (a placeholder: role and name only)."""
        if self.role == "placeholder":
            return {"role": self.role, "name": self.name or ""}
        out = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
        return out

    @model_validator(mode="after")
    def _named_placeholder(self) -> ChatMessage:
        if self.role == "placeholder" and self.name is None:
            raise ValueError("name: a placeholder needs a name (e.g. 'history')")
        return self


def _messages(value: list[ChatMessage]) -> list[ChatMessage]:
    names = [m.name for m in value if m.role == "placeholder"]
    if len(set(names)) != len(names):
        raise ValueError("each placeholder name at most once")
    if sum(len(m.content) for m in value) > MAX_TEMPLATE:
        raise ValueError(f"the messages' contents add up to more than {MAX_TEMPLATE:,} chars")
    if all(m.role == "placeholder" for m in value):
        raise ValueError("a chat prompt needs at least one message with content")
    return value


Messages = Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_MESSAGES),
                     AfterValidator(_messages)]


def _finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not JSON (NaN and Infinity are not numbers "
                         "in JSON)")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite(item, f"{where}[{index}]")
    elif isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: must not contain NUL (\\x00) characters")


def _config(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    _finite(value, "config")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"config is {size:,} bytes of JSON, over the {MAX_CONFIG_BYTES:,}-"
                         "byte limit")
    return value


ModelConfig = Annotated[dict[str, JsonValue], AfterValidator(_config), Field(description=(
    "the model configuration this version runs with (model, temperature, max_tokens, "
    f"response_format, tools, ...): a JSON object of at most {MAX_CONFIG_BYTES:,} bytes"))]


class ChatContent(Strict):
    """What a version holds: a text ``template`` or chat ``messages``, and a ``config``."""

    template: Annotated[str | None, Field(min_length=1, max_length=MAX_TEMPLATE, description=(
        "a text prompt's template (give this or messages)"))] = None
    messages: Messages | None = Field(None, description="a chat prompt's messages")
    config: ModelConfig | None = Field(None, description=(
        "the model configuration this version runs with (model, temperature, ...)"))

    @model_validator(mode="after")
    def _one_kind(self) -> ChatContent:
        if (self.template is None) == (self.messages is None):
            raise ValueError("give either template (a text prompt) or messages (a chat "
                             "prompt)")
        return self


def _insert(name: str, value: Any) -> list[dict[str, Any]]:
    from improver.templates import TemplateError

    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TemplateError(f"placeholder {name!r}: insert a list of messages, not "
                            f"{type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("role"), str):
            raise TemplateError(f"placeholder {name!r}: item {index} is not a message (a "
                                "mapping with a 'role')")
        out.append(dict(item))
    return out


def render_messages(messages: Sequence[Mapping[str, Any]], values: Mapping[str, Any], *,
                    budget: RenderBudget | None = None,
                    clock: Callable[[], float] | None = None) -> list[dict[str, Any]]:
    """Return the messages an OpenAI-compatible chat API takes, rendered in the sandbox.

    ``values`` holds the variables and, under each placeholder's name, the list of messages
    to insert there. A missing variable or insert raises ``MissingVariableError``; the
    budget's output chars and seconds (with a ``clock``) hold for all messages together.
    """
    from improver.render_budget import DEFAULT_BUDGET
    from improver.templates import MissingVariableError, RenderBudgetExceeded, render_template

    budget = budget or DEFAULT_BUDGET
    out: list[dict[str, Any]] = []
    written = 0
    started = clock() if clock is not None else 0.0
    for m in messages:
        role, name = str(m["role"]), m.get("name")
        if role == "placeholder":
            if name not in values:
                raise MissingVariableError(str(name), f"placeholder {name!r}: no messages "
                                           "given to insert (pass [] for none)")
            out.extend(_insert(str(name), values[name]))
            continue
        left_chars = budget.max_output_chars - written
        if left_chars < 1:
            raise RenderBudgetExceeded("max_output_chars", budget.max_output_chars,
                                       "render blocked: the messages' output reached "
                                       f"{budget.max_output_chars:,} chars")
        part: RenderBudget = replace(budget, max_output_chars=left_chars)
        if clock is not None:
            left_s = budget.max_seconds - (clock() - started)
            if left_s <= 0:
                raise RenderBudgetExceeded("max_seconds", budget.max_seconds,
                                           f"render blocked: over {budget.max_seconds:g} s")
            part = replace(part, max_seconds=left_s)
        text = render_template(str(m.get("content") or ""), values, budget=part, clock=clock)
        written += len(text)
        rendered: dict[str, Any] = {"role": role, "content": text}
        if name:
            rendered["name"] = name
        out.append(rendered)
    return out


__all__ = ["MAX_CONFIG_BYTES", "MAX_MESSAGES", "ChatContent", "ChatMessage", "Messages",
           "ModelConfig", "render_messages"]
