"""Webhook signatures, retry timing, webhook URL rules, alert texts, escalation and digest timing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notification.domain import (
    DigestSchedule,
    at_risk_message,
    checkin_overdue_message,
    escalation_cutoff,
    escalation_message,
    match_message,
    retry_delay,
    sign,
    verify,
    webhook_url_problem,
)


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
        "http://exa mple.org/x",
        "http://example.org:99999/x",
        "http://example.org/\nInjected: header",
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


def test_risk_and_overdue_messages_are_short_dutch_sentences_without_personal_data():
    assert at_risk_message(0.736) == ("Een plaatsing loopt risico (risicoscore 74%). Neem contact op met je kandidaat.")
    assert checkin_overdue_message(date(2026, 11, 16)) == (
        "De check-in van een plaatsing is te laat: verwacht sinds 16-11-2026."
    )
    assert escalation_message(48) == "Een risicomelding is na 48 uur nog niet bevestigd door de jobcoach."
    for message in (at_risk_message(1.0), checkin_overdue_message(date(2026, 1, 1)), escalation_message(1)):
        assert len(message) <= 120


def test_a_retry_never_comes_sooner_than_half_its_ceiling_nor_later_than_the_ceiling():
    rng = random.Random(1)
    first_retries = [retry_delay(1, 2.0, 600.0, rng) for _ in range(200)]
    assert min(first_retries) >= timedelta(seconds=1) and max(first_retries) <= timedelta(seconds=2)
    assert len(set(first_retries)) > 100, "jitter spreads the retries of many senders"
    assert retry_delay(40, 2.0, 600.0, rng) <= timedelta(seconds=600)


NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "due"),
    [
        (timedelta(hours=47, minutes=59), False),
        (timedelta(hours=48), True),
        (timedelta(hours=49), True),
        (timedelta(days=30), True),
    ],
)
def test_an_alert_is_due_for_escalation_once_the_window_has_passed(age, due):
    created_at = NOW - age
    assert (created_at <= escalation_cutoff(NOW, 48)) is due


def test_the_escalation_window_follows_the_clock_and_the_tenants_hours():
    clock = NOW
    created_at = NOW
    assert created_at > escalation_cutoff(clock, 2)
    clock += timedelta(hours=2)
    assert created_at <= escalation_cutoff(clock, 2)
    assert created_at > escalation_cutoff(clock, 48)


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 10:00 UTC is 11:00 in Amsterdam in winter: past today's 07:00, so tomorrow 07:00 (06:00 UTC).
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), datetime(2026, 11, 24, 6, 0, tzinfo=UTC)),
        # 05:59 UTC is 06:59 local: today at 07:00.
        (datetime(2026, 11, 23, 5, 59, tzinfo=UTC), datetime(2026, 11, 23, 6, 0, tzinfo=UTC)),
        # Exactly at sending time: the next one, so that a digest never goes out twice for one day.
        (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 24, 6, 0, tzinfo=UTC)),
        # Summer time: 07:00 in Amsterdam is 05:00 UTC.
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), datetime(2026, 7, 2, 5, 0, tzinfo=UTC)),
    ],
)
def test_the_digest_goes_out_at_the_next_local_sending_hour(now, expected):
    assert DigestSchedule(7, AMSTERDAM).next_after(now) == expected


def test_a_digest_hour_that_daylight_saving_skips_moves_to_the_next_day():
    # On 29 March 2026 Amsterdam's clocks jump from 02:00 to 03:00: there is no 02:30, nor 02:00.
    before = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert DigestSchedule(2, AMSTERDAM).next_after(before) == datetime(2026, 3, 30, 0, 0, tzinfo=UTC)
