"""One trace follows a vacancy to its alert: the W3C ``traceparent`` of the employer's POST reaches the
vacancy's event, the match matching proposes from it, and the alert notification raises from that.

The services' apps, databases, outboxes, relays and consumer loops are the real ones; the broker is the
in-memory double (tests/contract keeps it in step with Kafka). Nothing here sets
``OTEL_EXPORTER_OTLP_ENDPOINT``, so the context is passed on without OpenTelemetry.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from services.matching.worker import handler_table as matching_handlers
from services.notification.handlers import Timing
from services.notification.worker import handler_table as notification_handlers
from shared import tracing
from shared.events import EventType, decode_message
from shared.outbox import OutboxRelay
from shared.topics import Topic
from tests.doubles.memory_broker import MemoryBroker, drain
from tests.e2e.payloads import GARDENER, GREEN_VACANCY
from tests.integration.conftest import bearer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def relay(app, broker: MemoryBroker) -> None:
    OutboxRelay(app.db, app.store.outbox, broker.make_producer()).publish_batch()


def consume(app, broker: MemoryBroker, topics: list[Topic], handlers) -> int:
    return drain(broker, app, topics, handlers, group=f"test-{uuid.uuid4().hex[:8]}")


def events_of(broker: MemoryBroker, topic: Topic, event_type: str) -> list:
    found = []
    for message in broker.messages(str(topic)):
        if message.value is not None and json.loads(message.value)["type"] == event_type:
            found.append(message)
    return found


@pytest.fixture
def apps(service, keys):
    return {name: service(name) for name in ("candidate", "vacancy", "matching", "notification")}


def test_the_trace_of_a_posted_vacancy_reaches_its_match_and_the_alert(apps, keys, tenant, memory_broker):
    registered = apps["candidate"].client.post(
        f"/v1/tenants/{tenant}/candidates", json=GARDENER, headers=bearer(keys["jobcoach"])
    )
    assert registered.status_code == 201
    posted = apps["vacancy"].client.post(
        f"/v1/tenants/{tenant}/vacancies",
        json=GREEN_VACANCY,
        headers={**bearer(keys["employer"]), "traceparent": TRACEPARENT, "tracestate": "vendor=opaque"},
    )
    assert posted.status_code == 201
    relay(apps["candidate"], memory_broker)
    relay(apps["vacancy"], memory_broker)

    [vacancy_message] = events_of(memory_broker, Topic.VACANCY_EVENTS, EventType.VACANCY_POSTED)
    vacancy_event = decode_message(vacancy_message.value, vacancy_message.headers)
    assert vacancy_event.extensions == {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque"}
    assert dict(vacancy_message.headers)["traceparent"] == TRACEPARENT.encode()
    assert dict(vacancy_message.headers)["content-type"] == b"application/cloudevents+json"
    [candidate_message] = events_of(memory_broker, Topic.CANDIDATE_EVENTS, EventType.CANDIDATE_REGISTERED)
    candidate_trace = decode_message(candidate_message.value).extensions["traceparent"]
    assert tracing.parse(candidate_trace).trace_id != TRACE_ID, "a request without a traceparent starts its own"

    # The candidate first: the vacancy's arrival is then what proposes the match, in the vacancy's trace. (The
    # other way round, the candidate's registration would propose it, in the registration's trace.)
    handlers = matching_handlers(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))
    assert consume(apps["matching"], memory_broker, [Topic.CANDIDATE_EVENTS], handlers) == 1
    assert consume(apps["matching"], memory_broker, [Topic.VACANCY_EVENTS], handlers) == 1
    relay(apps["matching"], memory_broker)
    [match_message] = events_of(memory_broker, Topic.MATCH_EVENTS, EventType.MATCH_PROPOSED)
    match_event = decode_message(match_message.value, match_message.headers)
    assert match_event.data["vacancy_id"] == posted.get_json()["id"]
    assert match_event.extensions["traceparent"] == TRACEPARENT, "passed on unchanged when nothing records spans"

    handlers = notification_handlers(Timing())
    assert consume(apps["notification"], memory_broker, [Topic.CANDIDATE_EVENTS], handlers) == 1
    assert consume(apps["notification"], memory_broker, [Topic.MATCH_EVENTS], handlers) == 1
    relay(apps["notification"], memory_broker)
    [alert_message] = events_of(memory_broker, Topic.ALERT_EVENTS, EventType.ALERT_RAISED)
    alert_event = decode_message(alert_message.value, alert_message.headers)
    assert alert_event.data["alert_type"] == "match_proposed"
    # Beside the trace, the time the vacancy's POST set the chain off (tests/integration/test_origin_time.py).
    assert alert_event.extensions == {
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=opaque",
        "origintime": match_event.extensions["origintime"],
    }
    # The alert keeps the trace for its webhook (tests/integration/test_notification_delivery.py sends it).
    alerts = apps["notification"].store.alerts
    with apps["notification"].db.session() as session:
        stored = session.execute(sa.select(alerts.c.traceparent, alerts.c.tracestate)).one()
    assert tuple(stored) == (TRACEPARENT, "vendor=opaque")
    assert memory_broker.messages(str(Topic.DEAD_LETTERS)) == []


@pytest.mark.parametrize(
    "header",
    [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "not a traceparent",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace_and_the_post_succeeds(apps, keys, tenant, header):
    posted = apps["vacancy"].client.post(
        f"/v1/tenants/{tenant}/vacancies",
        json=GREEN_VACANCY,
        headers={**bearer(keys["employer"]), "traceparent": header},
    )

    assert posted.status_code == 201
    with apps["vacancy"].db.session() as session:
        [payload] = session.execute(apps["vacancy"].store.outbox.table.select()).mappings().all()
    document = json.loads(payload["payload"])
    context = tracing.parse(document["traceparent"])
    assert context is not None
    assert context.trace_id not in header.lower()
    assert "tracestate" not in document
