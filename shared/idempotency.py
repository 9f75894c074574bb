"""Stored answers to requests that carried an ``Idempotency-Key``: one table per service database.

A key is claimed in a short transaction of its own before the request runs, so that a second request with
the same key sees the claim at once (and is told 409) instead of running the effect again. The answer is
then written in the same transaction as the effect (see :mod:`shared.web.idempotency`): a claim that is
still pending therefore means that no effect was committed, and a claim whose holder died can be taken
over safely once its lease has run out. A holder that was overtaken finds its claim token gone when it
tries to complete, and rolls its effect back.

Keys are scoped to the caller: ``principal_hash`` is a hash of the API key that sent the request, never
the key itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shared.db import PreparedStatement, UtcDateTime, affected_rows

TABLE_NAME = "idempotency_keys"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
# A claim older than this whose request never completed belongs to a process that died (gunicorn kills a
# request after WEB_TIMEOUT, 30 s by default): another request with the same key may take it over.
LEASE = timedelta(seconds=60)


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("principal_hash", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(MAX_KEY_LENGTH), nullable=False),
        # What was asked: method, path, query and body, hashed; another request under the same key is refused.
        sa.Column("request_hash", sa.String(64), nullable=False),
        # Changes hands when a stale claim is taken over; completing needs the token one claimed with.
        sa.Column("claim_token", sa.String(32), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response_headers", sa.JSON, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("locked_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("principal_hash", "idempotency_key", name="uq_idempotency_keys_principal_key"),
        sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
    )


# The services' stores add the table to their own metadata (for migrations and tests); queries here use
# this copy, which names the same table in whichever database the session is bound to.
TABLE = idempotency_table(sa.MetaData())


@dataclass(frozen=True)
class Claim:
    id: int
    token: str


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Outcome:
    """What claiming found: a fresh claim, a finished answer to replay, or a refusal."""

    claim: Claim | None = None
    answer: StoredAnswer | None = None
    refusal: str | None = None  # "in_progress" or "mismatch"


def _claim_statement(dialect_insert):
    # Built once per dialect with bound parameters: constructing a statement costs more than running it.
    columns = ("principal_hash", "idempotency_key", "request_hash", "claim_token", "created_at", "locked_at")
    return PreparedStatement(
        dialect_insert(TABLE)
        .values({name: sa.bindparam(name, type_=TABLE.c[name].type) for name in (*columns, "expires_at")})
        .on_conflict_do_nothing(index_elements=["principal_hash", "idempotency_key"])
        .returning(TABLE.c.id)
    )


_CLAIM = {"sqlite": _claim_statement(sqlite.insert), "postgresql": _claim_statement(postgresql.insert)}
_COMPLETE = PreparedStatement(
    TABLE.update()
    .where(
        TABLE.c.id == sa.bindparam("claim_id"),
        TABLE.c.claim_token == sa.bindparam("token"),
        TABLE.c.completed_at.is_(None),
    )
    .values(
        status_code=sa.bindparam("status_code", type_=TABLE.c.status_code.type),
        response_headers=sa.bindparam("response_headers", type_=TABLE.c.response_headers.type),
        response_body=sa.bindparam("response_body", type_=TABLE.c.response_body.type),
        completed_at=sa.bindparam("completed_at", type_=TABLE.c.completed_at.type),
    )
)


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def claim(session: Session | Connection, principal_hash: str, key: str, request_hash: str, now: datetime) -> Outcome:
    """Claim ``key`` for this request, or say why not. Call in a transaction of its own and commit it
    before running the request, so that others see the claim (it need not be durable: see
    :meth:`shared.db.Database.relaxed_transaction`)."""
    token = secrets.token_hex(16)
    connection = _connection(session)
    _count, inserted = _CLAIM[connection.dialect.name].execute(
        connection,
        {
            "principal_hash": principal_hash,
            "idempotency_key": key,
            "request_hash": request_hash,
            "claim_token": token,
            "created_at": now,
            "locked_at": now,
            "expires_at": now + RETENTION,
        },
    )
    if inserted is not None:
        return Outcome(claim=Claim(inserted[0], token))
    row = session.execute(
        sa.select(TABLE).where(TABLE.c.principal_hash == principal_hash, TABLE.c.idempotency_key == key)
    ).first()
    if row is None:  # purged in between: nothing to replay, so this request may run
        return claim(session, principal_hash, key, request_hash, now)
    if row.expires_at <= now:
        # Expired but not yet purged: the key is free again, for any request.
        session.execute(TABLE.delete().where(TABLE.c.id == row.id))
        return claim(session, principal_hash, key, request_hash, now)
    if row.request_hash != request_hash:
        return Outcome(refusal="mismatch")
    if row.completed_at is not None:
        return Outcome(answer=StoredAnswer(row.status_code, dict(row.response_headers or {}), row.response_body))
    if row.locked_at > now - LEASE:
        return Outcome(refusal="in_progress")
    # The holder died before completing; since the answer is stored with the effect, nothing was done.
    taken = session.execute(
        TABLE.update()
        .where(TABLE.c.id == row.id, TABLE.c.claim_token == row.claim_token, TABLE.c.completed_at.is_(None))
        .values(claim_token=token, locked_at=now)
    )
    if affected_rows(taken) != 1:
        return Outcome(refusal="in_progress")
    return Outcome(claim=Claim(row.id, token))


def complete(session: Session, claim_: Claim, answer: StoredAnswer, now: datetime) -> bool:
    """Store the answer under the claim, in the caller's transaction (the effect's, where it can be).
    False when the claim was taken over meanwhile: the caller must then roll back."""
    # Prepared: on SQLite this runs while the effect's transaction holds the database's write lock.
    changed, _returned = _COMPLETE.execute(
        session.connection(),
        {
            "claim_id": claim_.id,
            "token": claim_.token,
            "status_code": answer.status_code,
            "response_headers": answer.headers,
            "response_body": answer.body,
            "completed_at": now,
        },
    )
    return changed == 1


def release(session: Session | Connection, claim_: Claim) -> None:
    """Give the key up: the request failed and changed nothing, so a retry may run it again."""
    session.execute(
        TABLE.delete().where(
            TABLE.c.id == claim_.id, TABLE.c.claim_token == claim_.token, TABLE.c.completed_at.is_(None)
        )
    )


def purge_expired(session: Session, now: datetime, batch: int = 1000) -> int:
    expired = sa.select(TABLE.c.id).where(TABLE.c.expires_at < now).limit(batch).scalar_subquery()
    return affected_rows(session.execute(TABLE.delete().where(TABLE.c.id.in_(expired))))


def answer_of(status_code: int, headers: Any, body: bytes) -> StoredAnswer:
    return StoredAnswer(status_code, dict(headers), body.decode("utf-8"))
