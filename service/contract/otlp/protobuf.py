"""Binary OTLP: ``ExportTraceServiceRequest`` bodies decoded, ``ExportTraceServiceResponse``
answers encoded, with the messages ``opentelemetry-proto`` generates from OTLP's own
``.proto`` files (run by protobuf's C runtime).

Only the attributes ``keys.wanted`` names are read; values are strings, numbers or booleans
(arrays and maps are not read by the mapping).
"""

from __future__ import annotations

from typing import Any

from .keys import EVALUATION_PREFIX, EXPECTED_KIND, RESOURCE_KEYS, SPAN_KEYS, wanted
from .spans import AttrValue, OtlpDecodeError, Span, SpanEvent, is_evaluation

STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR
_SCALARS = ("string_value", "int_value", "double_value", "bool_value")


def _attributes(kvs: Any, keep: Any) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for kv in kvs:
        key = kv.key
        if keep(key):
            value = kv.value
            kind = value.WhichOneof("value")
            if kind in _SCALARS:
                out[key] = getattr(value, kind)
    return out


def _span_attributes(kvs: Any) -> dict[str, AttrValue]:
    # The hot loop of decoding (a dozen attributes per span, 512 spans per request). Each
    # access to a protobuf field costs a fraction of a microsecond in Python, so the key test
    # is inlined and a wanted value is read from the field its key is usually written with;
    # only when that field is empty (another type was sent, or a zero) is WhichOneof asked.
    out: dict[str, AttrValue] = {}
    keys, prefix, scalars, expected = SPAN_KEYS, EVALUATION_PREFIX, _SCALARS, EXPECTED_KIND
    for kv in kvs:
        key = kv.key
        if key in keys or key.startswith(prefix):
            value = kv.value
            field = expected.get(key)
            if field is not None:
                found = getattr(value, field)
                if found:
                    out[key] = found
                    continue
            kind = value.WhichOneof("value")
            if kind in scalars:
                out[key] = getattr(value, kind)
    return out


def _id(raw: bytes, size: int) -> str:
    return raw.hex() if len(raw) == size and any(raw) else ""


def decode_protobuf(body: bytes) -> list[Span]:
    """Return the spans of a binary ``ExportTraceServiceRequest``."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise OtlpDecodeError(f"not a protobuf ExportTraceServiceRequest: {exc}") from exc
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes, RESOURCE_KEYS.__contains__)
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                events: tuple[SpanEvent, ...] = ()
                if s.events:
                    decoded = (SpanEvent(e.name, _attributes(e.attributes, wanted))
                               for e in s.events)
                    events = tuple(e for e in decoded if is_evaluation(e.name, e.attributes))
                parent = s.parent_span_id
                spans.append(Span(
                    _id(s.trace_id, 16), _id(s.span_id, 8),
                    parent.hex() if len(parent) == 8 else "", s.name, s.start_time_unix_nano,
                    s.end_time_unix_nano, s.status.code == STATUS_ERROR,
                    _span_attributes(s.attributes), events, resource))
    return spans


def encode_protobuf_response(rejected: int, message: str) -> bytes:
    """Return a binary ``ExportTraceServiceResponse`` (``partial_success`` only if needed)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return response.SerializeToString()
