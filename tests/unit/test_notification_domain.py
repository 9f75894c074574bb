"""Webhook signatures, retry timing and webhook URL rules."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.notification.domain import match_message, retry_delay, sign, verify, webhook_url_problem


def test_a_signature_verifies_with_the_same_secret_body_and_timestamp_only():
    body = b'{"id":"a-1"}'
    signature = sign("s3cret-s3cret-s3cret", 1_700_000_000, body)
    assert signature.startswith("v1=")
    assert verify("s3cret-s3cret-s3cret", 1_700_000_000, body, signature, now=1_700_000_010)
    assert not verify("another-secret-xxxx", 1_700_000_000, body, signature, now=1_700_000_010)
    assert not verify("s3cret-s3cret-s3cret", 1_700_000_000, body + b" ", signature, now=1_700_000_010)
    assert not verify("s3cret-s3cret-s3cret", 1_700_000_001, body, signature, now=1_700_000_010)


def test_an_old_signature_is_refused_even_when_it_is_correct():
    body = b"{}"
    signature = sign("s3cret-s3cret-s3cret", 1_700_000_000, body)
    assert not verify("s3cret-s3cret-s3cret", 1_700_000_000, body, signature, now=1_700_000_000 + 301)


def test_retries_back_off_exponentially_with_jitter_up_to_a_ceiling():
    rng = random.Random(7)
    delays = [retry_delay(attempt, 2.0, 60.0, rng) for attempt in range(1, 10)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        assert timedelta(seconds=ceiling / 2) <= delay <= timedelta(seconds=ceiling)
    assert delays[-1] <= timedelta(seconds=60)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "http://user:pass@example.org/hook",
        "https://:token@example.org",
        "mailto:x@y.nl",
        "http:///no-host",
        "http://0.0.0.0/hook",
        "javascript:alert(1)",
    ],
)
def test_webhook_urls_that_are_not_plain_http_or_carry_credentials_are_refused(url):
    assert webhook_url_problem(url)


@pytest.mark.parametrize("url", ["https://hooks.example.org/werkbrug", "http://127.0.0.1:8080/hook"])
def test_plain_http_and_https_webhook_urls_are_accepted(url):
    assert webhook_url_problem(url) is None


def test_match_messages_are_short_dutch_sentences_without_personal_data():
    message = match_message("Medewerker groenonderhoud", 0.816)
    assert message == "Nieuwe match voor je kandidaat: Medewerker groenonderhoud (score 82%)."
