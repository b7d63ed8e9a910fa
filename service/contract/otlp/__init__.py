"""OpenTelemetry traces as agent events: OTLP/HTTP requests decoded, GenAI spans mapped.

Pure: bytes and the registry's catalogue in, ``ExecutionIn``/``CorrectionIn`` out. The
``/v1/traces`` route (``service.http.traces``) does the I/O. Decoding protobuf needs the
``opentelemetry-proto`` package (the ``server`` extra); the agent SDK never imports this.
"""

from .answers import encode_response
from .mapping import Catalogue, Price, TraceMapping, map_spans, price_of
from .protobuf import decode_protobuf
from .spans import OtlpDecodeError, Span, SpanEvent, decode_json

__all__ = [
    "Catalogue", "OtlpDecodeError", "Price", "Span", "SpanEvent", "TraceMapping", "decode_json",
    "decode_protobuf", "encode_response", "map_spans", "price_of",
]
