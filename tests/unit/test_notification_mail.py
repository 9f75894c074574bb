"""E-mail to jobcoaches: what the mail says (and never says), how SMTP answers become retryable errors,
and how the SMTP settings are read."""

from __future__ import annotations

import email
import email.policy
import smtplib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.notification import config
from services.notification.config import SmtpSettings
from services.notification.domain import alert_mail, digest_mail
from services.notification.senders import EmailSender, build_mail
from shared.config import ConfigError

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

RISK = {
    "id": "5e0c7a7e-1d2b-4c3a-9f8e-7d6c5b4a3921",
    "type": "placement_at_risk",
    "created_at": datetime(2026, 11, 23, 10, 15, tzinfo=UTC),
    "candidate_id": "c7f3a1e2-5b8d-4c1a-9e3f-2a6b7c8d9e01",
    "vacancy_id": "4b2e9d71-0c3a-4f6e-8a1b-5d7c9e0f1a23",
    "placement_id": "9a1c2e3f-4b5d-4e6f-8a7b-1c2d3e4f5a6b",
    "message": "Een plaatsing loopt risico (risicoscore 74%). Neem contact op met je kandidaat.",
    "details": {
        "reasons": [{"feature": "wellbeing_trend", "contribution": 0.31}],
        "explanation": {"talents_matched": ["planten verzorgen"], "supports": {"essential_met": ["quiet_workplace"]}},
    },
}
MATCH = {
    **RISK,
    "id": "0b9e4a52-3f41-4c8e-9d57-6a0f2c1b7e84",
    "type": "match_proposed",
    "created_at": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    "placement_id": None,
    "message": "Nieuwe match voor je kandidaat: Medewerker groenonderhoud (score 82%).",
}


def _smtp_settings(**changes) -> SmtpSettings:
    values = {
        "host": "127.0.0.1",
        "port": 2525,
        "sender": "Werkbrug <noreply@werkbrug.nl>",
        "starttls": False,
        "username": None,
        "password": None,
        "timeout_s": 1.0,
    }
    return SmtpSettings(**{**values, **changes})


def _text_of(message) -> str:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    return parsed.get_content()


def test_an_alert_mail_names_type_message_time_and_ids_in_dutch():
    text = alert_mail(RISK, AMSTERDAM)

    assert text.subject == "Werkbrug: plaatsing loopt risico"
    assert "Soort:       Plaatsing loopt risico" in text.body
    assert RISK["message"] in text.body
    assert "23-11-2026 11:15" in text.body, "local time of the region"
    for identifier in (RISK["id"], RISK["candidate_id"], RISK["placement_id"], RISK["vacancy_id"]):
        assert identifier in text.body


def test_a_mail_never_carries_talents_needs_reasons_or_links():
    for text in (alert_mail(RISK, AMSTERDAM), digest_mail([RISK, MATCH], date(2026, 11, 24), AMSTERDAM)):
        for secret in ("planten verzorgen", "quiet_workplace", "wellbeing_trend", "0.31"):
            assert secret not in text.body
        assert "http" not in text.body and "www." not in text.body


def test_a_digest_lists_every_alert_oldest_first_under_one_dated_subject():
    text = digest_mail([RISK, MATCH], date(2026, 11, 24), AMSTERDAM)

    assert text.subject == "Werkbrug: dagoverzicht 24-11-2026, 2 meldingen"
    assert "kwamen er 2 meldingen" in text.body
    assert text.body.index(MATCH["id"]) < text.body.index(RISK["id"])
    assert "1.\n" in text.body and "2.\n" in text.body
    single = digest_mail([RISK], date(2026, 11, 24), AMSTERDAM)
    assert single.subject.endswith("1 melding") and "kwam er 1 melding" in single.body


def test_the_built_mail_is_plain_text_utf8_with_a_stable_message_id():
    mail = build_mail("Werkbrug <noreply@werkbrug.nl>", "jc@example.org", alert_mail(RISK, AMSTERDAM), RISK["id"])

    assert mail["To"] == "jc@example.org"
    assert mail["Message-ID"] == f"<{RISK['id']}@werkbrug.nl>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "text/plain"
    assert mail["Content-Transfer-Encoding"] == "quoted-printable"
    assert RISK["message"] in _text_of(mail)


