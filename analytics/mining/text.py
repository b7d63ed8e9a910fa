"""Turning raw correction text into what mining compares and what it shows people."""

from __future__ import annotations

import unicodedata

from analytics.mining.model import FailureRecord

TRUNCATION_MARKER = "… [truncated {dropped} chars]"


def normalise_text(text: str | None, max_chars: int) -> str:
    """Return ``text`` NFKC-normalised, lower-cased, whitespace-collapsed and cut to max_chars.

    Cutting happens before normalising so a 100 kB reason costs no more than a short one.
    No marker is added: a marker would become a shared feature of every long reason.
    """
    if not text:
        return ""
    cut = text[: max_chars * 2]  # NFKC can shrink text (ligatures), so keep some slack
    if not cut.isascii():  # NFKC leaves ASCII unchanged; skipping it saves a third
        cut = unicodedata.normalize("NFKC", cut)
    return " ".join(cut.lower().split())[:max_chars]


def meta_tokens(record: FailureRecord) -> tuple[str, ...]:
    """Return the record's category and error type as feature tokens (empty parts omitted)."""
    tokens = []
    category = normalise_label(record.category)
    if category:
        tokens.append(f"category:{category}")
    error_type = normalise_label(record.error_type)
    if error_type:
        tokens.append(f"error:{error_type}")
    return tuple(tokens)


def normalise_label(value: str | None) -> str:
    """Return a category or error type stripped and lower-cased ('' when absent)."""
    if not value:
        return ""
    if not value.isascii():
        value = unicodedata.normalize("NFKC", value)
    return " ".join(value.lower().split())[:200]


def display_text(text: str | None, max_chars: int) -> str | None:
    """Return ``text`` cut to ``max_chars`` with a visible marker saying how much was dropped.

    Lone surrogates (possible in JSON input) become "?" so the text encodes as UTF-8
    wherever the pattern is stored.
    """
    if text is None:
        return None
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARKER.format(dropped=len(text) - max_chars)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
