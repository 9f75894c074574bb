"""Log lines are JSON and carry only the context keys on the allow-list: never personal data."""

from __future__ import annotations

import json
import logging

from shared.logging import JsonFormatter


def _format(**ctx) -> dict:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "something happened", None, None)
    record.ctx = ctx
    return json.loads(JsonFormatter("candidate").format(record))


def test_log_lines_are_json_with_service_and_level():
    line = _format(tenant="achterhoek", event_id="e-1")
    assert line["service"] == "candidate"
    assert line["level"] == "info"
    assert line["tenant"] == "achterhoek"
    assert line["event_id"] == "e-1"


def test_context_keys_off_the_allow_list_are_dropped():
    line = _format(display_name="Tulp", talents=["planten"], support_needs=["quiet_workplace"], email="x@y.nl")
    text = json.dumps(line)
    for value in ("Tulp", "planten", "quiet_workplace", "x@y.nl"):
        assert value not in text


def test_an_exception_is_logged_by_class_and_message_not_by_traceback_locals():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(JsonFormatter("vacancy").format(record))
    assert line["exception"] == "ValueError: boom"
    assert "Traceback" not in json.dumps(line)
