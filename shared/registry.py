"""Tenants, API keys and people: who may call the API or sign in, for which region, in which role, as whom.

Keys are stored only as SHA-256 hashes. A key is 32 random bytes, so a slow password hash would add
latency to every request without adding protection against guessing. People's passwords are chosen by
people, so they get the slow one: Argon2id. A key may expire (the workspace's short-lived keys do).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar, cast

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.cache import TTLCache
from shared.db import Database, UtcDateTime, affected_rows, upgrade, utcnow
from shared.errors import Refused
from shared.tenant_settings import TenantSettings

T = TypeVar("T", bound=TenantSettings)

log = logging.getLogger(__name__)

ROLES = ("employer", "jobcoach", "operator", "council")
ROLES_WITH_SUBJECT = ("employer", "jobcoach")
TENANT_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KEY_PREFIX = "wbk_"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
INVITE_VALID_FOR = timedelta(hours=48)
MIGRATIONS = Path(__file__).with_name("registry_migrations")
# The promise: a revoked or expired key is refused by every process within this many seconds. Each process
# caches key lookups for at most this long (expiry itself is checked on every request, even from the cache).
REFUSAL_BOUND_SECONDS = 10.0
# last_used_at is written at most this often per key and process: knowing the minute is enough to see a
# forgotten key, and a write per request would double the cost of a read.
LAST_USED_EVERY = timedelta(minutes=1)

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("slug", sa.String(63), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("settings", sa.JSON, nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("tenant", sa.String(63), sa.ForeignKey("tenants.slug"), nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("subject", sa.String(100), nullable=True),
    sa.Column("label", sa.String(100), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
)

people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(63), sa.ForeignKey("tenants.slug"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("subject", sa.String(100), nullable=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=True),
    # Only a hash of the one-time link's token, like keys: the registry alone cannot set a password.
    sa.Column("invite_token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("invite_expires_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_set_at", UtcDateTime, nullable=True),
    sa.Column("disabled_at", UtcDateTime, nullable=True),
)


class RegistryError(Refused):
    """A tenant or key request that cannot be carried out, with a message fit for the command line."""


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: str
    subject: str | None


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the key, nor its hash."""

    id: int
    tenant: str
    role: str
    subject: str | None
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Person:
    id: int
    tenant: str
    role: str
    subject: str | None
    email: str


_HASHER = PasswordHasher()  # argon2-cffi's defaults: Argon2id, RFC 9106's low-memory profile


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the e-mail is unknown, so that an unknown address costs the same time as a wrong
    password and the answer's timing does not tell which addresses have accounts."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_tenant_slug(slug: str) -> str:
    if not TENANT_SLUG.match(slug):
        raise RegistryError(f"tenant slug must be lower-case letters, digits and dashes: {slug!r}")
    return slug


