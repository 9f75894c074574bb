"""Stored answers to requests that carried an ``Idempotency-Key``: one table per service database.

A key is claimed in a short transaction of its own before the request runs, so that a second request with
the same key sees the claim at once (and is told 409) instead of running the effect again. The answer is
then written in the same transaction as the effect (see :mod:`shared.web.idempotency`): a claim that is
still pending therefore means that no effect was committed, and a claim whose holder died can be taken
over safely once its lease has run out. A holder that was overtaken finds its claim token gone when it
tries to complete, and rolls its effect back.

On a SQLite file every writer runs on one host, so a key is held instead by a lock on a byte of a file
beside the database (:class:`KeyLocks`) for as long as the request runs, and its row is written once, with
the answer, in the effect's transaction. That spares every request a second turn at SQLite's one write
lock, and needs no lease: the kernel frees the lock of a process that dies.

Keys are scoped to the caller: ``principal_hash`` is a hash of the API key that sent the request, never
the key itself.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shared.db import Database, PreparedStatement, UtcDateTime, affected_rows

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
class HeldKey:
    """A key held by a lock for as long as its request runs (a SQLite file): no row until the answer."""

    principal_hash: str
    key: str
    request_hash: str
    claimed_at: datetime
    lock: KeyLock


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Outcome:
    """What claiming found: a fresh claim, a finished answer to replay, or a refusal."""

    claim: Claim | HeldKey | None = None
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


def _store_held_statement():
    # A row left behind replaces its own: an expired one, or the pending claim of a holder that died.
    columns = (
        *("principal_hash", "idempotency_key", "request_hash", "claim_token", "created_at", "locked_at"),
        *("expires_at", "status_code", "response_headers", "response_body", "completed_at"),
    )
    insert = sqlite.insert(TABLE).values({name: sa.bindparam(name, type_=TABLE.c[name].type) for name in columns})
    now = sa.bindparam("now", type_=TABLE.c.expires_at.type)
    stale_before = sa.bindparam("stale_before", type_=TABLE.c.locked_at.type)
    return PreparedStatement(
        insert.on_conflict_do_update(
            index_elements=["principal_hash", "idempotency_key"],
            set_={name: insert.excluded[name] for name in columns if name not in ("principal_hash", "idempotency_key")},
            where=sa.or_(
                TABLE.c.expires_at <= now, sa.and_(TABLE.c.completed_at.is_(None), TABLE.c.locked_at <= stale_before)
            ),
        )
    )


_STORE_HELD = _store_held_statement()


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
    found = _stored_outcome(row, request_hash, now)
    if found is not None:
        return found
    # The holder died before completing; since the answer is stored with the effect, nothing was done, and
    # the key is this request's, whatever the dead one asked.
    taken = session.execute(
        TABLE.update()
        .where(TABLE.c.id == row.id, TABLE.c.claim_token == row.claim_token, TABLE.c.completed_at.is_(None))
        .values(claim_token=token, locked_at=now, request_hash=request_hash)
    )
    if affected_rows(taken) != 1:
        return Outcome(refusal="in_progress")
    return Outcome(claim=Claim(row.id, token))


def hold(db: Database, principal_hash: str, key: str, request_hash: str, now: datetime) -> Outcome:
    """Like :func:`claim`, for a SQLite file, whose writers all run on this host: the key is held by a lock
    taken without waiting (``in_progress`` when another request holds it), and its row is only read."""
    assert db.sqlite_file is not None, "a key is held by a lock on a SQLite file only"
    lock = KeyLocks.beside(db.sqlite_file).take(principal_hash, key)
    if lock is None:
        return Outcome(refusal="in_progress")
    try:
        found = _LOOKUP.first(db, {"principal_hash": principal_hash, "idempotency_key": key})
    except BaseException:
        lock.release()
        raise
    outcome = _stored_outcome(_StoredRow(*found) if found is not None else None, request_hash, now)
    if outcome is not None:
        lock.release()
        return outcome
    return Outcome(claim=HeldKey(principal_hash, key, request_hash, now, lock))


class _StoredRow(NamedTuple):
    request_hash: str
    status_code: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    locked_at: datetime
    completed_at: datetime | None
    expires_at: datetime


_LOOKUP = PreparedStatement(
    sa.select(*(TABLE.c[name] for name in _StoredRow._fields)).where(
        TABLE.c.principal_hash == sa.bindparam("principal_hash", type_=TABLE.c.principal_hash.type),
        TABLE.c.idempotency_key == sa.bindparam("idempotency_key", type_=TABLE.c.idempotency_key.type),
    )
)


def _stored_outcome(row: Any, request_hash: str, now: datetime) -> Outcome | None:
    """What a key's row says, or None when the request may run: no row, an expired one, or the claim of a
    holder that died (pending for longer than the lease). A request still running is 409 whatever was
    asked, as it is where the key is held by a lock, which tells nothing of the request holding it."""
    if row is None or row.expires_at <= now:
        return None
    if row.completed_at is None:
        return Outcome(refusal="in_progress") if row.locked_at > now - LEASE else None
    if row.request_hash != request_hash:
        return Outcome(refusal="mismatch")
    assert row.status_code is not None and row.response_body is not None, "a completed key keeps its answer"
    return Outcome(answer=StoredAnswer(row.status_code, dict(row.response_headers or {}), row.response_body))


class KeyLock(NamedTuple):
    locks: KeyLocks
    slot: int

    def release(self) -> None:
        self.locks.give_back(self.slot)


class KeyLocks:
    """Locks on single bytes of one file, a byte per key (a hash of scope and key), shared by every process
    on this host that writes to the database beside it.

    POSIX record locks belong to the process, so threads of one process are kept apart by a set of the
    bytes it holds; and since closing any descriptor of the file drops all of a process's locks on it, the
    file is opened once per process and never closed while it runs.
    """

    _by_path: dict[str, KeyLocks] = {}
    _by_path_mutex = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._fd = -1
        self._pid = 0
        self._held: set[int] = set()

    @classmethod
    def beside(cls, database_file: str) -> KeyLocks:
        """The one instance per process for the database at ``database_file``."""
        path = f"{os.path.abspath(database_file)}-keys"
        with cls._by_path_mutex:
            found = cls._by_path.get(path)
            if found is None:
                found = cls._by_path[path] = cls(path)
            return found

    def take(self, principal_hash: str, key: str) -> KeyLock | None:
        """The key's lock, or None when another request holds it."""
        slot = _slot(principal_hash, key)
        with self._mutex:
            if self._pid != os.getpid():
                # A forked child holds none of its parent's record locks, whatever the copied set says.
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
                self._held = set()
            if slot in self._held:
                return None
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot, os.SEEK_SET)
            except OSError as error:
                if error.errno in (errno.EACCES, errno.EAGAIN):
                    return None
                raise
            self._held.add(slot)
        return KeyLock(self, slot)

    def give_back(self, slot: int) -> None:
        with self._mutex:
            if self._pid != os.getpid() or slot not in self._held:
                return
            self._held.discard(slot)
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, slot, os.SEEK_SET)


def _slot(principal_hash: str, key: str) -> int:
    # 56 bits: two keys share a byte (and one waits with a 409 for the other) about once in 10^16 pairs.
    digest = hashlib.sha256(f"{principal_hash}\0{key}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def complete(session: Session, claim_: Claim | HeldKey, answer: StoredAnswer, now: datetime) -> bool:
    """Store the answer under the claim, in the caller's transaction (the effect's, where it can be).
    False when the claim was taken over meanwhile: the caller must then roll back."""
    if isinstance(claim_, HeldKey):
        return _store_held(session, claim_, answer, now)
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


def _store_held(session: Session, held: HeldKey, answer: StoredAnswer, now: datetime) -> bool:
    changed, _returned = _STORE_HELD.execute(
        session.connection(),
        {
            "principal_hash": held.principal_hash,
            "idempotency_key": held.key,
            "request_hash": held.request_hash,
            "claim_token": "",
            "created_at": held.claimed_at,
            "locked_at": held.claimed_at,
            "expires_at": held.claimed_at + RETENTION,
            "status_code": answer.status_code,
            "response_headers": answer.headers,
            "response_body": answer.body,
            "completed_at": now,
            "now": now,
            "stale_before": now - LEASE,
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