class FakeSmtp:
    """Stands in for smtplib.SMTP: records the calls, or fails the way it is told to."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.sent = []
        self.calls = []

    def __call__(self, host, port, timeout):
        self.calls.append(("connect", host, port, timeout))
        return self

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False

    def starttls(self):
        self.calls.append(("starttls",))

    def login(self, username, password):
        self.calls.append(("login", username, password))

    def send_message(self, message):
        if self.failure is not None:
            raise self.failure
        self.sent.append(message)


def test_the_sender_speaks_starttls_and_logs_in_when_configured():
    smtp = FakeSmtp()
    sender = EmailSender(
        _smtp_settings(starttls=True, username="werkbrug", password="pw"), AMSTERDAM, smtp_factory=smtp
    )

    assert sender.send("noord-limburg", RISK, {"email": "jc@example.org"}) is None

    assert [call[0] for call in smtp.calls] == ["connect", "starttls", "login"]
    assert smtp.calls[0] == ("connect", "127.0.0.1", 2525, 1.0)
    assert len(smtp.sent) == 1


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (smtplib.SMTPResponseException(451, b"try again later"), "SMTP 451"),
        (smtplib.SMTPDataError(554, b"rejected for jc@example.org"), "SMTP 554"),
        (smtplib.SMTPRecipientsRefused({"jc@example.org": (550, b"no such user jc@example.org")}), "SMTP 550"),
        (smtplib.SMTPServerDisconnected("gone"), "SMTPServerDisconnected"),
        (ConnectionRefusedError(111, "refused"), "ConnectionRefusedError"),
        (TimeoutError("timed out"), "TimeoutError"),
    ],
)
def test_smtp_failures_become_short_errors_that_never_quote_the_address(failure, error):
    sender = EmailSender(_smtp_settings(), AMSTERDAM, smtp_factory=FakeSmtp(failure))

    answer = sender.send("noord-limburg", RISK, {"email": "jc@example.org"})

    assert answer is not None and answer.startswith(error)
    assert "jc@example.org" not in answer


def _settings(env: dict):
    return config.load(env)


def test_smtp_settings_default_to_a_local_server_without_tls():
    settings = config.smtp(_settings({}), {})

    assert (settings.host, settings.port, settings.starttls, settings.username) == ("127.0.0.1", 25, False, None)
    assert "@" in settings.sender


def test_smtp_settings_are_read_from_the_environment():
    env = {
        "SMTP_HOST": "smtp.example.org",
        "SMTP_PORT": "587",
        "SMTP_FROM": "alerts@example.org",
        "SMTP_STARTTLS": "true",
        "SMTP_USERNAME": "werkbrug",
        "SMTP_PASSWORD": "pw",
    }
    settings = config.smtp(_settings(env), env)

    assert settings == SmtpSettings("smtp.example.org", 587, "alerts@example.org", True, "werkbrug", "pw", 10.0)


@pytest.mark.parametrize(
    "env",
    [
        {"SMTP_PORT": "smtp"},
        {"SMTP_PORT": "70000"},
        {"SMTP_STARTTLS": "misschien"},
        {"SMTP_USERNAME": "werkbrug"},
        {"SMTP_USERNAME": "werkbrug", "SMTP_PASSWORD": "pw"},
        {"SMTP_FROM": "werkbrug"},
    ],
)
def test_bad_smtp_settings_fail_at_start_up(env):
    with pytest.raises(ConfigError):
        config.smtp(_settings(env), env)


@pytest.mark.parametrize("env", [{"DIGEST_HOUR": "24"}, {"DIGEST_TIMEZONE": "Europe/Atlantis"}])
def test_bad_digest_settings_fail_at_start_up(env):
    with pytest.raises(ConfigError):
        config.schedule(_settings(env), env)
