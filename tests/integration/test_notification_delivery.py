"""Delivering alerts over a real HTTP receiver and a real SMTP server, on a real database, with the clock
moved by the test: retries with backoff, the visible failed status, the dead letter on the real broker,
and the daily digest."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.notification import domain, handlers
from services.notification.config import DeliverySettings, SmtpSettings
from services.notification.delivery import AlertDelivery
from services.notification.handlers import Timing
from services.notification.senders import EmailSender, WebhookSender
from shared.clock import FakeClock
from shared.devstack.broker import free_ports
from shared.events import EventType, decode_event, encode_event, new_event
from shared.kafka import make_producer
from shared.outbox import OutboxRelay
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.kafka_helpers import read_all

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SECRET = "s3cr3t-" + "k" * 20
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SETTINGS = DeliverySettings(webhook_timeout_s=2.0, max_attempts=3, first_retry_s=2.0, max_retry_s=60.0, poll_s=0.05)


@dataclass
class Receiver:
    """A jobcoach's webhook endpoint answering the statuses it is given in turn (the last one from then on)."""

    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[dict] = field(default_factory=list)

    def answer(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@dataclass
class Mailbox:
    """What the SMTP server accepted; ``refuse`` makes it answer every recipient with that reply instead."""

    messages: list[dict] = field(default_factory=list)
    refuse: str | None = None
    port: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append({"to": envelope.rcpt_tos, "message": parsed, "body": parsed.get_content()})
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = state.answer()
            state.requests.append(
                {"status": status, "headers": dict(self.headers), "json": json.loads(body), "body": body}
            )
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(port=free_ports(1)[0])
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: Mailbox) -> Mailbox:
    smtp_server.messages.clear()
    smtp_server.refuse = None
    return smtp_server


@pytest.fixture
def notifications(service, keys):
    return service("notification")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def webhooks(notifications, clock) -> AlertDelivery:
    return AlertDelivery(
        notifications.db,
        SETTINGS,
        channels=[domain.WEBHOOK],
        webhook=WebhookSender(2.0, allow_private_networks=True),
        clock=clock,
    )


@pytest.fixture
def mail(notifications, clock, smtp_server) -> AlertDelivery:
    smtp = SmtpSettings("127.0.0.1", smtp_server.port, "Werkbrug <noreply@werkbrug.nl>", False, None, None, 5.0)
    return AlertDelivery(
        notifications.db,
        SETTINGS,
        channels=[domain.EMAIL, domain.DIGEST],
        email=EmailSender(smtp, AMSTERDAM),
        clock=clock,
    )


def set_channels(notifications, tenant: str, **values) -> None:
    channels = {"webhook_url": None, "webhook_secret": None, "email": None, "digest": False, **values}
    with notifications.db.session() as session:
        notifications.store.put_channels(session, tenant, "jc-1", channels)


def new_alert(
    notifications, tenant: str, clock: FakeClock, *, title: str = "Hovenier", trace: dict | None = None
) -> str:
    """An alert from a match.proposed event; ``trace``: the event's trace context extension attributes."""
    candidate_id = str(uuid.uuid4())
    data = {
        "candidate_id": candidate_id,
        "vacancy_id": str(uuid.uuid4()),
        "jobcoach_id": "jc-1",
        "vacancy_title": title,
        "score": 0.8,
        "explanation": {"talents_matched": ["planten verzorgen"], "supports": {"essential_met": ["quiet_workplace"]}},
        "ranking_version": "tfidf-1",
    }
    document = new_event(EventType.MATCH_PROPOSED, tenant=tenant, subject=candidate_id, data=data, source="test")
    event = decode_event(encode_event({**document, **(trace or {})}))
    with notifications.db.session() as session:
        handlers.on_match_proposed(session, event, timing=Timing(clock=clock))
    with notifications.db.session() as session:
        alerts = notifications.store.alerts
        return session.execute(sa.select(alerts.c.id).where(alerts.c.candidate_id == candidate_id)).scalar_one()


