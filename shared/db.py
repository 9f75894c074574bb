"""Database engines, sessions and migrations shared by every service.

Each service owns its own database (SQLite by default, PostgreSQL through ``DATABASE_URL``) and its own
Alembic migrations under ``services/<name>/migrations``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker


class StaleVersion(Exception):
    """A conditional write (``... WHERE version = :expected``) found the row at another version: another
    writer got there first, and nothing was changed."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.types.TypeDecorator):
    """Timestamps stored in UTC and always handed back timezone-aware, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else sa.engine.make_url(url_or_engine)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for ``url``. ``durable=False`` (SQLite) makes commits skip the fsync: see
    :meth:`Database.relaxed_transaction`."""
    if is_sqlite(url):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the web processes read while the worker writes; the busy timeout makes writers
            # queue instead of failing when gunicorn workers and the background worker meet.
            # pysqlite's own transaction handling would issue a plain BEGIN before ours.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not durable:
                # In WAL mode NORMAL keeps the file consistent; only the last commits may be lost on power loss.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn):
            # Take the write lock at BEGIN: two writers that both started with a read would otherwise
            # deadlock on upgrade and one would fail with "database is locked".
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Database:
    """An engine and its session factory; one per process and database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._relaxed_engine: Engine | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def relaxed_transaction(self) -> Iterator[Connection]:
        """A transaction whose commit need not survive a power loss, and so does not wait for the disk:
        rate-limit counters, and idempotency claims (a claim matters only once the effect it guards is
        committed durably, and that later commit flushes the log up to and including the claim). SQLite:
        a connection with ``synchronous=NORMAL``; PostgreSQL: ``synchronous_commit`` off for this one."""
        if self._relaxed_engine is None:
            self._relaxed_engine = make_engine(self.url, durable=False) if is_sqlite(self.url) else self.engine
        with self._relaxed_engine.begin() as connection:
            if not is_sqlite(self.url):
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield connection

    def new_session(self) -> Session:
        """A session whose commit is the caller's business (see ``shared.web.idempotency.transaction``)."""
        return self._sessions()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._relaxed_engine is not None:
            self._relaxed_engine.dispose()


def alembic_config(script_location: Path, url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    from alembic import command

    if is_sqlite(url):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(script_location, url), revision)


def run_migrations(metadata: sa.MetaData) -> None:
    """The body of every migrations/env.py: online migrations against the configured URL."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=is_sqlite(url),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
