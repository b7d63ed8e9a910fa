"""Real OpenTelemetry clients pointed at a daemon, and a loopback proxy that can lose answers.

The proxy relays HTTP/1.1 requests to the daemon and records every answer; told to, it
drops the connection after the daemon answered, before the client reads it: the exporter
sees a connection error and sends the same batch again, as after a network fault.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def exporter(url: str, token: str, *, encoding: str = "protobuf",
             gzip: bool = False) -> SpanExporter:
    """Return the official OTLP/HTTP span exporter for ``url``, with the agent's token."""
    headers = {"Authorization": f"Bearer {token}"}
    endpoint = f"{url}/v1/traces"
    if encoding == "json":
        from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression

        return JsonSpanExporter(endpoint=endpoint, headers=headers, timeout=30,
                                compression=JsonCompression.GZIP if gzip else JsonCompression.NONE)
    return OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=30,
                            compression=Compression.Gzip if gzip else Compression.NoCompression)


@dataclass
class Agent:
    """A tracer provider exporting in batches to promptd, and an in-memory copy of its spans."""

    provider: TracerProvider
    memory: InMemorySpanExporter

    def flush(self) -> None:
        """Export everything finished so far; raise if the exporter could not."""
        assert self.provider.force_flush(30_000), "the span processor did not flush"


def agent_provider(span_exporter: SpanExporter, service: str = "support-bot") -> Agent:
    """Return an agent's tracer provider with the SDK's default batch processor."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    memory = InMemorySpanExporter()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(memory))
    return Agent(provider, memory)


@dataclass
class Answer:
    """One answer the daemon gave through the proxy."""

    status: int
    headers: dict[str, str]
    body: bytes
    delivered: bool


@dataclass
class Proxy:
    """A loopback relay to ``upstream``; ``drop_next`` answers are lost after the daemon sent
    them."""

    upstream: tuple[str, int]
    url: str = ""
    drop_next: int = 0
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)


def _read_message(conn: socket.socket, buffer: bytearray) -> bytes | None:
    """Return one HTTP/1.1 message with a Content-Length body (None when the peer closed)."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buffer) < head_end + length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    message = bytes(buffer[:head_end + length])
    del buffer[:head_end + length]
    return message


def _parse_answer(raw: bytes, delivered: bool) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, delivered)


def _relay(proxy: Proxy, client: socket.socket) -> None:
    with client, socket.create_connection(proxy.upstream) as upstream:
        inbound, outbound = bytearray(), bytearray()
        while (request := _read_message(client, inbound)) is not None:
            upstream.sendall(request)
            answer = _read_message(upstream, outbound)
            if answer is None:
                return
            with proxy._lock:
                drop = proxy.drop_next > 0
                proxy.drop_next -= drop
                proxy.answers.append(_parse_answer(answer, not drop))
            if drop:
                return  # the daemon answered; the client never hears it
            client.sendall(answer)


@contextmanager
def answer_losing_proxy(url: str) -> Iterator[Proxy]:
    """Serve a ``Proxy`` to the daemon at ``url`` for the duration of the block."""
    host, port = url.removeprefix("http://").split(":")
    proxy = Proxy((host, int(port)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    proxy.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_relay, args=(proxy, client), daemon=True).start()

    thread = threading.Thread(target=serve, name="otlp-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(5)
        listener.close()
