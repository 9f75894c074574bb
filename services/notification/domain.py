"""The notification service's rules, free of I/O: alert and mail texts, webhook signatures, retry,
digest and escalation timing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from shared import events
from shared.events import EventType

# Deprecated: kept for one release beside the Standard Webhooks headers below.
SIGNATURE_HEADER = "Werkbrug-Signature"
TIMESTAMP_HEADER = "Werkbrug-Timestamp"
ALERT_ID_HEADER = "Werkbrug-Alert-Id"
# Standard Webhooks (https://www.standardwebhooks.com/), which receivers verify with its libraries.
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix every such secret starts with, not a secret
# The keys Standard Webhooks recommends: 24 to 64 random bytes.
STANDARD_KEY_BYTES = (24, 64)

MATCH_PROPOSED, AT_RISK, CHECKIN_OVERDUE = "match_proposed", "placement_at_risk", "checkin_overdue"
OUT_OF_SIGHT, EMPLOYER_INTEREST, CASELOAD_OVER_LIMIT = "out_of_sight", "employer_interest", "caseload_over_limit"
ESCALATED_RISK, ESCALATED_CHECKIN = "placement_at_risk_escalated", "checkin_overdue_escalated"

ALERT_TYPE_OF_EVENT = {
    EventType.MATCH_PROPOSED: MATCH_PROPOSED,
    EventType.PLACEMENT_AT_RISK: AT_RISK,
    EventType.PLACEMENT_CHECKIN_OVERDUE: CHECKIN_OVERDUE,
    EventType.CANDIDATE_OUT_OF_SIGHT: OUT_OF_SIGHT,
    EventType.INTRODUCTION_REQUESTED: EMPLOYER_INTEREST,
    EventType.CASELOAD_OVER_LIMIT: CASELOAD_OVER_LIMIT,
}
# A jobcoach's alert of one of these types that nobody acknowledged in time goes to the region's operators
# as an alert of the mapped type.
ESCALATES_TO = {AT_RISK: ESCALATED_RISK, CHECKIN_OVERDUE: ESCALATED_CHECKIN}
# Every type an inbox holds: the contracts name them once, for the events that report alerts.
ALERT_TYPES = events.ALERT_TYPES
# Alerts go either to one jobcoach or to every operator of the region.
JOBCOACH, OPERATORS = "jobcoach", "operators"
# The types in the operators' inbox; every other type is a jobcoach's.
OPERATOR_ALERT_TYPES = (*ESCALATES_TO.values(), CASELOAD_OVER_LIMIT)
# The channels a delivery can take; a "digest" delivery waits for the jobcoach's daily summary mail.
WEBHOOK, EMAIL, DIGEST = "webhook", "email", "digest"

TYPE_LABELS = {
    MATCH_PROPOSED: "Nieuwe match",
    AT_RISK: "Plaatsing loopt risico",
    CHECKIN_OVERDUE: "Check-in te laat",
    ESCALATED_RISK: "Risicomelding niet bevestigd",
    ESCALATED_CHECKIN: "Te late check-in niet bevestigd",
    OUT_OF_SIGHT: "Kandidaat uit beeld",
    EMPLOYER_INTEREST: "Werkgever wil kennismaken",
    CASELOAD_OVER_LIMIT: "Caseload te groot",
}
# A vacancy title in a message is cut here, so that the message fits its column whatever the title.
TITLE_IN_MESSAGE = 200


def match_message(vacancy_title: str, score: float) -> str:
    return f"Nieuwe match voor je kandidaat: {vacancy_title} (score {round(score * 100)}%)."


def at_risk_message(score: float) -> str:
    return f"Een plaatsing loopt risico (risicoscore {round(score * 100)}%). Neem contact op met je kandidaat."


def checkin_overdue_message(due_since: date) -> str:
    return f"De check-in van een plaatsing is te laat: verwacht sinds {due_since:%d-%m-%Y}."


def _title(vacancy_title: str | None) -> str:
    title = " ".join((vacancy_title or "").split())
    return title if len(title) <= TITLE_IN_MESSAGE else title[: TITLE_IN_MESSAGE - 1].rstrip() + "…"


def out_of_sight_message(last_contact: date, today: date, contact_days: int) -> str:
    """Plain language: how many days without contact (at least the region's limit that set it off), and
    since when."""
    days = max((today - last_contact).days, contact_days)
    return (
        f"Al {days} dagen geen contact met deze kandidaat (laatste contact {last_contact:%d-%m-%Y}). Neem contact op."
    )


def employer_interest_message(vacancy_title: str | None) -> str:
    """Names the vacancy, never the employer: the jobcoach answers at the introduction, not to a person."""
    title = _title(vacancy_title)
    vacancy = f"de vacature {title}" if title else "een vacature"
    return (
        f"Een werkgever wil kennismaken met je kandidaat voor {vacancy}. "
        "Vraag je kandidaat wat die wil en geef antwoord."
    )


def caseload_message(jobcoach_id: str, caseload: int, caseload_limit: int) -> str:
    return f"Jobcoach {jobcoach_id} heeft {caseload} kandidaten. Dat is meer dan de grens van {caseload_limit}."


def escalation_message(hours: int, alert_type: str = AT_RISK) -> str:
    what = "melding over een te late check-in" if alert_type == CHECKIN_OVERDUE else "risicomelding"
    return f"Een {what} is na {hours} uur nog niet bevestigd door de jobcoach."


def escalation_cutoff(now: datetime, hours: int) -> datetime:
    """At-risk and check-in-overdue alerts created at or before this moment and still unacknowledged go to
    the operators."""
    return now - timedelta(hours=hours)


@dataclass(frozen=True)
class DigestSchedule:
    """The jobcoach's daily summary goes out once a day at ``hour`` o'clock in ``zone``."""

    hour: int = 7
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Amsterdam"))

    def next_after(self, now: datetime) -> datetime:
        """The first sending time strictly after ``now``, in UTC; a day without that hour (DST) skips on."""
        local = now.astimezone(self.zone)
        day = local.date()
        while True:
            candidate = datetime.combine(day, time(self.hour), tzinfo=self.zone)
            # A wall-clock hour skipped by daylight saving time does not round-trip: take the next day.
            exists = candidate.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) == candidate.replace(
                tzinfo=None
            )
            if exists and candidate > local:
                return candidate.astimezone(UTC)
            day += timedelta(days=1)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256, keyed by the jobcoach's secret, of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str, now: int, tolerance_s: int = 300) -> bool:
    """The receiver's side of :func:`sign`, as the README tells integrators to do it."""
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def standard_key(secret: str) -> bytes | None:
    """The HMAC key of a ``whsec_<base64>`` secret, or None when the secret is not of that form."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return None
    encoded = secret.removeprefix(STANDARD_SECRET_PREFIX)
    try:
        # Padding is optional, as the standard's own libraries read it.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def webhook_secret_problem(secret: str) -> str | None:
    """Why a webhook secret is refused, or None."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return None
    key = standard_key(secret)
    low, high = STANDARD_KEY_BYTES
    if key is None or not low <= len(key) <= high:
        return f"a {STANDARD_SECRET_PREFIX} secret is followed by the base64 of {low} to {high} random bytes"
    return None


def signing_key(secret: str) -> bytes:
    """The key Standard Webhooks signatures use: a ``whsec_`` secret's decoded bytes, or else (a secret set
    before the standard was adopted) the secret's own UTF-8 bytes, which a receiver hands to the standard
    libraries as ``whsec_`` + their base64."""
    return standard_key(secret) or secret.encode("utf-8")


def standard_signature(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` for each secret,
    separated by spaces, so that a receiver holding either secret during a rotation accepts the message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode("ascii")
        for secret in secrets
    )


def signing_secrets(channels: dict, now: datetime) -> list[str]:
    """The secrets a delivery is signed with: the current one, and the previous one while its rotation's
    grace period lasts."""
    secrets = [channels["webhook_secret"] or ""]
    previous, until = channels.get("webhook_secret_previous"), channels.get("webhook_secret_previous_until")
    if previous and until is not None and until > now and previous != secrets[0]:
        secrets.append(previous)
    return secrets


def retry_delay(attempt: int, first_s: float, max_s: float, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter (a random half to all of the ceiling), so that receivers that come
    back are not hit by every sender at once."""
    ceiling = min(max_s, first_s * (2 ** (attempt - 1)))
    return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))


def webhook_url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None. Credentials in a URL end up in logs and proxies."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials; use webhook_secret to verify the sender instead"
    if any(character.isspace() or ord(character) < 32 for character in url):
        return "must not contain spaces or control characters"
    try:
        parts.port  # noqa: B018 - urlsplit checks the port's range only when asked for it
    except ValueError:
        return "has a port outside 1-65535"
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None
    if address.is_multicast or address.is_unspecified:
        return "must name a reachable host"
    return None


def forbidden_address(address: str) -> bool:
    """An address a webhook must not reach unless private networks are allowed: loopback, private
    ranges, link-local (cloud metadata services live there), and the other special-purpose blocks."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


_MAIL_CLOSING = (
    "Bekijk en bevestig je meldingen in je Werkbrug-inbox.\n"
    "\n"
    "Dit bericht is automatisch verstuurd; een antwoord wordt niet gelezen.\n"
)


def _summary_lines(alert: dict, zone: ZoneInfo) -> list[str]:
    """Type, message, time and ids only: the alert's details (talents, needs, reasons) never go by mail,
    because mail is stored and forwarded beyond the platform's reach."""
    lines = [
        f"Soort:       {TYPE_LABELS.get(alert['type'], alert['type'])}",
        f"Melding:     {alert['message']}",
        f"Tijd:        {alert['created_at'].astimezone(zone):%d-%m-%Y %H:%M}",
        f"Meldingnr.:  {alert['id']}",
        f"Kandidaat:   {alert['candidate_id']}",
    ]
    if alert.get("placement_id"):
        lines.append(f"Plaatsing:   {alert['placement_id']}")
    if alert.get("vacancy_id"):
        lines.append(f"Vacature:    {alert['vacancy_id']}")
    return lines


def alert_mail(alert: dict, zone: ZoneInfo) -> MailText:
    label = TYPE_LABELS.get(alert["type"], alert["type"])
    body = "\n".join(
        [
            "Beste jobcoach,",
            "",
            "Er staat een nieuwe melding voor je klaar in Werkbrug.",
            "",
            *_summary_lines(alert, zone),
        ]
    )
    return MailText(subject=f"Werkbrug: {label.lower()}", body=f"{body}\n\n{_MAIL_CLOSING}")


def digest_mail(alerts: Sequence[dict], day: date, zone: ZoneInfo) -> MailText:
    ordered = sorted(alerts, key=lambda alert: (alert["created_at"], alert["id"]))
    count = len(ordered)
    noun = "melding" if count == 1 else "meldingen"
    parts = [
        "Beste jobcoach,",
        "",
        f"Sinds het vorige overzicht kwam{'' if count == 1 else 'en'} er {count} {noun} voor je binnen in Werkbrug.",
    ]
    for number, alert in enumerate(ordered, start=1):
        parts += ["", f"{number}.", *_summary_lines(alert, zone)]
    body = "\n".join(parts)
    return MailText(subject=f"Werkbrug: dagoverzicht {day:%d-%m-%Y}, {count} {noun}", body=f"{body}\n\n{_MAIL_CLOSING}")
