"""OTLP/HTTP trace ingest: ``POST /v1/traces`` turns GenAI spans into agent events.

The exchange is the one the OpenTelemetry specification defines for OTLP/HTTP: a binary
protobuf or JSON ``ExportTraceServiceRequest``, optionally gzip-compressed, answered in the
same encoding with an ``ExportTraceServiceResponse`` whose ``partial_success`` counts the
spans promptd could not use. Spans become events through the pure mapping in
``service.contract.otlp``; event ids are ``trace_id:span_id``, so an exporter's retry of the
same batch stores nothing twice. Overload answers 503 with ``Retry-After``, which exporters
retry (the app's handler for ``WriterBusy``).
"""

from __future__ import annotations

import time
import zlib
from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.contract import payload_of
from service.contract.otlp import (
    Catalogue,
    OtlpDecodeError,
    Price,
    decode_json,
    decode_protobuf,
    encode_response,
    map_spans,
)
from service.http.deps import DaemonDep, require_agent
from service.http.errors import ApiError, error_responses
from service.projections.views import RegistryView
from service.runtime.daemon import Daemon
from service.store.eventlog import NewEvent

router = APIRouter(prefix="/v1", tags=["opentelemetry"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_OTLP_BODY = {
    "description": "an OTLP ExportTraceServiceRequest (binary protobuf, or OTLP/JSON); "
                   "Content-Encoding: gzip is accepted",
    "required": True,
    "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                JSON: {"schema": {"type": "object"}}},
}
_OTLP_ANSWER = {
    200: {"description": "ExportTraceServiceResponse in the request's encoding; "
                         "partial_success counts rejected spans and says why",
          "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                      JSON: {"schema": {"type": "object"}}}},
    415: {"description": "Content-Type is neither application/x-protobuf nor application/json,"
                         " or Content-Encoding is neither gzip nor identity"},
}


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type", "")
    media = raw.split(";", 1)[0].strip().lower()
    return media if media in (PROTOBUF, JSON) else None


def _decompressed(body: bytes, encoding: str, limit: int) -> bytes:
    """Return the body as sent before compression; 413 past ``limit`` bytes, however small
    the compressed body was (a gzip bomb stops at the limit, not at the end of memory)."""
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise ApiError(415, "unsupported_encoding",
                       f"Content-Encoding {encoding!r}: only gzip or identity")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise ApiError(413, "body_too_large",
                           f"request body exceeds {limit} bytes once decompressed")
        if not inflater.eof:
            raise ApiError(400, "bad_request", "gzip body is truncated")
    except zlib.error as exc:
        raise ApiError(400, "bad_request", f"gzip body cannot be decompressed: {exc}") from exc
    return out


def _catalogue(request: Request, daemon: Daemon) -> Catalogue:
    """Return the registry as the mapping reads it, rebuilt only when the registry changed."""
    registry = daemon.live.registry
    cached: tuple[RegistryView, Catalogue] | None = getattr(request.app.state,
                                                            "otlp_catalogue", None)
    if cached is not None and cached[0] is registry:
        return cached[1]
    templates: dict[str, tuple[str, int]] = {}
    ambiguous: set[str] = set()
    for (prompt, version), info in registry.versions.items():
        if info.template in templates:
            ambiguous.add(info.template)  # two versions share the text: it names neither
        templates[info.template] = (prompt, version)
    for text in ambiguous:
        del templates[text]
    catalogue = Catalogue(registry.prompts, registry.versions, templates)
    request.app.state.otlp_catalogue = (registry, catalogue)
    return catalogue


def _prices(daemon: Daemon) -> dict[str, Price]:
    return {model: Price(p["input"], p["output"])
            for model, p in daemon.settings.otlp_prices.items()}


@router.post("/traces", summary="Ingest OpenTelemetry GenAI spans (OTLP/HTTP)",
             openapi_extra={"requestBody": _OTLP_BODY, "security": [{"bearer": []}]},
             response_class=Response,
             responses={**_OTLP_ANSWER, **error_responses(400, 401, 413, 503)})
async def post_traces(request: Request, daemon: DaemonDep) -> Response:
    """Store model-call spans as executions and failing evaluations as corrections.

    Spans without a prompt identity are ignored (counted); spans naming an unknown prompt or
    version are rejected in ``partial_success``, never the whole batch.
    """
    started = time.perf_counter()
    # The body is read before the token is checked, as FastAPI does for every route with a
    # body model: an oversized body is 413 for anyone (RequestGuard stops it while reading).
    raw = await request.body()
    await require_agent(request)
    media = _media_type(request)
    if media is None:
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type must be {PROTOBUF} or {JSON}")
    limit = daemon.settings.max_body_bytes
    body = _decompressed(raw, request.headers.get("content-encoding", "").strip().lower(),
                         limit)
    try:
        spans = decode_json(body) if media == JSON else decode_protobuf(body)
    except OtlpDecodeError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    mapping = map_spans(spans, _catalogue(request, daemon), _prices(daemon))
    mapping.keep_within(*daemon.settings.occurred_window(daemon.clock()))
    events = [*mapping.executions, *mapping.corrections]  # executions first: corrections cite them
    if events:
        batch: list[NewEvent] = [daemon.agent_event(e.type, payload_of(e), event_id=e.event_id)
                                 for e in events]
        results = await daemon.writer.submit_async(batch)
        tally = Counter((e.type, "duplicate" if r.duplicate else "stored")
                        for e, r in zip(events, results, strict=True))
        for (event_type, result), n in tally.items():
            daemon.metrics.events_ingested.labels(event_type, result).inc(n)
    for (result, reason), n in mapping.spans.items():
        daemon.metrics.otlp_spans.labels(result, reason).inc(n)
    for result, n in mapping.evaluations.items():
        daemon.metrics.otlp_evaluations.labels(result).inc(n)
    daemon.metrics.ingest_seconds.labels("/v1/traces").observe(time.perf_counter() - started)
    return Response(encode_response(mapping.rejected, mapping.message(), as_json=media == JSON),
                    media_type=media)
