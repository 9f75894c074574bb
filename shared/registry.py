"""Tenants and API keys: who may call the API, for which region, in which role, as whom.

Keys are stored only as SHA-256 hashes. A key is 32 random bytes, so a slow password hash would add
latency to every request without adding protection against guessing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from shared.cache import TTLCache
from shared.db import Database, UtcDateTime, upgrade, utcnow
from shared.errors import Refused
from shared.tenant_settings import TenantSettings

ROLES = ("employer", "jobcoach", "operator")
ROLES_WITH_SUBJECT = ("employer", "jobcoach")
TENANT_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KEY_PREFIX = "wbk_"
MIGRATIONS = Path(__file__).with_name("registry_migrations")

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
    sa.Column("tenant", sa.String(63), sa.ForeignKey("tenants.slug"), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("subject", sa.String(100), nullable=True),
    sa.Column("label", sa.String(100), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)


class RegistryError(Refused):
    """A tenant or key request that cannot be carried out, with a message fit for the command line."""


@dataclass(frozen=True)
class Principal:
    tenant: str
    role: str
    subject: str | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_tenant_slug(slug: str) -> str:
    if not TENANT_SLUG.match(slug):
        raise RegistryError(f"tenant slug must be lower-case letters, digits and dashes: {slug!r}")
    return slug


class Registry:
    """Tenants, keys and the tenants' settings.

    ``tenant_settings`` is the declaration of the settings this process reads (a service's own, or several
    combined for whoever changes them); ``settings()`` answers in its terms.
    """

    def __init__(
        self, db: Database, cache_seconds: float = 10.0, tenant_settings: type[TenantSettings] = TenantSettings
    ) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.tenant_settings = tenant_settings
        # Keys by hash, settings by tenant: a revocation or a change reaches every process within the time to live.
        self._principals: TTLCache[str, Principal | None] = TTLCache(cache_seconds)
        self._settings: TTLCache[str, TenantSettings] = TTLCache(cache_seconds)

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

    def settings(self, tenant: str) -> TenantSettings:
        """The tenant's settings (defaults where none were set), cached like keys are."""

        def load() -> TenantSettings:
            with self.db.session() as session:
                stored = session.execute(sa.select(tenants.c.settings).where(tenants.c.slug == tenant)).scalar()
            return self.tenant_settings.from_dict(stored)

        return self._settings.get(tenant, load)

    def change_settings(self, tenant: str, changes: dict[str, str]) -> TenantSettings:
        with self.db.session() as session:
            row = session.execute(sa.select(tenants.c.settings).where(tenants.c.slug == tenant)).first()
            if row is None:
                raise RegistryError(f"no tenant {tenant!r}")
            updated = self.tenant_settings.from_dict(row.settings).with_changes(changes)
            # Merged into what is stored: the settings of services this process does not know stay as they are.
            stored = {**(row.settings or {}), **updated.to_dict()}
            session.execute(tenants.update().where(tenants.c.slug == tenant).values(settings=stored))
        self._settings.invalidate(tenant)
        return updated

    def tenant_slugs(self) -> list[str]:
        with self.db.session() as session:
            return list(session.execute(sa.select(tenants.c.slug).order_by(tenants.c.slug)).scalars())

    def create_key(self, tenant: str, role: str, subject: str | None, label: str | None = None) -> str:
        if role not in ROLES:
            raise RegistryError(f"role must be one of {', '.join(ROLES)}")
        if role in ROLES_WITH_SUBJECT and not subject:
            raise RegistryError(f"a {role} key needs --subject (the {role} id)")
        if subject is not None and not SUBJECT_ID.match(subject):
            raise RegistryError("subject must be letters, digits, dots, dashes or underscores (at most 100)")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            if not session.execute(sa.select(tenants.c.slug).where(tenants.c.slug == tenant)).first():
                raise RegistryError(f"no tenant {tenant!r}; create it first with: werkbrug tenants create {tenant}")
            session.execute(
                api_keys.insert().values(
                    key_hash=hash_key(key),
                    tenant=tenant,
                    role=role,
                    subject=subject,
                    label=label,
                    created_at=utcnow(),
                )
            )
        return key

    def revoke_labelled_keys(self, tenant: str, label: str) -> int:
        with self.db.session() as session:
            result = session.execute(
                api_keys.update()
                .where(api_keys.c.tenant == tenant, api_keys.c.label == label, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        self._principals.invalidate()
        return result.rowcount or 0

    def authenticate(self, key: str) -> Principal | None:
        """The principal behind a key, or None. Answers are cached briefly, so a revocation takes a few
        seconds to reach every process."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        digest = hash_key(key)

        def load() -> Principal | None:
            with self.db.session() as session:
                row = session.execute(
                    sa.select(api_keys.c.tenant, api_keys.c.role, api_keys.c.subject).where(
                        api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
                    )
                ).first()
            return Principal(row.tenant, row.role, row.subject) if row else None

        return self._principals.get(digest, load)
