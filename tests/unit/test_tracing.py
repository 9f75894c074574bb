"""Reading and passing on W3C trace context, without OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared import tracing

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_later_version_is_read_as_version_00_and_its_extra_fields_dropped():
    context = tracing.parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next", "a=b")

    assert context == tracing.TraceContext(PARENT, "a=b")
    assert context.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("tracestate", ["x" * 513, "", "   ", 7, "a=b\r\nX-Injected: 1", "a=\u00e9"])
def test_a_tracestate_too_long_empty_not_text_or_not_printable_ascii_is_dropped(tracestate):
    assert tracing.parse(PARENT, tracestate) == tracing.TraceContext(PARENT, None)


def test_a_traced_block_runs_in_the_callers_trace_or_a_new_unsampled_one():
    with tracing.traced("step", "consumer", {"traceparent": PARENT, "tracestate": "a=b"}) as context:
        assert tracing.current() == context == tracing.TraceContext(PARENT, "a=b")
        assert tracing.stamp({"id": "1"}) == {"id": "1", "traceparent": PARENT, "tracestate": "a=b"}
        assert tracing.stamp({"traceparent": "kept"}) == {"traceparent": "kept"}
    assert tracing.current() is None
    assert tracing.stamp({"id": "1"}) == {"id": "1"}

    with tracing.traced("step", "server", {}) as first, tracing.traced("step", "server", None) as second:
        assert first.trace_id != second.trace_id
        assert first.traceparent.endswith("-00"), "nothing records it, so it is not sampled"
        assert tracing.parse(first.traceparent) == first


def test_without_an_endpoint_opentelemetry_is_never_imported():
    script = (
        "import sys\n"
        "from shared import tracing\n"
        "import shared.web.app, shared.consumer, shared.outbox, shared.worker\n"
        f"with tracing.traced('x', 'server', {{'traceparent': '{PARENT}'}}):\n"
        "    pass\n"
        "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)

    assert result.stdout.strip() == "[]"
