"""The channels' senders: a signed webhook POST under one deadline to the address that was checked, and
mail over SMTP. They say what a receiver did in a few fixed words, never what it answered."""

from __future__ import annotations

import json
import logging
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from services.notification import domain
from services.notification.config import SmtpSettings
from shared import tracing

log = logging.getLogger(__name__)


DEAD_LETTER_REASON = "delivery_failed"

# What ``last_error`` may say: what the receiver did, in fixed words. Never its answer's text, and never
# what an address inside our network answered: the jobcoach reads this in their inbox.
TIMEOUT = "timeout"
CONNECTION_REFUSED = "connection refused"
CONNECTION_FAILED = "connection failed"
ADDRESS_NOT_ALLOWED = "address not allowed"
DNS_FAILED = "DNS lookup failed"
TLS_FAILED = "TLS error"
NO_VALID_ANSWER = "no valid HTTP answer"
CHANNEL_REMOVED = "channel removed"

# Enough for a status line and its headers; the body of a webhook's answer is never read.
MAX_ANSWER_BYTES = 4096
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: [^\r\n]*)?")


class ChannelRemoved(Exception):
    """The jobcoach took the channel away after the alert was queued: nothing to send to, nothing to retry."""


class _NoValidAnswer(Exception):
    pass


# An alert's trace context travels in the webhook's headers, never in the body the receiver verifies and reads.
TRACE_KEYS = (tracing.TRACEPARENT, tracing.TRACESTATE)


def alert_document(tenant: str, alert: dict) -> dict:
    return {
        "tenant": tenant,
        **{
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in alert.items()
            if key not in TRACE_KEYS
        },
    }


def trace_headers(alert: dict) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the event the alert came from, so that the receiver can join
    its trace; none for an alert without one (stored before the trace was kept, or from an untraced event)."""
    context = tracing.parse(alert.get(tracing.TRACEPARENT), alert.get(tracing.TRACESTATE))
    return context.attributes() if context else {}


def receiver_of(url: str | None) -> str:
    """The receiver a webhook URL names, for fairness and backoff: scheme, host and port."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port or (443 if parts.scheme == 'https' else 80)}"


def http_outcome(status: int) -> str | None:
    """None for a 2xx; otherwise the status class alone (a redirect is not followed: it could point inward)."""
    return None if 200 <= status < 300 else f"HTTP {status // 100}xx"


Connect = Callable[[str, int, float], socket.socket]