def deliveries(notifications, alert_id: str) -> dict[str, dict]:
    table = notifications.store.deliveries
    with notifications.db.session() as session:
        found = session.execute(sa.select(table).where(table.c.alert_id == alert_id)).all()
    return {row.channel: row._asdict() for row in found}


def dead_letters(notifications) -> list[dict]:
    outbox = notifications.store.outbox.table
    with notifications.db.session() as session:
        found = session.execute(sa.select(outbox).where(outbox.c.topic == Topic.DEAD_LETTERS)).all()
    return [row._asdict() for row in found]


def inbox_item(notifications, keys, tenant: str, alert_id: str) -> dict:
    page = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=bearer(keys["jobcoach"])).get_json()
    return next(item for item in page["items"] if item["id"] == alert_id)


# --------------------------------------------------------------------------------------------------------
# Webhook


def test_a_webhook_that_fails_twice_gets_the_alert_on_the_third_attempt_after_growing_waits(
    notifications, webhooks, receiver, clock, keys, tenant
):
    receiver.statuses = [500, 503, 200]
    set_channels(notifications, tenant, webhook_url=receiver.url, webhook_secret=SECRET)
    alert_id = new_alert(notifications, tenant, clock)

    waits = []
    for _ in range(3):
        assert webhooks.deliver_due() == 1
        assert webhooks.deliver_due() == 0, "not due again before its retry time"
        state = deliveries(notifications, alert_id)["webhook"]
        waits.append(state["next_attempt_at"] - clock.now)
        clock.advance(state["next_attempt_at"] - clock.now)

    state = deliveries(notifications, alert_id)["webhook"]
    assert (state["status"], state["attempts"], state["last_error"]) == ("delivered", 3, None)
    assert [r["status"] for r in receiver.requests] == [500, 503, 200]
    assert {r["headers"]["Werkbrug-Alert-Id"] for r in receiver.requests} == {alert_id}
    assert timedelta(seconds=1) <= waits[0] <= timedelta(seconds=2)
    assert timedelta(seconds=2) <= waits[1] <= timedelta(seconds=4)
    assert inbox_item(notifications, keys, tenant, alert_id)["deliveries"] == [
        {"channel": "webhook", "status": "delivered", "attempts": 3, "last_error": None}
    ]
    assert dead_letters(notifications) == []


def test_a_webhook_carries_the_trace_context_of_the_event_its_alert_came_from(
    notifications, webhooks, receiver, clock, tenant
):
    secret = "whsec_" + "b2xk" * 8
    set_channels(notifications, tenant, webhook_url=receiver.url, webhook_secret=secret)
    traced = new_alert(notifications, tenant, clock, trace={"traceparent": TRACEPARENT, "tracestate": "vendor=opaque"})
    untraced = new_alert(notifications, tenant, clock, title="Koerier")
    # One request at a time to the same receiver.
    assert [webhooks.deliver_due(), webhooks.deliver_due()] == [1, 1]

    sent = {request["json"]["id"]: request for request in receiver.requests}
    assert sent[traced]["headers"]["traceparent"] == TRACEPARENT
    assert sent[traced]["headers"]["tracestate"] == "vendor=opaque"
    # An alert of an event without a trace (as every alert stored before the trace was kept) sends none.
    assert "traceparent" not in sent[untraced]["headers"] and "tracestate" not in sent[untraced]["headers"]
    # Headers only: the signed body is the alert as before.
    assert "traceparent" not in sent[traced]["json"] and "tracestate" not in sent[traced]["json"]
    for request in sent.values():
        Webhook(secret).verify(request["body"], {name.lower(): value for name, value in request["headers"].items()})


