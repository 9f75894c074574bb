"""Webhook signatures in the Standard Webhooks format, checked with the standard's own Python library, as a
receiver would: with one secret, with a secret set before the format was adopted, and with either of two
secrets while a rotation lasts."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.notification import domain
from services.notification.senders import WebhookSender

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ALERT = {"id": "5d0f3c1e-1b7a-4f7e-9d51-8a2b0c9e4f11", "type": "match_proposed", "message": "Een match"}


def standard_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class CapturingSender(WebhookSender):
    """The real sender up to the wire: what it would POST is kept instead."""

    def __init__(self) -> None:
        super().__init__(2.0)
        self.sent: list[tuple[bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        self.sent.append((body, headers))
        return None


def deliver(channels: dict, now: datetime = NOW) -> tuple[bytes, dict[str, str]]:
    sender = CapturingSender()
    channels = {"webhook_url": "https://hooks.example.org/werkbrug", **channels}
    channels["signing_secrets"] = domain.signing_secrets(channels, now)
    assert sender.send("noord-limburg", ALERT, channels) is None
    [sent] = sender.sent
    return sent


def test_a_receiver_verifies_the_delivery_with_the_standard_library():
    secret = standard_secret()
    body, headers = deliver({"webhook_secret": secret})

    assert Webhook(secret).verify(body, headers) == {"tenant": "noord-limburg", **ALERT}
    assert headers["webhook-id"] == ALERT["id"], "a retry carries the same id, so that a receiver drops repeats"
    assert headers["webhook-signature"].count("v1,") == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"Een match", b"Geen match"), headers)


def test_a_secret_set_before_the_standard_verifies_as_whsec_and_its_base64():
    legacy = "at-least-16-characters"
    body, headers = deliver({"webhook_secret": legacy})

    Webhook("whsec_" + base64.b64encode(legacy.encode()).decode()).verify(body, headers)


def test_the_deprecated_werkbrug_headers_still_come_alongside():
    secret = standard_secret()
    body, headers = deliver({"webhook_secret": secret})

    timestamp = int(headers["Werkbrug-Timestamp"])
    assert headers["Werkbrug-Alert-Id"] == ALERT["id"]
    assert domain.verify(secret, timestamp, body, headers["Werkbrug-Signature"], now=timestamp)


def test_during_a_rotation_either_secret_verifies_and_after_it_only_the_new_one():
    old, new = standard_secret(), standard_secret()
    channels = {"webhook_secret": new, "webhook_secret_previous": old, "webhook_secret_previous_until": NOW}

    body, headers = deliver(channels, now=NOW - timedelta(seconds=1))
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["id"] == ALERT["id"]
    timestamp = int(headers["Werkbrug-Timestamp"])
    assert domain.verify(new, timestamp, body, headers["Werkbrug-Signature"], now=timestamp), "the current one"

    body, headers = deliver(channels, now=NOW)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_the_signature_is_the_standards_over_id_timestamp_and_body():
    key = secrets.token_bytes(24)
    secret = "whsec_" + base64.b64encode(key).decode().rstrip("=")
    body = json.dumps({"a": 1}).encode()

    signature = domain.standard_signature([secret], "msg_1", 1_700_000_000, body)

    expected = Webhook(key).sign("msg_1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode())
    assert signature == expected


@pytest.mark.parametrize(
    ("secret", "refused"),
    [
        ("at-least-16-characters", False),
        (standard_secret(), False),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), True),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), True),
        ("whsec_not*base64*at*all*", True),
    ],
)
def test_a_whsec_secret_must_hold_24_to_64_bytes_of_base64(secret, refused):
    assert (domain.webhook_secret_problem(secret) is not None) is refused
