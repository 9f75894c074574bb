"""The notification service's rules, free of I/O: alert texts, webhook signatures, retry timing."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from datetime import timedelta
from urllib.parse import urlsplit

SIGNATURE_HEADER = "Werkbrug-Signature"
TIMESTAMP_HEADER = "Werkbrug-Timestamp"
ALERT_ID_HEADER = "Werkbrug-Alert-Id"

ALERT_TYPE_OF_EVENT = {
    "nl.werkbrug.match.proposed": "match_proposed",
    "nl.werkbrug.placement.at_risk": "placement_at_risk",
    "nl.werkbrug.placement.checkin_overdue": "checkin_overdue",
}


def match_message(vacancy_title: str, score: float) -> str:
    return f"Nieuwe match voor je kandidaat: {vacancy_title} (score {round(score * 100)}%)."


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256, keyed by the jobcoach's secret, of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str, now: int, tolerance_s: int = 300) -> bool:
    """The receiver's side of :func:`sign`, as the README tells integrators to do it."""
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def retry_delay(attempt: int, first_s: float, max_s: float, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with full jitter: receivers that come back are not hit by every sender at once."""
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
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None
    if address.is_multicast or address.is_unspecified:
        return "must name a reachable host"
    return None