def _connect(address: str, port: int, timeout_s: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _resolve(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    # A TCP socket address (IPv4 or IPv6) starts with the address as text.
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


class WebhookSender:
    """POSTs a signed alert under one deadline, to the very address that was checked.

    The name is resolved once; every address it gives must be allowed, and the connection goes to one of
    those addresses, never through a second lookup that could answer differently (DNS rebinding). The
    ``Host`` header, TLS's SNI and the certificate check still use the name. Only the status line and
    headers are read, at most :data:`MAX_ANSWER_BYTES`, and connecting, sending and reading together
    end at the deadline, however slowly the receiver trickles.
    """

    def __init__(
        self,
        deadline_s: float,
        *,
        allow_private_networks: bool = False,
        resolve: Callable[[str, int], list[str]] | None = None,
        connect: Connect | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.deadline_s = deadline_s
        self.allow_private_networks = allow_private_networks
        self.resolve = resolve or _resolve
        self.connect = connect or _connect
        self.tls = tls or ssl.create_default_context()

    def send(self, tenant: str, alert: dict, channels: dict) -> str | None:
        """POST the signed alert; the fixed words of what went wrong, or None when it arrived.

        ``channels`` holds the jobcoach's webhook and ``signing_secrets``: the current secret first, then
        the previous one while a rotation's grace period lasts."""
        if not channels["webhook_url"]:
            raise ChannelRemoved
        body = json.dumps(alert_document(tenant, alert), separators=(",", ":")).encode("utf-8")
        # Real time, not the injected clock: the receiver checks it against its own clock.
        timestamp = int(time.time())
        secrets = channels.get("signing_secrets") or [channels["webhook_secret"] or ""]
        headers = {
            "Content-Type": "application/json",
            # The alert's id: a retried delivery carries the same one, so that a receiver can drop repeats.
            domain.WEBHOOK_ID_HEADER: alert["id"],
            domain.WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
            domain.WEBHOOK_SIGNATURE_HEADER: domain.standard_signature(secrets, alert["id"], timestamp, body),
            domain.TIMESTAMP_HEADER: str(timestamp),
            domain.SIGNATURE_HEADER: domain.sign(secrets[0], timestamp, body),
            domain.ALERT_ID_HEADER: alert["id"],
            "User-Agent": "werkbrug-notification/1",
            **trace_headers(alert),
        }
        return self.post(channels["webhook_url"], body, headers)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        deadline = time.monotonic() + self.deadline_s
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError):
            return DNS_FAILED
        if not addresses:
            return DNS_FAILED
        if not self.allow_private_networks and any(domain.forbidden_address(a) for a in addresses):
            return ADDRESS_NOT_ALLOWED
        request = _request_bytes(parts, host, port, body, headers)
        try:
            return http_outcome(self._exchange(addresses, port, host, parts.scheme == "https", request, deadline))
        except TimeoutError:
            return TIMEOUT
        except ConnectionRefusedError:
            return CONNECTION_REFUSED
        except (ssl.SSLError, ssl.CertificateError):
            return TLS_FAILED
        except _NoValidAnswer:
            return NO_VALID_ANSWER
        except OSError:
            return CONNECTION_FAILED

    def _exchange(self, addresses: list[str], port: int, host: str, tls: bool, request: bytes, deadline: float) -> int:
        sock = self._open(addresses, port, deadline)
        try:
            if tls:
                sock.settimeout(_remaining(deadline))
                sock = self.tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(_remaining(deadline))
            sock.sendall(request)
            return _read_status(sock, deadline)
        finally:
            sock.close()

    def _open(self, addresses: list[str], port: int, deadline: float) -> socket.socket:
        """A connection to the first of the checked addresses that takes one."""
        error: OSError = ConnectionRefusedError()
        for address in addresses:
            try:
                return self.connect(address, port, _remaining(deadline))
            except TimeoutError:
                raise
            except OSError as exc:
                error = exc
        raise error


def _request_bytes(parts, host: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    name = f"[{host}]" if ":" in host else host
    default_port = 443 if parts.scheme == "https" else 80
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {name}" + ("" if port == default_port else f":{port}"),
        *(f"{key}: {value}" for key, value in headers.items()),
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _read_status(sock: socket.socket, deadline: float) -> int:
    """The status code, from at most :data:`MAX_ANSWER_BYTES` read before the deadline: the status line is
    the receiver's verdict, and nothing after it is read."""
    buffer = b""
    while b"\r\n" not in buffer:
        if len(buffer) >= MAX_ANSWER_BYTES:
            raise _NoValidAnswer
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(MAX_ANSWER_BYTES - len(buffer))
        if not chunk:
            raise _NoValidAnswer
        buffer += chunk
    match = _STATUS_LINE.fullmatch(buffer.partition(b"\r\n")[0])
    if match is None:
        raise _NoValidAnswer
    status = int(match.group(1))
    if status < 200:
        # An interim answer (100 Continue) to a request that asked for none.
        raise _NoValidAnswer
    return status


def build_mail(sender: str, recipient: str, text: domain.MailText, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = text.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{message_id}@werkbrug.nl>"
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps the Dutch text intact through relays that do not speak 8BITMIME.
    message.set_content(text.body, charset="utf-8", cte="quoted-printable")
    return message


class EmailSender:
    def __init__(self, settings: SmtpSettings, zone: ZoneInfo, smtp_factory: Callable[..., smtplib.SMTP] | None = None):
        self.settings = settings
        self.zone = zone
        self.smtp_factory = smtp_factory or smtplib.SMTP

    def send(self, tenant: str, alert: dict, channels: dict) -> str | None:
        if not channels["email"]:
            raise ChannelRemoved
        mail = build_mail(self.settings.sender, channels["email"], domain.alert_mail(alert, self.zone), alert["id"])
        return self._send(mail)

    def send_digest(self, tenant: str, alerts: list[dict], channels: dict, day: date) -> str | None:
        if not channels["email"]:
            raise ChannelRemoved
        # The same alerts give the same Message-ID, so a digest sent twice after a crash reads as one.
        message_id = uuid.uuid5(uuid.NAMESPACE_URL, "digest:" + ",".join(sorted(a["id"] for a in alerts)))
        text = domain.digest_mail(alerts, day, self.zone)
        return self._send(build_mail(self.settings.sender, channels["email"], text, str(message_id)))

    def _send(self, mail: EmailMessage) -> str | None:
        """Hand the mail to the SMTP server; the error (codes only: a server's text may quote the address),
        or None once the server accepted it."""
        settings = self.settings
        try:
            with self.smtp_factory(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
                if settings.starttls:
                    smtp.starttls()
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _text in exc.recipients.values()})
            return f"SMTP {'/'.join(str(code) for code in codes)} recipient refused"
        except smtplib.SMTPResponseException as exc:
            return f"SMTP {exc.smtp_code}"
        except (smtplib.SMTPException, OSError) as exc:
            return type(exc).__name__
        return None
