"""W3C trace context, from an HTTP request through the outbox and the events to their handlers.

A web request runs in the trace its ``traceparent`` header names, or in a new one; every event written to
the outbox meanwhile carries that trace as the CloudEvents extension attributes ``traceparent`` and
``tracestate`` (the distributed-tracing extension), and as Kafka headers of the same names. A consumer runs
each handled event in the event's trace, so the events its handlers write carry it on: one trace follows a
vacancy to its match and on to the alert.

Spans are recorded only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then OpenTelemetry's SDK exports them
with its OTLP (HTTP/protobuf) exporter, configured by the usual ``OTEL_*`` variables. Without it nothing
of OpenTelemetry is imported and nothing is exported; the trace context is still passed on unchanged (or
started, with the sampled flag off), so that a traced caller's trace is not broken by us.

Spans carry routes, event types and ids, never personal data.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
# version-traceid-parentid-flags; a later version may add fields after these four.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?")
# W3C Trace Context: a vendor may drop a tracestate longer than this rather than pass it on.
MAX_TRACESTATE = 512
# Printable ASCII only, as the recommendation's grammar has it: a tracestate goes on into HTTP headers (a
# webhook's), where a line break would start a header of its own.
_TRACESTATE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True)
class TraceContext:
    traceparent: str
    tracestate: str | None = None

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]

    def attributes(self) -> dict[str, str]:
        """As CloudEvents extension attributes (and Kafka headers)."""
        found = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            found[TRACESTATE] = self.tracestate
        return found


def parse(traceparent: Any, tracestate: Any = None) -> TraceContext | None:
    """The trace context a ``traceparent`` names, or None when it is missing or invalid (then the receiver
    starts a new trace, as the W3C recommendation says)."""
    if not isinstance(traceparent, str):
        return None
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    readable = isinstance(tracestate, str) and len(tracestate) <= MAX_TRACESTATE and _TRACESTATE.fullmatch(tracestate)
    state = tracestate.strip() if readable else None
    # A later version is read as version 00, the one this code knows, and passed on as such.
    return TraceContext(f"00-{trace_id}-{parent_id}-{flags}", state or None)


def new_trace() -> TraceContext:
    """The start of a trace nobody records: not sampled, so that a tracer downstream need not keep it."""
    return TraceContext(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00")


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("werkbrug_trace", default=None)


def current() -> TraceContext | None:
    """The trace the running request or event handling belongs to, if any."""
    return _current.get()


def stamp(document: dict) -> dict:
    """An event document carrying the current trace as extension attributes; one that names a trace already
    keeps it."""
    context = current()
    if context is None or TRACEPARENT in document:
        return document
    return {**document, **context.attributes()}


@contextlib.contextmanager
def traced(
    name: str, kind: str, carrier: Mapping[str, Any] | None = None, attributes: Mapping[str, str] | None = None
) -> Iterator[TraceContext]:
    """Run a block as one step of the trace ``carrier`` names (its ``traceparent`` and ``tracestate``), or
    of a new trace; ``kind`` is ``server`` for a request, ``consumer`` for an event."""
    carrier = carrier or {}
    parent = parse(carrier.get(TRACEPARENT), carrier.get(TRACESTATE))
    tracer = _Exporting.tracer()
    if tracer is None:
        with _running(parent or new_trace()) as context:
            yield context
        return
    with tracer.span(name, kind, parent, attributes or {}) as context, _running(context):
        yield context


def scheduled(name: str) -> contextlib.AbstractContextManager[TraceContext]:
    """A decision a scheduler takes on its own (a check-in overdue, an alert escalated) as the root of a new
    trace, so that the events it writes, and what handlers downstream do with them, can be followed like a
    request's. Enter it only around work that may write events: a recorded trace per idle poll is noise."""
    return traced(name, "internal")


@contextlib.contextmanager
def _running(context: TraceContext) -> Iterator[TraceContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def configure(service_name: str) -> None:
    """Name the service its spans come from. Cheap and thread-free: the exporter itself is built on first
    use in each process, since its background thread would not survive gunicorn's fork."""
    _Exporting.service_name = service_name


def shutdown() -> None:
    """Send what is still buffered; a worker calls this as it stops."""
    _Exporting.shutdown()


class _Exporting:
    """OpenTelemetry, imported and set up only once the endpoint is set and a span is wanted."""

    service_name = "werkbrug"
    _lock = threading.Lock()
    _for_pid: int | None = None
    _instance: _Exporting | None = None

    @classmethod
    def tracer(cls) -> _Exporting | None:
        if not os.environ.get(ENDPOINT_VARIABLE):
            return None
        with cls._lock:
            if cls._instance is None or cls._for_pid != os.getpid():
                cls._instance, cls._for_pid = cls(cls.service_name), os.getpid()
            return cls._instance

    @classmethod
    def shutdown(cls) -> None:
        with cls._lock:
            if cls._instance is not None and cls._for_pid == os.getpid():
                cls._instance.provider.shutdown()
            cls._instance = None

    def __init__(self, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, still win: Resource.create reads them.
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._tracer = self.provider.get_tracer("werkbrug")
        self._propagator = TraceContextTextMapPropagator()
        self._kinds = {"server": SpanKind.SERVER, "consumer": SpanKind.CONSUMER, "internal": SpanKind.INTERNAL}

    @contextlib.contextmanager
    def span(
        self, name: str, kind: str, parent: TraceContext | None, attributes: Mapping[str, str]
    ) -> Iterator[TraceContext]:
        from opentelemetry import trace

        parent_context = self._propagator.extract(parent.attributes()) if parent else None
        with self._tracer.start_as_current_span(
            name, context=parent_context, kind=self._kinds[kind], attributes=dict(attributes)
        ) as span:
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier, context=trace.set_span_in_context(span))
            context = parse(carrier.get(TRACEPARENT), carrier.get(TRACESTATE))
            yield context or new_trace()

    def force_flush(self) -> bool:
        return self.provider.force_flush()
