"""The ``ExportTraceServiceResponse`` OTLP expects back, in the request's encoding."""

from __future__ import annotations

import json
from typing import Any

from .protobuf import encode_protobuf_response


def encode_response(rejected: int, message: str, *, as_json: bool) -> bytes:
    """Return an ``ExportTraceServiceResponse``; ``partial_success`` only when it says something.

    The specification: a full success leaves ``partial_success`` unset; ``rejected_spans`` 0
    with a message is a warning (here: spans ignored for want of a prompt identity).
    """
    if not as_json:
        return encode_protobuf_response(rejected, message)
    if not rejected and not message:
        return b"{}"
    partial: dict[str, Any] = {"errorMessage": message}
    if rejected:
        partial["rejectedSpans"] = str(rejected)
    return json.dumps({"partialSuccess": partial}).encode()