class Registry:
    """Tenants, keys, people and the tenants' settings.

    ``tenant_settings`` is the declaration of the settings this process reads (a service's own, or several
    combined for whoever changes them); ``settings()`` answers in its terms. ``clock`` stamps and expires
    keys; when one is given, the caches age by it too (tests move it instead of waiting), otherwise by the
    monotonic clock, which a change of the wall clock cannot hold back.
    """

    def __init__(
        self,
        db: Database,
        cache_seconds: float = 5.0,
        tenant_settings: type[TenantSettings] = TenantSettings,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if cache_seconds > REFUSAL_BOUND_SECONDS:
            raise ValueError(f"key lookups may be cached for at most {REFUSAL_BOUND_SECONDS:g} s")
        self.db = db
        self.cache_seconds = cache_seconds
        self.tenant_settings = tenant_settings
        self.clock = clock or utcnow
        ages: dict = {"now": lambda: self.clock().timestamp()} if clock is not None else {}
        # Keys by hash (with their expiry), settings by tenant: a revocation or a change reaches every process
        # within the time to live; an expiry is exact even from the cache.
        self._principals: TTLCache[str, tuple[Principal | None, datetime | None]] = TTLCache(cache_seconds, **ages)
        self._settings: TTLCache[tuple[str, type], TenantSettings] = TTLCache(cache_seconds, **ages)
        # When this process last wrote a key's last_used_at, by key hash.
        self._last_used_written: dict[str, datetime] = {}

    def migrate(self) -> None:
        upgrade(MIGRATIONS, self.db.url)

    def create_tenant(self, slug: str, name: str | None = None) -> bool:
        """Create a tenant; returns False when it already existed (so scripts can run twice)."""
        validate_tenant_slug(slug)
        with self.db.session() as session:
            if session.execute(sa.select(tenants.c.slug).where(tenants.c.slug == slug)).first():
                return False
            session.execute(tenants.insert().values(slug=slug, name=name or slug, created_at=utcnow()))
        return True

    def settings(self, tenant: str, declaration: type[T] | None = None) -> T:
        """The tenant's settings (defaults where none were set) in the terms of ``declaration``, by default
        this process's own; cached like keys are."""
        wanted = declaration or self.tenant_settings

        def load() -> TenantSettings:
            with self.db.session() as session:
                stored = session.execute(sa.select(tenants.c.settings).where(tenants.c.slug == tenant)).scalar()
            return wanted.from_dict(stored)

        return cast(T, self._settings.get((tenant, wanted), load))

    def change_settings(self, tenant: str, changes: dict[str, str]) -> TenantSettings:
        with self.db.session() as session:
            row = session.execute(sa.select(tenants.c.settings).where(tenants.c.slug == tenant)).first()
            if row is None:
                raise RegistryError(f"no tenant {tenant!r}")
            updated = self.tenant_settings.from_dict(row.settings).with_changes(changes)
            # Merged into what is stored: the settings of services this process does not know stay as they are.
            stored = {**(row.settings or {}), **updated.to_dict()}
            session.execute(tenants.update().where(tenants.c.slug == tenant).values(settings=stored))
        self._settings.invalidate()
        return updated

    def tenant_slugs(self) -> list[str]:
        with self.db.session() as session:
            return list(session.execute(sa.select(tenants.c.slug).order_by(tenants.c.slug)).scalars())

    def create_key(self, tenant: str, role: str, subject: str | None, label: str | None = None) -> str:
        return self.issue_key(tenant, role, subject, label)[1]

    def issue_key(
        self, tenant: str, role: str, subject: str | None, label: str | None = None, expires_at: datetime | None = None
    ) -> tuple[int, str]:
        """A new key and its id (for revoking it later); with ``expires_at`` it is refused from then on."""
        _check_role_and_subject(role, subject, "key")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            _require_tenant(session, tenant)
            key_id = session.execute(
                api_keys.insert()
                .values(
                    key_hash=hash_key(key),
                    tenant=tenant,
                    role=role,
                    subject=subject,
                    label=label,
                    created_at=self.clock(),
                    expires_at=expires_at,
                )
                .returning(api_keys.c.id)
            ).scalar_one()
        return key_id, key

    def revoke_key(self, key_id: int) -> bool:
        """Revoke one key by its id; False when there is no such key or it was revoked already."""
        with self.db.session() as session:
            result = session.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
        self._principals.invalidate()
        return bool(affected_rows(result))

    def key_info(self, key_id: int) -> KeyInfo | None:
        with self.db.session() as session:
            row = session.execute(sa.select(*_KEY_INFO_COLUMNS).where(api_keys.c.id == key_id)).first()
        return KeyInfo(**row._mapping) if row else None

    def list_keys(self, tenant: str) -> list[KeyInfo]:
        """Every key of a tenant, revoked and expired ones too, oldest first."""
        with self.db.session() as session:
            _require_tenant(session, tenant)
            rows = session.execute(
                sa.select(*_KEY_INFO_COLUMNS).where(api_keys.c.tenant == tenant).order_by(api_keys.c.id)
            ).all()
        return [KeyInfo(**row._mapping) for row in rows]

    def rotate_key(
        self, key_id: int, grace: timedelta, expires_at: datetime | None = None
    ) -> tuple[int, str, datetime]:
        """A new key for the same tenant, role and subject; the old one keeps working for ``grace`` (or less,
        if it was to expire sooner), so that whoever holds it has time to switch. Returns the new key's id,
        the key, and when the old one stops working."""
        if grace < timedelta(0):
            raise RegistryError("the grace period cannot be negative")
        now = self.clock()
        with self.db.session() as session:
            old = session.execute(sa.select(*_KEY_INFO_COLUMNS).where(api_keys.c.id == key_id)).first()
            if old is None:
                raise RegistryError(f"no key with id {key_id}")
            if old.revoked_at is not None:
                raise RegistryError(f"key {key_id} is revoked; create a new one instead")
            if old.expires_at is not None and old.expires_at <= now:
                raise RegistryError(f"key {key_id} has expired; create a new one instead")
            old_ends = min(now + grace, old.expires_at) if old.expires_at is not None else now + grace
            key = KEY_PREFIX + secrets.token_urlsafe(32)
            new_id = session.execute(
                api_keys.insert()
                .values(
                    key_hash=hash_key(key),
                    tenant=old.tenant,
                    role=old.role,
                    subject=old.subject,
                    label=old.label,
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(api_keys.c.id)
            ).scalar_one()
            session.execute(api_keys.update().where(api_keys.c.id == key_id).values(expires_at=old_ends))
        self._principals.invalidate()
        return new_id, key, old_ends

    def revoke_labelled_keys(self, tenant: str, label: str) -> int:
        with self.db.session() as session:
            result = session.execute(
                api_keys.update()
                .where(api_keys.c.tenant == tenant, api_keys.c.label == label, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        self._principals.invalidate()
        return affected_rows(result)

    def authenticate(self, key: str) -> Principal | None:
        """The principal behind a key, or None. Answers are cached briefly, so a revocation takes up to
        ``cache_seconds`` to reach every process; an expiry counts at once."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        digest = hash_key(key)

        def load() -> tuple[Principal | None, datetime | None]:
            with self.db.session() as session:
                row = session.execute(
                    sa.select(api_keys.c.tenant, api_keys.c.role, api_keys.c.subject, api_keys.c.expires_at).where(
                        api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
                    )
                ).first()
            return (Principal(row.tenant, row.role, row.subject), row.expires_at) if row else (None, None)

        principal, expires_at = self._principals.get(digest, load)
        now = self.clock()
        if principal is None or (expires_at is not None and expires_at <= now):
            return None
        self._note_use(digest, now)
        return principal

    def _note_use(self, digest: str, now: datetime) -> None:
        written = self._last_used_written.get(digest)
        if written is not None and now - written < LAST_USED_EVERY:
            return
        if len(self._last_used_written) >= 10_000:
            self._last_used_written.clear()
        self._last_used_written[digest] = now
        try:
            with self.db.session() as session:
                # The condition spares the write when another replica recorded this minute already.
                session.execute(
                    api_keys.update()
                    .where(
                        api_keys.c.key_hash == digest,
                        sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at <= now - LAST_USED_EVERY),
                    )
                    .values(last_used_at=now)
                )
        except sa.exc.SQLAlchemyError as exc:
            # A bookkeeping write must not fail the request it describes; the next minute tries again.
            log.warning("could not record a key's last use", extra={"ctx": {"error": type(exc).__name__}})

    # People: accounts of those who sign in to the workspace.

    def create_person(
        self, tenant: str, role: str, subject: str | None, email: str, password: str | None = None
    ) -> Person:
        """A new account; with a password it can sign in at once, without one it waits for an invitation."""
        email = normalise_email(email)
        _check_role_and_subject(role, subject, "person")
        if password is not None:
            check_password_rules(password)
        with self.db.session() as session:
            _require_tenant(session, tenant)
            if session.execute(sa.select(people.c.id).where(people.c.email == email)).first():
                raise RegistryError(f"{email} already has an account")
            now = utcnow()
            person_id = session.execute(
                people.insert()
                .values(
                    tenant=tenant,
                    role=role,
                    subject=subject,
                    email=email,
                    password_hash=_HASHER.hash(password) if password is not None else None,
                    password_set_at=now if password is not None else None,
                    created_at=now,
                )
                .returning(people.c.id)
            ).scalar_one()
        return Person(person_id, tenant, role, subject, email)

    def invite_person(
        self, tenant: str, role: str, subject: str | None, email: str, valid_for: timedelta = INVITE_VALID_FOR
    ) -> tuple[Person, str]:
        """A one-time token to set a password, valid for ``valid_for``. Inviting the same person again (same
        tenant, role and subject) replaces the earlier token; an address of another account is refused."""
        email = normalise_email(email)
        _check_role_and_subject(role, subject, "person")
        token = secrets.token_urlsafe(32)
        with self.db.session() as session:
            _require_tenant(session, tenant)
            row = session.execute(sa.select(people).where(people.c.email == email)).first()
            values = {"invite_token_hash": hash_key(token), "invite_expires_at": utcnow() + valid_for}
            if row is None:
                person_id = session.execute(
                    people.insert()
                    .values(tenant=tenant, role=role, subject=subject, email=email, created_at=utcnow(), **values)
                    .returning(people.c.id)
                ).scalar_one()
            elif (row.tenant, row.role, row.subject) != (tenant, role, subject):
                raise RegistryError(f"{email} already has an account for another region, role or subject")
            else:
                person_id = row.id
                session.execute(people.update().where(people.c.id == row.id).values(**values))
        return Person(person_id, tenant, role, subject, email), token

    def people_of(self, tenant: str, role: str) -> list[Person]:
        """The region's accounts in one role, ordered by subject and e-mail; a disabled account is left out.
        Only ever one region's: the caller passes the signed-in person's own tenant."""
        if role not in ROLES:
            raise RegistryError(f"role must be one of {', '.join(ROLES)}")
        with self.db.session() as session:
            rows = session.execute(
                sa.select(people)
                .where(people.c.tenant == tenant, people.c.role == role, people.c.disabled_at.is_(None))
                .order_by(people.c.subject, people.c.email)
            ).all()
        return [_person(row) for row in rows]

    def invitation(self, token: str) -> Person | None:
        """The person an unused, unexpired invitation token belongs to."""
        with self.db.session() as session:
            row = session.execute(
                sa.select(people).where(
                    people.c.invite_token_hash == hash_key(token),
                    people.c.invite_expires_at > utcnow(),
                    people.c.disabled_at.is_(None),
                )
            ).first()
        return _person(row) if row else None

    def redeem_invitation(self, token: str, password: str) -> Person | None:
        """Set the password with an invitation token, which is then spent; None if the token is not valid."""
        check_password_rules(password)
        password_hash = _HASHER.hash(password)
        with self.db.session() as session:
            row = session.execute(
                sa.select(people).where(
                    people.c.invite_token_hash == hash_key(token),
                    people.c.invite_expires_at > utcnow(),
                    people.c.disabled_at.is_(None),
                )
            ).first()
            if row is None:
                return None
            session.execute(
                people.update()
                .where(people.c.id == row.id)
                .values(
                    password_hash=password_hash,
                    password_set_at=utcnow(),
                    invite_token_hash=None,
                    invite_expires_at=None,
                )
            )
        return _person(row)

    def set_password(self, email: str, password: str) -> Person:
        check_password_rules(password)
        email = normalise_email(email)
        with self.db.session() as session:
            row = session.execute(sa.select(people).where(people.c.email == email)).first()
            if row is None:
                raise RegistryError(f"no account for {email}")
            session.execute(
                people.update()
                .where(people.c.id == row.id)
                .values(password_hash=_HASHER.hash(password), password_set_at=utcnow())
            )
        return _person(row)

    def check_password(self, email: str, password: str) -> Person | None:
        """The person with this e-mail and password, or None. Unknown addresses, accounts without a password
        and wrong passwords take the same Argon2 work, so neither answer nor time tells them apart."""
        try:
            email = normalise_email(email)
        except RegistryError:
            email = ""
        with self.db.session() as session:
            row = session.execute(
                sa.select(people).where(people.c.email == email, people.c.disabled_at.is_(None))
            ).first()
        stored = row.password_hash if row is not None and row.password_hash else _dummy_hash()
        try:
            _HASHER.verify(stored, password[:MAX_PASSWORD_LENGTH])
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.password_hash:
            return None
        if _HASHER.check_needs_rehash(stored):
            with self.db.session() as session:
                session.execute(
                    people.update().where(people.c.id == row.id).values(password_hash=_HASHER.hash(password))
                )
        return _person(row)


_KEY_INFO_COLUMNS = (
    api_keys.c.id,
    api_keys.c.tenant,
    api_keys.c.role,
    api_keys.c.subject,
    api_keys.c.label,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
)


def prepare_password_checks() -> None:
    """Make the stand-in hash now (at start-up) rather than in the first sign-in with an unknown address."""
    _dummy_hash()


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise RegistryError(f"not an e-mail address: {email!r}")
    return email


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RegistryError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise RegistryError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")


def _check_role_and_subject(role: str, subject: str | None, what: str) -> None:
    if role not in ROLES:
        raise RegistryError(f"role must be one of {', '.join(ROLES)}")
    if role in ROLES_WITH_SUBJECT and not subject:
        raise RegistryError(f"a {role} {what} needs --subject (the {role} id)")
    if subject is not None and not SUBJECT_ID.match(subject):
        raise RegistryError("subject must be letters, digits, dots, dashes or underscores (at most 100)")


def _require_tenant(session, tenant: str) -> None:
    if not session.execute(sa.select(tenants.c.slug).where(tenants.c.slug == tenant)).first():
        raise RegistryError(f"no tenant {tenant!r}; create it first with: werkbrug tenants create {tenant}")


def _person(row) -> Person:
    return Person(row.id, row.tenant, row.role, row.subject, row.email)
