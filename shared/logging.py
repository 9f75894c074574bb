"""Structured JSON logging, set up once per process.

Personal data never reaches a log line: call sites pass only pseudonymous ids, tenants, event types and
counts through ``extra={"ctx": {...}}``, and the formatter drops every other extra attribute instead of
serialising whatever a caller happened to attach.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from sqlalchemy.exc import StatementError

from shared.db import describe_error

# The only context keys a log line may carry. Anything else is dropped rather than trusted.
ALLOWED_CONTEXT_KEYS = frozenset(
    {
        "service",
        "tenant",
        "event_id",
        "event_type",
        "topic",
        "partition",
        "offset",
        "count",
        "candidate_id",
        "vacancy_id",
        "placement_id",
        "alert_id",
        "delivery_id",
        "status",
        "attempt",
        "error",
        "duration_ms",
        "route",
        "method",
        "reason",
        "group",
        "port",
    }
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = getattr(record, "ctx", None)
        if isinstance(ctx, dict):
            line.update({k: v for k, v in ctx.items() if k in ALLOWED_CONTEXT_KEYS})
        if record.exc_info:
            # The exception class and message, not the traceback's local values; of a database error only
            # the class and SQLSTATE, since the database's own text quotes the values it refused.
            exc_type, exc, _ = record.exc_info
            if isinstance(exc, StatementError):
                line["exception"] = describe_error(exc)
            else:
                line["exception"] = f"{exc_type.__name__}: {exc}" if exc_type else str(exc)
        return json.dumps(line, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python logs every refused connection as an error while a broker restarts; the outbox relay
    # and the consumer loop report what matters (that they wait, and why) in their own lines.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    for noisy in ("werkzeug", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
