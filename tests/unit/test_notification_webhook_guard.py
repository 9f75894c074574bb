"""Webhooks never reach the platform's own network unless an installation allows it."""

from __future__ import annotations

import pytest

from services.notification.domain import forbidden_address
from services.notification.senders import WebhookSender

CHANNELS = {"webhook_url": "https://hooks.example.org/werkbrug", "webhook_secret": "s" * 20}
ALERT = {"id": "a-1", "type": "placement_at_risk", "message": "Let op"}


class RecordingConnect:
    """Stands in for the socket connect: records where a connection would go and refuses it, so that no
    packet leaves this machine."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, address: str, port: int, timeout_s: float):
        self.calls.append((address, port))
        raise ConnectionRefusedError


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "224.0.0.1",
    ],
)
def test_loopback_private_link_local_and_special_addresses_are_forbidden(address):
    assert forbidden_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert not forbidden_address(address)


def test_a_name_that_resolves_to_a_private_address_is_not_called():
    connect = RecordingConnect()
    sender = WebhookSender(2.0, resolve=lambda host, port: ["93.184.216.34", "10.0.0.5"], connect=connect)
    assert sender.send("noord-limburg", ALERT, CHANNELS) == "address not allowed"
    assert connect.calls == []


def test_a_name_that_does_not_resolve_is_a_failed_attempt_not_a_call():
    def no_such_host(host, port):
        raise OSError("Name or service not known")

    connect = RecordingConnect()
    assert WebhookSender(2.0, resolve=no_such_host, connect=connect).send("noord-limburg", ALERT, CHANNELS) == (
        "DNS lookup failed"
    )
    assert connect.calls == []


def test_the_connection_goes_to_the_checked_address_and_the_name_is_looked_up_once():
    lookups = []

    def rebinding(host, port):
        lookups.append(host)
        return ["93.184.216.34"] if len(lookups) == 1 else ["127.0.0.1"]

    connect = RecordingConnect()
    sender = WebhookSender(2.0, resolve=rebinding, connect=connect)
    assert sender.send("noord-limburg", ALERT, CHANNELS) == "connection refused"
    assert lookups == ["hooks.example.org"]
    assert connect.calls == [("93.184.216.34", 443)]


def test_an_installation_that_allows_private_networks_calls_them():
    connect = RecordingConnect()
    sender = WebhookSender(2.0, allow_private_networks=True, resolve=lambda host, port: ["127.0.0.1"], connect=connect)
    assert sender.send("noord-limburg", ALERT, CHANNELS) == "connection refused"
    assert connect.calls == [("127.0.0.1", 443)]