def test_a_receiver_verifies_with_the_standard_webhooks_library_before_during_and_after_a_rotation(
    notifications, webhooks, receiver, clock, keys, tenant
):
    notifications.context.clock = clock
    old, new = "whsec_" + "b2xk" * 8, "whsec_" + "bmV3" * 8
    channels_path = f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels"
    answer = notifications.client.put(
        channels_path, json={"webhook_url": receiver.url, "webhook_secret": old}, headers=bearer(keys["jobcoach"])
    )
    assert answer.status_code == 200, answer.get_json()

    def delivered_body_and_headers() -> tuple[bytes, dict]:
        new_alert(notifications, tenant, clock)
        assert webhooks.deliver_due() == 1
        request = receiver.requests[-1]
        return request["body"], {name.lower(): value for name, value in request["headers"].items()}

    body, headers = delivered_body_and_headers()
    Webhook(old).verify(body, headers)

    rotated = notifications.client.post(
        f"{channels_path}/rotate-secret",
        json={"webhook_secret": new, "previous_valid_hours": 2},
        headers=bearer(keys["jobcoach"]),
    )
    assert rotated.status_code == 200, rotated.get_json()
    assert rotated.get_json()["previous_secret_valid_until"] == "2026-11-23T12:00:00+00:00"
    assert "whsec_" not in rotated.get_data(as_text=True), "secrets are never answered"

    body, headers = delivered_body_and_headers()
    for secret in (old, new):
        Webhook(secret).verify(body, headers)

    # Setting the channels again with the current secret (a new e-mail address) keeps the rotation going.
    again = notifications.client.put(
        channels_path,
        json={"webhook_url": receiver.url, "webhook_secret": new, "email": "jc@example.org"},
        headers=bearer(keys["jobcoach"]),
    )
    assert again.get_json()["previous_secret_valid_until"] == "2026-11-23T12:00:00+00:00"

    clock.advance(timedelta(hours=2))
    body, headers = delivered_body_and_headers()
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)
    channels = notifications.client.get(channels_path, headers=bearer(keys["jobcoach"])).get_json()
    assert channels["previous_secret_valid_until"] is None


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"webhook_secret": SECRET}, 422, "webhook_secret"),
        ({"webhook_secret": "whsec_" + "eA==" * 5}, 422, "webhook_secret"),
        ({"webhook_secret": "whsec_" + "bmV3" * 8, "previous_valid_hours": 169}, 422, "previous_valid_hours"),
        ({"webhook_secret": "whsec_" + "bmV3" * 8, "previous_valid_hours": 1.5}, 422, "previous_valid_hours"),
        ({}, 422, "webhook_secret"),
    ],
)
def test_a_rotation_that_cannot_be_is_refused_field_by_field_and_changes_nothing(
    notifications, receiver, keys, tenant, body, status, field
):
    set_channels(notifications, tenant, webhook_url=receiver.url, webhook_secret=SECRET)

    answer = notifications.client.post(
        f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels/rotate-secret", json=body, headers=bearer(keys["jobcoach"])
    )

    assert answer.status_code == status
    assert answer.content_type == "application/problem+json"
    assert field in answer.get_json()["errors"]
    with notifications.db.session() as session:
        row = notifications.store.get_channels(session, tenant, "jc-1")
    assert (row["webhook_secret"], row["webhook_secret_previous"]) == (SECRET, None)


def test_only_the_jobcoach_with_a_webhook_rotates_its_secret(notifications, keys, tenant):
    path = f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels/rotate-secret"
    body = {"webhook_secret": "whsec_" + "bmV3" * 8}

    assert notifications.client.post(path, json=body, headers=bearer(keys["jobcoach"])).status_code == 404
    set_channels(notifications, tenant, email="jc@example.org")
    assert notifications.client.post(path, json=body, headers=bearer(keys["jobcoach"])).status_code == 404
    set_channels(notifications, tenant, webhook_url="https://hooks.example.org/jc-1", webhook_secret=SECRET)
    assert notifications.client.post(path, json=body, headers=bearer(keys["jobcoach2"])).status_code == 404
    assert notifications.client.post(path, json=body, headers=bearer(keys["operator"])).status_code == 403
    with notifications.db.session() as session:
        assert notifications.store.get_channels(session, tenant, "jc-1")["webhook_secret"] == SECRET


