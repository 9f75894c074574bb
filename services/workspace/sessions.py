"""Signing in and out, and what a signed-in person's request carries: the commands behind the sign-in pages.

A session is a random token in a signed, HttpOnly cookie. The database keeps only its hash, and the
person's short-lived API key sealed with a key derived from the token: neither the cookie alone (it
never holds the API key) nor the database alone (it never holds the token) yields a usable key.
Keys live ``key_ttl`` and are renewed while the person is active; they are revoked outright at sign-out and
when the session idles out: at the session's own next request, or by the sweep that any request sets off
(see :class:`IdleSweep`), so a browser that never comes back does not leave a live key behind.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.workspace import store
from services.workspace.context import WorkspaceContext
from shared.registry import Person

log = logging.getLogger(__name__)

KEY_LABEL = "workspace-session"
# Renew the key when less than this part of its life is left, so a busy person never meets an expired one.
RENEW_WHEN_LEFT = 0.5
# last_seen_at is written at most this often: a page view should not always be a database write.
TOUCH_EVERY = timedelta(minutes=1)
# How often a process looks for sessions that idled out: a key outlives its session by at most this much.
SWEEP_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request, with the API key the workspace acts with (never sent to the browser)."""

    token_hash: str
    tenant: str
    role: str
    subject: str | None
    email: str
    api_key: str


@dataclass(frozen=True)
class Throttled:
    retry_after: timedelta


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _keystream(token: str, length: int) -> bytes:
    return hashlib.shake_256(b"werkbrug-workspace-api-key\0" + token.encode("utf-8")).digest(length)


def seal(token: str, api_key: str) -> str:
    data = api_key.encode("utf-8")
    return bytes(a ^ b for a, b in zip(data, _keystream(token, len(data)), strict=True)).hex()


def unseal(token: str, sealed: str) -> str:
    data = bytes.fromhex(sealed)
    return bytes(a ^ b for a, b in zip(data, _keystream(token, len(data)), strict=True)).decode("utf-8")


def _scopes(context: WorkspaceContext, email: str, address: str) -> tuple[str, str]:
    # An HMAC, not the address itself: the failures table must not become a list of e-mail addresses.
    mac = hmac.new(context.settings.secret_key.encode(), email.strip().lower().encode(), hashlib.sha256)
    return f"account:{mac.hexdigest()[:40]}", f"address:{address[:100]}"


def throttled(context: WorkspaceContext, email: str, address: str) -> Throttled | None:
    """Whether sign-in for this e-mail or from this address is paused after too many failures. The e-mail
    counts whether or not it has an account, so that the pause does not tell either."""
    settings = context.settings
    now = context.clock()
    window = timedelta(seconds=settings.throttle_window_s)
    account, client = _scopes(context, email, address)
    with context.db.session() as session:
        for scope, limit in ((account, settings.max_failures_per_account), (client, settings.max_failures_per_address)):
            if store.failures(session, scope, now - window) >= limit:
                ends = store.window_ends(session, scope, window) or now + window
                return Throttled(max(ends - now, timedelta(seconds=1)))
    return None


def sign_in(context: WorkspaceContext, email: str, password: str, address: str) -> str | Throttled | None:
    """A new session token for the right e-mail and password; None for a wrong pair (whichever part is
    wrong), Throttled after too many failures."""
    pause = throttled(context, email, address)
    if pause is not None:
        return pause
    person = context.registry.check_password(email, password)
    now = context.clock()
    account, client = _scopes(context, email, address)
    window_start = now - timedelta(seconds=context.settings.throttle_window_s)
    with context.db.session() as session:
        if person is None:
            store.record_failure(session, account, now, window_start)
            store.record_failure(session, client, now, window_start)
            return None
        store.clear_failures(session, account)
    return _open_session(context, person, now)


def _open_session(context: WorkspaceContext, person: Person, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(minutes=context.settings.key_ttl_minutes)
    key_id, api_key = context.registry.issue_key(person.tenant, person.role, person.subject, KEY_LABEL, expires_at)
    with context.db.session() as session:
        store.add_session(
            session,
            {
                "token_hash": token_hash(token),
                "person_id": person.id,
                "tenant": person.tenant,
                "role": person.role,
                "subject": person.subject,
                "email": person.email,
                "key_id": key_id,
                "key_sealed": seal(token, api_key),
                "key_expires_at": expires_at,
                "created_at": now,
                "last_seen_at": now,
            },
        )
    return token


def resume(context: WorkspaceContext, token: str) -> SignedIn | None:
    """The signed-in person for a cookie's token; None when the session ended, idled out or never was."""
    now = context.clock()
    digest = token_hash(token)
    with context.db.session() as session:
        row = store.get_session(session, digest)
    if row is None:
        return None
    if now - row["last_seen_at"] > timedelta(minutes=context.settings.idle_minutes):
        sign_out(context, token)
        return None
    api_key = unseal(token, row["key_sealed"])
    ttl = timedelta(minutes=context.settings.key_ttl_minutes)
    if row["key_expires_at"] - now < ttl * RENEW_WHEN_LEFT:
        api_key = _renew_key(context, row, token, now + ttl)
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        with context.db.session() as session:
            store.touch_session(session, digest, now)
    return SignedIn(digest, row["tenant"], row["role"], row["subject"], row["email"], api_key)


def _renew_key(context: WorkspaceContext, row: dict, token: str, expires_at: datetime) -> str:
    key_id, api_key = context.registry.issue_key(row["tenant"], row["role"], row["subject"], KEY_LABEL, expires_at)
    with context.db.session() as session:
        replaced = store.replace_key(
            session, row["token_hash"], row["key_id"], key_id, seal(token, api_key), expires_at
        )
        current = None if replaced else store.get_session(session, row["token_hash"])
    if not replaced:
        # A parallel request of the same session renewed first: keep its key, drop ours.
        context.registry.revoke_key(key_id)
        return unseal(token, current["key_sealed"]) if current else api_key
    context.registry.revoke_key(row["key_id"])
    return api_key


def sign_out(context: WorkspaceContext, token: str) -> None:
    with context.db.session() as session:
        key_id = store.delete_session(session, token_hash(token))
    if key_id is not None:
        context.registry.revoke_key(key_id)


def end_idle_sessions(context: WorkspaceContext) -> int:
    """Remove sessions idle past the limit and revoke their keys (which would expire soon anyway)."""
    idle_since = context.clock() - timedelta(minutes=context.settings.idle_minutes)
    with context.db.session() as session:
        key_ids = store.delete_idle_sessions(session, idle_since)
    for key_id in key_ids:
        context.registry.revoke_key(key_id)
    return len(key_ids)


class IdleSweep:
    """Ends idle sessions at most every ``SWEEP_EVERY`` of this process's clock, on the back of any request.
    The workspace has no background process of its own; its web processes are always there while people
    can sign in, which is when keys exist."""

    def __init__(self, every: timedelta = SWEEP_EVERY) -> None:
        self.every = every
        self._next_at: datetime | None = None
        self._lock = threading.Lock()

    def __call__(self, context: WorkspaceContext) -> int:
        now = context.clock()
        with self._lock:
            if self._next_at is not None and now < self._next_at:
                return 0
            self._next_at = now + self.every
        try:
            return end_idle_sessions(context)
        except Exception as exc:
            # The page the person asked for matters more than the sweep, which the next interval repeats.
            log.warning("idle session sweep failed", extra={"ctx": {"error": type(exc).__name__}})
            return 0
