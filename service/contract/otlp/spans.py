"""OTLP/HTTP trace requests decoded into plain spans (JSON here, protobuf in ``protobuf.py``).

Protobuf bodies are parsed by ``opentelemetry-proto`` (``protobuf.py``). JSON follows the
OTLP/JSON rules (lowerCamelCase keys, trace and span ids as hex, 64-bit integers as
strings), which differ from protobuf's generic JSON mapping, so it is walked here directly.

Only the attributes ``keys.wanted`` names are kept; values are strings, numbers or booleans
(arrays and maps are not read by the mapping).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .keys import (
    EVALUATION_EVENT,
    EVALUATION_KEYS,
    RESOURCE_KEYS,
    wanted,
)

AttrValue = str | int | float | bool
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR
_SCALARS = ("string_value", "int_value", "double_value", "bool_value")
_JSON_SCALARS = {"stringValue": str, "intValue": int, "doubleValue": float, "boolValue": bool}


class OtlpDecodeError(ValueError):
    """The body is not an ``ExportTraceServiceRequest`` in the encoding it claims."""


class SpanEvent(NamedTuple):
    """An event recorded on a span (only evaluation results are kept)."""

    name: str
    attributes: Mapping[str, AttrValue]


class Span(NamedTuple):
    """One received span: ids as lowercase hex ('' when absent or malformed).

    A named tuple, not a dataclass: a request builds 512 of them, and a frozen dataclass
    costs five times as much to construct.
    """

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    error: bool  # status code ERROR
    attributes: Mapping[str, AttrValue]
    events: tuple[SpanEvent, ...] = ()
    resource: Mapping[str, AttrValue] = MappingProxyType({})

    @property
    def evaluated(self) -> bool:
        """Return True when the span carries an evaluation, as attributes or an event."""
        return bool(self.events) or not EVALUATION_KEYS.isdisjoint(self.attributes)


def is_evaluation(name: str, attributes: Mapping[str, AttrValue]) -> bool:
    return name == EVALUATION_EVENT or not EVALUATION_KEYS.isdisjoint(attributes)


# -- JSON ---------------------------------------------------------------------------------------

def _json_attributes(kvs: Any, keep: Callable[[str], bool]) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for kv in kvs or ():
        key = kv.get("key")
        if not isinstance(key, str) or not keep(key):
            continue
        value = kv.get("value")
        if not isinstance(value, dict):
            continue
        for member, kind in _JSON_SCALARS.items():
            if member in value:
                raw = value[member]
                if kind is int and isinstance(raw, str | int) and not isinstance(raw, bool):
                    out[key] = int(raw)  # int64 travels as a string
                elif kind is float and isinstance(raw, int | float | str):
                    out[key] = float(raw)  # "NaN", "Infinity" are allowed by protojson
                elif isinstance(raw, kind):
                    out[key] = raw
                break
    return out


def _json_id(raw: Any, size: int) -> str:
    if not isinstance(raw, str) or len(raw) != 2 * size:
        return ""
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        return ""
    return value.hex() if any(value) else ""


def _json_nanos(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return 0
    return int(raw)


def _json_error(status: Any) -> bool:
    code = status.get("code") if isinstance(status, dict) else None
    return code in (STATUS_ERROR, "STATUS_CODE_ERROR")


def decode_json(body: bytes) -> list[Span]:
    """Return the spans of an OTLP/JSON ``ExportTraceServiceRequest``."""
    try:
        request = json.loads(body)
        spans: list[Span] = []
        for resource_spans in request.get("resourceSpans") or ():
            resource = _json_attributes((resource_spans.get("resource") or {}).get("attributes"),
                                        RESOURCE_KEYS.__contains__)
            for scope_spans in resource_spans.get("scopeSpans") or ():
                for s in scope_spans.get("spans") or ():
                    events = tuple(
                        ev for ev in (SpanEvent(str(e.get("name", "")),
                                                _json_attributes(e.get("attributes"), wanted))
                                      for e in s.get("events") or ())
                        if is_evaluation(ev.name, ev.attributes))
                    spans.append(Span(
                        _json_id(s.get("traceId"), 16), _json_id(s.get("spanId"), 8),
                        _json_id(s.get("parentSpanId"), 8), str(s.get("name", "")),
                        _json_nanos(s.get("startTimeUnixNano")),
                        _json_nanos(s.get("endTimeUnixNano")), _json_error(s.get("status")),
                        _json_attributes(s.get("attributes"), wanted), events, resource))
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and non-numeric int64 strings; the others a
        # structure of the wrong shape (a list where a message belongs).
        raise OtlpDecodeError(f"not an OTLP/JSON ExportTraceServiceRequest: {exc}") from exc
    return spans
