"""A vacancy's POST is where its alert's latency starts: the vacancy's event carries no ``origintime`` (its
own ``time`` is the origin), the match proposed from it carries that time as ``origintime``, and so does the
alert raised from the match; the notification worker measures the alert's origin latency from it.

The services' apps, databases, outboxes, relays and consumer loops are the real ones; the broker is the
in-memory double (tests/contract keeps it in step with Kafka).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from services.matching.worker import handler_table as matching_handlers
from services.notification.handlers import Timing
from services.notification.worker import handler_table as notification_handlers
from shared import origin
from shared.events import EventType, decode_message, rfc3339
from shared.outbox import OutboxRelay
from shared.topics import Topic
from tests.doubles.memory_broker import MemoryBroker, drain
from tests.e2e.payloads import GARDENER, GREEN_VACANCY
from tests.integration.conftest import bearer

# Long enough that no real pass through the services could account for it.
OUTBOX_OUTAGE = timedelta(hours=1)


def relay(app, broker: MemoryBroker) -> None:
    OutboxRelay(app.db, app.store.outbox, broker.make_producer()).publish_batch()


def consume(app, broker: MemoryBroker, topics: list[Topic], handlers) -> int:
    return drain(broker, app, topics, handlers, group=f"test-{uuid.uuid4().hex[:8]}")


def the_event(broker: MemoryBroker, topic: Topic, event_type: str):
    [message] = [
        message
        for message in broker.messages(str(topic))
        if message.value is not None and json.loads(message.value)["type"] == event_type
    ]
    return decode_message(message.value, message.headers)


def backdate_pending_events(app, by: timedelta) -> None:
    """As if the service's relay had been down for ``by``: its pending events were written that long ago."""
    table = app.store.outbox.table
    with app.db.session() as session:
        for row in session.execute(table.select().where(table.c.published_at.is_(None))).mappings().all():
            document = json.loads(row["payload"])
            written = datetime.fromisoformat(document["time"]) - by
            document["time"] = rfc3339(written)
            session.execute(table.update().where(table.c.id == row["id"]).values(payload=json.dumps(document)))


def histogram(name: str) -> tuple[float, float]:
    """(count, sum) of an unlabelled histogram in this process."""
    return REGISTRY.get_sample_value(f"{name}_count") or 0.0, REGISTRY.get_sample_value(f"{name}_sum") or 0.0


@pytest.fixture
def apps(service, keys):
    return {name: service(name) for name in ("candidate", "vacancy", "matching", "notification")}


def test_an_alert_counts_its_latency_from_the_vacancys_post(apps, keys, tenant, memory_broker):
    registered = apps["candidate"].client.post(
        f"/v1/tenants/{tenant}/candidates", json=GARDENER, headers=bearer(keys["jobcoach"])
    )
    assert registered.status_code == 201
    posted = apps["vacancy"].client.post(
        f"/v1/tenants/{tenant}/vacancies", json=GREEN_VACANCY, headers=bearer(keys["employer"])
    )
    assert posted.status_code == 201
    backdate_pending_events(apps["vacancy"], OUTBOX_OUTAGE)
    relay(apps["candidate"], memory_broker)
    relay(apps["vacancy"], memory_broker)

    vacancy_event = the_event(memory_broker, Topic.VACANCY_EVENTS, EventType.VACANCY_POSTED)
    assert origin.ORIGINTIME not in vacancy_event.extensions, "a request's event is the origin itself"
    candidate_event = the_event(memory_broker, Topic.CANDIDATE_EVENTS, EventType.CANDIDATE_REGISTERED)
    assert origin.ORIGINTIME not in candidate_event.extensions

    # The candidate first, so that the vacancy's arrival is what proposes the match.
    handlers = matching_handlers(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))
    assert consume(apps["matching"], memory_broker, [Topic.CANDIDATE_EVENTS], handlers) == 1
    assert consume(apps["matching"], memory_broker, [Topic.VACANCY_EVENTS], handlers) == 1
    relay(apps["matching"], memory_broker)
    match_event = the_event(memory_broker, Topic.MATCH_EVENTS, EventType.MATCH_PROPOSED)
    assert match_event.data["vacancy_id"] == posted.get_json()["id"]
    assert match_event.extensions[origin.ORIGINTIME] == rfc3339(vacancy_event.time)
    assert origin.of(match_event) == vacancy_event.time < match_event.time - OUTBOX_OUTAGE / 2

    consumed_before = histogram("werkbrug_alert_latency_seconds")
    origin_before = histogram("werkbrug_alert_origin_latency_seconds")
    handlers = notification_handlers(Timing())
    assert consume(apps["notification"], memory_broker, [Topic.CANDIDATE_EVENTS], handlers) == 1
    assert consume(apps["notification"], memory_broker, [Topic.MATCH_EVENTS], handlers) == 1
    relay(apps["notification"], memory_broker)
    alert_event = the_event(memory_broker, Topic.ALERT_EVENTS, EventType.ALERT_RAISED)
    assert alert_event.data["alert_type"] == "match_proposed"
    assert alert_event.extensions[origin.ORIGINTIME] == rfc3339(vacancy_event.time), "passed on, not restarted"

    # One alert each; from the match event it took moments, from the vacancy's POST over the outage.
    consumed_count, consumed_sum = histogram("werkbrug_alert_latency_seconds")
    origin_count, origin_sum = histogram("werkbrug_alert_origin_latency_seconds")
    assert (consumed_count - consumed_before[0], origin_count - origin_before[0]) == (1, 1)
    assert consumed_sum - consumed_before[1] < OUTBOX_OUTAGE.total_seconds()
    assert origin_sum - origin_before[1] >= OUTBOX_OUTAGE.total_seconds()
    assert memory_broker.messages(str(Topic.DEAD_LETTERS)) == []