def test_a_webhook_that_never_recovers_ends_failed_and_its_alert_reaches_dead_letters_on_kafka(
    notifications, webhooks, receiver, clock, keys, tenant, bootstrap_servers
):
    receiver.statuses = [500]
    set_channels(notifications, tenant, webhook_url=receiver.url, webhook_secret=SECRET)
    alert_id = new_alert(notifications, tenant, clock)

    for _ in range(SETTINGS.max_attempts + 2):
        webhooks.deliver_due()
        clock.advance(timedelta(minutes=5))

    assert len(receiver.requests) == SETTINGS.max_attempts
    assert inbox_item(notifications, keys, tenant, alert_id)["deliveries"] == [
        {"channel": "webhook", "status": "failed", "attempts": 3, "last_error": "HTTP 5xx"}
    ]
    [letter] = dead_letters(notifications)
    assert letter["published_at"] is None

    producer = make_producer(bootstrap_servers, "test-notification-relay")
    try:
        # The alert's raised event and its dead letter.
        assert OutboxRelay(notifications.db, notifications.store.outbox, producer).publish_batch() == 2
    finally:
        producer.close()
    [message] = read_all(bootstrap_servers, Topic.DEAD_LETTERS, key_prefix=f"{tenant}/{alert_id}".encode())
    assert dict(message.headers) == {
        "content-type": b"application/json",
        "dlq.reason": b"delivery_failed",
        "dlq.channel": b"webhook",
        "dlq.alert.id": alert_id.encode(),
        "dlq.tenant": tenant.encode(),
        "dlq.attempts": b"3",
        "dlq.exception.message": b"HTTP 5xx",
    }
    document = json.loads(message.value)
    assert document["id"] == alert_id
    assert document["tenant"] == tenant
    assert document["type"] == "match_proposed"
    assert dead_letters(notifications)[0]["published_at"] is not None


def test_an_unreachable_webhook_is_retried_like_a_failing_one(notifications, webhooks, clock, tenant):
    (port,) = free_ports(1)
    set_channels(notifications, tenant, webhook_url=f"http://127.0.0.1:{port}/hook", webhook_secret=SECRET)
    alert_id = new_alert(notifications, tenant, clock)

    webhooks.deliver_due()

    state = deliveries(notifications, alert_id)["webhook"]
    assert (state["status"], state["attempts"], state["last_error"]) == ("pending", 1, "connection refused")


def test_a_webhook_removed_before_sending_is_cancelled_without_a_dead_letter(
    notifications, webhooks, receiver, clock, tenant
):
    set_channels(notifications, tenant, webhook_url=receiver.url, webhook_secret=SECRET)
    alert_id = new_alert(notifications, tenant, clock)
    set_channels(notifications, tenant, email="jc@example.org")

    webhooks.deliver_due()

    assert deliveries(notifications, alert_id)["webhook"]["status"] == "cancelled"
    assert receiver.requests == [] and dead_letters(notifications) == []


# --------------------------------------------------------------------------------------------------------
# E-mail


def test_an_alert_is_mailed_once_over_smtp_with_type_message_and_ids_only(
    notifications, mail, webhooks, mailbox, receiver, clock, keys, tenant
):
    set_channels(notifications, tenant, webhook_url=receiver.url, webhook_secret=SECRET, email="jc1@example.org")
    alert_id = new_alert(notifications, tenant, clock, title="Medewerker groenonderhoud")

    assert mail.deliver_due() == 1, "the mail loop leaves the webhook to the webhook loop"
    assert mail.deliver_due() == 0
    assert webhooks.deliver_due() == 1

    [received] = mailbox.messages
    assert received["to"] == ["jc1@example.org"]
    assert received["message"]["Subject"] == "Werkbrug: nieuwe match"
    assert received["message"]["Message-ID"] == f"<{alert_id}@werkbrug.nl>"
    body = received["body"]
    assert "Nieuwe match voor je kandidaat: Medewerker groenonderhoud (score 80%)." in body
    assert alert_id in body
    assert "planten verzorgen" not in body and "quiet_workplace" not in body
    assert "http" not in body
    assert {d["channel"]: d["status"] for d in inbox_item(notifications, keys, tenant, alert_id)["deliveries"]} == {
        "email": "delivered",
        "webhook": "delivered",
    }


