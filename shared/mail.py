"""Outgoing mail: one way to read the SMTP settings from the environment and to hand a message over.

The notification service sends alerts with it and the admin command line sends workspace invitations.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from shared.config import ConfigError, _float, _int

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    starttls: bool
    username: str | None
    password: str | None
    timeout_s: float


def smtp_configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether an SMTP server was named at all (a process that only may send mail asks this first)."""
    return bool(env.get("SMTP_HOST", "").strip())


def smtp_settings(env: Mapping[str, str] = os.environ) -> SmtpSettings:
    port = _int(env, "SMTP_PORT", 25)
    if not 1 <= port <= 65535:
        raise ConfigError(f"SMTP_PORT must be a port number, got {port}")
    username = env.get("SMTP_USERNAME") or None
    password = env.get("SMTP_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError("SMTP_USERNAME and SMTP_PASSWORD go together: set both or neither")
    starttls = _flag(env, "SMTP_STARTTLS")
    if username is not None and not starttls:
        # Refusing here beats sending a mailbox password over a plain connection on the first mail.
        raise ConfigError("SMTP_USERNAME needs SMTP_STARTTLS=true: the password must not travel in clear")
    sender = env.get("SMTP_FROM", "Werkbrug <noreply@werkbrug.nl>").strip()
    if "@" not in sender:
        raise ConfigError(f"SMTP_FROM must be an e-mail address, got {sender!r}")
    return SmtpSettings(
        host=env.get("SMTP_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=port,
        sender=sender,
        starttls=starttls,
        username=username,
        password=password,
        timeout_s=_float(env, "SMTP_TIMEOUT_SECONDS", 10.0),
    )


def send(settings: SmtpSettings, message: EmailMessage, smtp_factory=smtplib.SMTP) -> None:
    """Hand one message to the SMTP server; raises smtplib.SMTPException or OSError when it is refused."""
    with smtp_factory(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "false").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value in _TRUE
