"""Rate-limit counters in the service's own database, as a storage for the ``limits`` package.

The rate limiter (:mod:`shared.web.ratelimit`) keeps its counters in a storage that every replica must
share. Redis is the usual one; this one keeps them in a table of the service's database, so that a
deployment needs nothing more than it already has. It serves the fixed-window strategy: one row per key
and window, incremented with a single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` that starts a new
window when the old one expired.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from shared.db import Database, PreparedStatement
from shared.loops import Every

TABLE_NAME = "rate_limits"
STORAGE_SCHEME = "werkbrug-database"


def rate_limit_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        # Seconds since the epoch, as the limits package counts them.
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Index("ix_rate_limits_expires_at", "expires_at"),
    )


TABLE = rate_limit_table(sa.MetaData())


def _add_statement(dialect_insert):
    # Built once per dialect with bound parameters: building it per call cost a sync more than running it,
    # and SQLAlchemy keys its cache of compiled statements on the statement, computed once per object.
    now = sa.bindparam("now", type_=sa.Double)
    amount = sa.bindparam("amount", type_=sa.Integer)
    expires_at = sa.bindparam("expires_at", type_=sa.Double)
    expired = TABLE.c.expires_at <= now
    return PreparedStatement(
        dialect_insert(TABLE)
        .values(key=sa.bindparam("key", type_=TABLE.c.key.type), count=amount, expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=[TABLE.c.key],
            set_={
                "count": sa.case((expired, amount), else_=TABLE.c.count + amount),
                "expires_at": sa.case((expired, expires_at), else_=TABLE.c.expires_at),
            },
        )
        .returning(TABLE.c.count, TABLE.c.expires_at)
    )


_ADD = {"sqlite": _add_statement(sqlite.insert), "postgresql": _add_statement(postgresql.insert)}
_ROW = sa.select(TABLE.c.count, TABLE.c.expires_at).where(TABLE.c.key == sa.bindparam("key"))
_PURGE = TABLE.delete().where(TABLE.c.expires_at < sa.bindparam("now", type_=sa.Double))


@dataclass
class _Local:
    """A key's counter as this process last saw it in the database, and its hits since."""

    count: int
    expires_at: float
    synced_at: float
    pending: int = 0


class DatabaseStorage(Storage):
    """``werkbrug-database://`` with the option ``database=<shared.db.Database>``.

    Writing every hit to the database would cost each request a transaction. So a process counts a key's
    hits locally and adds them to the shared row when ``sync_hits`` have gathered or ``sync_seconds`` have
    passed, whichever comes first (a key's first hit in a process always goes to the database). A key can
    therefore pass its limit by at most ``sync_hits - 1`` per web process before every process sees it;
    ``sync_hits=1`` counts every hit in the database, exactly.
    """

    STORAGE_SCHEME = [STORAGE_SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        database = options.pop("database", None)
        if not isinstance(database, Database):
            raise ValueError("the werkbrug-database storage needs the option database=<Database>")
        self.sync_hits = int(options.pop("sync_hits", 10))
        # The time bound only freshens what other processes see of a quiet key; how far a key can pass its
        # limit is bounded by sync_hits alone. A short one made a busy worker write every few hits anyway.
        self.sync_seconds = float(options.pop("sync_seconds", 1.0))
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.db = database
        self._add_counter = _ADD["sqlite" if database.is_sqlite else "postgresql"]
        self._purge = Every(600)
        self._local: dict[str, _Local] = {}
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            local = self._local.get(key)
            if local is not None and local.expires_at > now:
                local.pending += amount
                if local.pending < self.sync_hits and now - local.synced_at < self.sync_seconds:
                    return local.count + local.pending
                amount = local.pending
        count, expires_at = self._add(key, expiry, amount, now)
        with self._lock:
            self._local[key] = _Local(count, expires_at, now)
        return count

    def _add(self, key: str, expiry: int, amount: int, now: float) -> tuple[int, float]:
        parameters = {"key": key, "amount": amount, "now": now, "expires_at": now + expiry}
        # Counters need not survive a crash: no wait for the disk (see Database.relaxed_transaction).
        with self.db.relaxed_transaction() as connection:
            _changed, row = self._add_counter.execute(connection, parameters)
            assert row is not None, "an upsert with RETURNING returns its row"
            count, expires_at = row
            if self._purge.due():
                connection.execute(_PURGE, {"now": now})
                with self._lock:
                    self._local = {k: v for k, v in self._local.items() if v.expires_at > now}
        return count, expires_at

    def _row(self, key: str) -> tuple[int, float]:
        now = time.time()
        with self._lock:
            local = self._local.get(key)
            if local is not None and local.expires_at > now:
                return local.count + local.pending, local.expires_at
        with self.db.relaxed_transaction() as connection:
            row = connection.execute(_ROW, {"key": key}).first()
        if row is None or row.expires_at <= now:
            return 0, now
        # Unpacked rather than row.count, which static typing takes for the sequence method count().
        count, expires_at = row
        return count, expires_at

    def get(self, key: str) -> int:
        return self._row(key)[0]

    def get_expiry(self, key: str) -> float:
        return self._row(key)[1]

    def check(self) -> bool:
        try:
            self.db.ping()
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self._lock:
            self._local.clear()
        with self.db.relaxed_transaction() as connection:
            return connection.execute(TABLE.delete()).rowcount

    def clear(self, key: str) -> None:
        with self._lock:
            self._local.pop(key, None)
        with self.db.relaxed_transaction() as connection:
            connection.execute(TABLE.delete().where(TABLE.c.key == key))