def test_a_mail_server_that_keeps_refusing_ends_failed_with_a_dead_letter(notifications, mail, mailbox, clock, tenant):
    mailbox.refuse = "451 4.3.0 mailbox busy for jc1@example.org"
    set_channels(notifications, tenant, email="jc1@example.org")
    alert_id = new_alert(notifications, tenant, clock)

    for _ in range(SETTINGS.max_attempts):
        mail.deliver_due()
        clock.advance(timedelta(minutes=5))

    state = deliveries(notifications, alert_id)["email"]
    assert (state["status"], state["attempts"]) == ("failed", 3)
    assert state["last_error"] == "SMTP 451 recipient refused"
    [letter] = dead_letters(notifications)
    assert dict(letter["headers"])["dlq.channel"] == "email"
    assert dict(letter["headers"])["dlq.alert.id"] == alert_id
    assert "jc1@example.org" not in json.dumps(letter["headers"])
    assert mailbox.messages == []


# --------------------------------------------------------------------------------------------------------
# Daily digest


def test_a_digest_jobcoach_gets_one_mail_next_morning_with_the_days_alerts_and_none_before(
    notifications, mail, mailbox, clock, keys, tenant
):
    set_channels(notifications, tenant, email="jc1@example.org", digest=True)
    first = new_alert(notifications, tenant, clock, title="Hovenier")
    clock.advance(timedelta(hours=3))
    second = new_alert(notifications, tenant, clock, title="Inpakker")

    clock.advance(timedelta(hours=16, minutes=59))  # 05:59 UTC, 06:59 in Amsterdam
    assert mail.deliver_due() == 0
    clock.advance(timedelta(minutes=1))
    assert mail.deliver_due() == 2

    [received] = mailbox.messages
    assert received["message"]["Subject"] == "Werkbrug: dagoverzicht 24-11-2026, 2 meldingen"
    assert first in received["body"] and second in received["body"]
    assert received["body"].index(first) < received["body"].index(second)
    for alert_id in (first, second):
        assert inbox_item(notifications, keys, tenant, alert_id)["deliveries"] == [
            {"channel": "digest", "status": "delivered", "attempts": 1, "last_error": None}
        ]

    third = new_alert(notifications, tenant, clock, title="Kok")
    clock.advance(timedelta(hours=23, minutes=59))
    assert mail.deliver_due() == 0
    clock.advance(timedelta(minutes=1))
    assert mail.deliver_due() == 1
    assert len(mailbox.messages) == 2 and third in mailbox.messages[1]["body"]
    assert mailbox.messages[1]["message"]["Subject"].endswith("1 melding")


def test_a_digest_that_cannot_be_sent_is_retried_then_fails_for_each_of_its_alerts(
    notifications, mail, mailbox, clock, tenant
):
    mailbox.refuse = "450 try later"
    set_channels(notifications, tenant, email="jc1@example.org", digest=True)
    alert_ids = [new_alert(notifications, tenant, clock) for _ in range(2)]
    clock.advance(timedelta(days=1))

    for _ in range(SETTINGS.max_attempts):
        mail.deliver_due()
        clock.advance(timedelta(minutes=5))

    assert [deliveries(notifications, a)["digest"]["status"] for a in alert_ids] == ["failed", "failed"]
    assert sorted(dict(letter["headers"])["dlq.alert.id"] for letter in dead_letters(notifications)) == sorted(
        alert_ids
    )
