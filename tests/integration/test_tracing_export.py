"""With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, spans go to that OTLP endpoint over HTTP: a request's span is
a child of the caller's, an event handler's a child of the request's, and the context passed on names them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shared import tracing

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def collector(monkeypatch) -> Iterator[list[ExportTraceServiceRequest]]:
    """A stand-in OTLP/HTTP collector that keeps what it is sent."""
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(tracing.ENDPOINT_VARIABLE, f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    tracing.configure("vacancy")
    yield received
    tracing.shutdown()
    server.shutdown()
    server.server_close()


def test_spans_reach_the_otlp_endpoint_and_the_context_passed_on_names_them(collector):
    with tracing.traced("POST /v1/tenants/<tenant>/vacancies", "server", {"traceparent": PARENT}) as request:
        assert request.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert request.traceparent != PARENT, "the request's own span is the parent of what follows"
        document = tracing.stamp({"id": "e-1"})
    with tracing.traced("handle nl.werkbrug.vacancy.posted", "consumer", document) as handling:
        assert handling.trace_id == request.trace_id
    tracing.shutdown()

    spans = {
        span.name: span
        for export in collector
        for resource_spans in export.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    served, handled = spans["POST /v1/tenants/<tenant>/vacancies"], spans["handle nl.werkbrug.vacancy.posted"]
    assert served.trace_id.hex() == handled.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert served.parent_span_id.hex() == "00f067aa0ba902b7"
    assert handled.parent_span_id == served.span_id
    assert request.traceparent.split("-")[2] == served.span_id.hex()
    services = {
        attribute.value.string_value
        for export in collector
        for resource_spans in export.resource_spans
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"vacancy"}
