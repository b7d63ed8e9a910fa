"""Chat prompts as the improver sees them: messages, placeholders, and their plain text.

A chat prompt is a list of messages, each a role and a content template (sandboxed Jinja2,
exactly like a text prompt), and placeholders: named slots where the agent inserts a list
of messages when it renders (chat history, retrieved turns). A placeholder is written
``{"role": "placeholder", "name": "history"}``; what is inserted there is data, passed
through as given and never rendered as a template.

Strategies edit contents, never roles' meaning: rules go into the system message, a worked
example becomes a user/assistant pair, layouts reorder the text inside a message. So the
one structural change a candidate may make is inserting user/assistant pairs
(``keeps_structure``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from improver.templates import TemplateError, parse_template

ROLES = ("system", "user", "assistant", "tool")
PLACEHOLDER = "placeholder"


class MessageError(TemplateError):
    """A message of a chat prompt that does not parse; ``index`` says which."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"messages[{index}].content: {message}")
        self.index = index
        self.reason = message


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a chat prompt: a role and a content template, or a placeholder."""

    role: str
    content: str = ""
    name: str | None = None  # a placeholder's insert; for a message, the API's optional name

    @property
    def is_placeholder(self) -> bool:
        """Return whether this is a slot for inserted messages rather than a template."""
        return self.role == PLACEHOLDER

    def to_json(self) -> dict[str, str]:
        """Return the message as the API and the log write it."""
        if self.is_placeholder:
            return {"role": PLACEHOLDER, "name": self.name or ""}
        out = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
        return out


def messages_from(data: Iterable[Mapping[str, Any]]) -> tuple[Message, ...]:
    """Return the messages of their JSON form (``{"role", "content", "name"}`` each)."""
    return tuple(Message(str(m["role"]), str(m.get("content") or ""),
                         str(m["name"]) if m.get("name") else None) for m in data)


def messages_json(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Return the JSON form of messages."""
    return [m.to_json() for m in messages]


def chat_source(messages: Sequence[Message]) -> str:
    """Return the chat prompt as one text, each message under a ``[role]`` line.

    What hashing, diffs and anything that reads a prompt's words (a world deciding whether
    it carries guidance, a language guess) see of a chat prompt.
    """
    parts = []
    for m in messages:
        if m.is_placeholder:
            parts.append(f"[placeholder {m.name}]")
        else:
            head = f"[{m.role} {m.name}]" if m.name else f"[{m.role}]"
            parts.append(f"{head}\n{m.content}")
    return "\n\n".join(parts)


def chat_text(messages: Sequence[Message]) -> str:
    """Return the contents of the templated messages, joined by blank lines."""
    return "\n\n".join(m.content for m in messages if not m.is_placeholder)


def chat_variables(messages: Sequence[Message]) -> frozenset[str]:
    """Return the variables every message reads; ``MessageError`` names one that fails."""
    names: set[str] = set()
    for index, m in enumerate(messages):
        if m.is_placeholder:
            continue
        try:
            names |= parse_template(m.content).variables
        except TemplateError as exc:
            raise MessageError(index, str(exc)) from None
    return frozenset(names)


def placeholders(messages: Sequence[Message]) -> tuple[str, ...]:
    """Return the placeholders' names, in order."""
    return tuple(m.name or "" for m in messages if m.is_placeholder)


def system_index(messages: Sequence[Message]) -> int | None:
    """Return the index of the first system message, or None."""
    return next((i for i, m in enumerate(messages) if m.role == "system"), None)


def with_content(messages: Sequence[Message], index: int, content: str) -> tuple[Message, ...]:
    """Return the messages with one message's content replaced."""
    out = list(messages)
    out[index] = Message(out[index].role, content, out[index].name)
    return tuple(out)


def _shape(m: Message) -> str:
    return f"{PLACEHOLDER}:{m.name}" if m.is_placeholder else m.role


def keeps_structure(parent: Sequence[Message], candidate: Sequence[Message]) -> bool:
    """Return whether ``candidate`` is ``parent``'s conversation with user/assistant pairs added.

    Roles keep their order and meaning and every placeholder stays where it was; the only
    structural edits a strategy may make are worked examples (a user turn and its answer)
    and, when the parent has none, a system message first (where rules go).
    """
    p = tuple(_shape(m) for m in parent)
    c = tuple(_shape(m) for m in candidate)
    if c[:1] == ("system",) and "system" not in p:
        c = c[1:]

    @cache
    def fits(i: int, j: int) -> bool:
        if j == len(c):
            return i == len(p)
        if i < len(p) and p[i] == c[j] and fits(i + 1, j + 1):
            return True
        return c[j:j + 2] == ("user", "assistant") and fits(i, j + 2)

    return fits(0, 0)


def changed_parts(before: Sequence[Message] | None, after: Sequence[Message] | None,
                  before_config: Mapping[str, Any] | None = None,
                  after_config: Mapping[str, Any] | None = None) -> list[str]:
    """Return which parts differ between two versions: messages by index and role, config keys.

    A text version counts as having no messages; messages present on one side only are
    "added" or "removed" (compared by position).
    """
    parts: list[str] = []
    a, b = list(before or ()), list(after or ())
    if (before is None) != (after is None):
        parts.append("text template became messages" if after is not None
                     else "messages became a text template")
    else:
        for i in range(max(len(a), len(b))):
            if i >= len(a):
                parts.append(f"messages[{i}] ({_shape(b[i])}) added")
            elif i >= len(b):
                parts.append(f"messages[{i}] ({_shape(a[i])}) removed")
            elif a[i] != b[i]:
                parts.append(f"messages[{i}] ({_shape(b[i])})")
    ca, cb = dict(before_config or {}), dict(after_config or {})
    for key in sorted(set(ca) | set(cb)):
        if json.dumps(ca.get(key), sort_keys=True) != json.dumps(cb.get(key), sort_keys=True):
            parts.append(f"config.{key}")
    return parts
