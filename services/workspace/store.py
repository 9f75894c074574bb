"""The workspace's own database: who is signed in (with their short-lived API key, encrypted), and how
often sign-in failed lately. It holds no facts of the other services.

Throttling counts live here rather than in process memory, so that every replica sees the same count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.db import UtcDateTime, affected_rows

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

sessions = sa.Table(
    "sessions",
    metadata,
    # A hash of the token in the cookie: the table alone cannot be used to take over a session.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.Integer, nullable=False),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("subject", sa.String(100), nullable=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("key_id", sa.Integer, nullable=False),
    # The API key, encrypted with a key derived from the cookie's token (see sessions.seal).
    sa.Column("key_sealed", sa.String(200), nullable=False),
    sa.Column("key_expires_at", UtcDateTime, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Index("ix_sessions_last_seen_at", "last_seen_at"),
)

sign_in_failures = sa.Table(
    "sign_in_failures",
    metadata,
    # "account:<hmac of the e-mail>" or "address:<client address>"; never the e-mail itself.
    sa.Column("scope", sa.String(120), primary_key=True),
    sa.Column("window_started_at", UtcDateTime, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)


def add_session(session: Session, row: dict) -> None:
    session.execute(sessions.insert().values(**row))


def get_session(session: Session, token_hash: str) -> dict | None:
    row = session.execute(sa.select(sessions).where(sessions.c.token_hash == token_hash)).mappings().first()
    return dict(row) if row else None


def touch_session(session: Session, token_hash: str, now: datetime) -> None:
    session.execute(sessions.update().where(sessions.c.token_hash == token_hash).values(last_seen_at=now))


def replace_key(
    session: Session, token_hash: str, old_key_id: int, key_id: int, sealed: str, expires_at: datetime
) -> bool:
    """Swap the session's key, unless another request of the same session swapped it first."""
    result = session.execute(
        sessions.update()
        .where(sessions.c.token_hash == token_hash, sessions.c.key_id == old_key_id)
        .values(key_id=key_id, key_sealed=sealed, key_expires_at=expires_at)
    )
    return bool(affected_rows(result))


def delete_session(session: Session, token_hash: str) -> int | None:
    """Remove a session; answers the id of its key, for revoking."""
    key_id = session.execute(sa.select(sessions.c.key_id).where(sessions.c.token_hash == token_hash)).scalar()
    session.execute(sessions.delete().where(sessions.c.token_hash == token_hash))
    return key_id


def delete_idle_sessions(session: Session, idle_since: datetime) -> list[int]:
    """Remove sessions unused since ``idle_since``; answers their keys' ids."""
    idle = sessions.c.last_seen_at < idle_since
    key_ids = list(session.execute(sa.select(sessions.c.key_id).where(idle)).scalars())
    session.execute(sessions.delete().where(idle))
    return key_ids


def failures(session: Session, scope: str, window_start: datetime) -> int:
    row = session.execute(sa.select(sign_in_failures).where(sign_in_failures.c.scope == scope)).first()
    if row is None or row.window_started_at < window_start:
        return 0
    return row.failures


def window_ends(session: Session, scope: str, window: timedelta) -> datetime | None:
    started = session.execute(
        sa.select(sign_in_failures.c.window_started_at).where(sign_in_failures.c.scope == scope)
    ).scalar()
    return started + window if started else None


def record_failure(session: Session, scope: str, now: datetime, window_start: datetime) -> None:
    row = session.execute(sa.select(sign_in_failures).where(sign_in_failures.c.scope == scope)).first()
    if row is None:
        session.execute(sign_in_failures.insert().values(scope=scope, window_started_at=now, failures=1))
    elif row.window_started_at < window_start:
        session.execute(
            sign_in_failures.update().where(sign_in_failures.c.scope == scope).values(window_started_at=now, failures=1)
        )
    else:
        session.execute(
            sign_in_failures.update()
            .where(sign_in_failures.c.scope == scope)
            .values(failures=sign_in_failures.c.failures + 1)
        )


def clear_failures(session: Session, scope: str) -> None:
    session.execute(sign_in_failures.delete().where(sign_in_failures.c.scope == scope))
