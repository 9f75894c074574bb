"""Database engines, sessions and migrations shared by every service.

Each service owns its own database (SQLite by default, PostgreSQL through ``DATABASE_URL``) and its own
Alembic migrations under ``services/<name>/migrations``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

# SQLSTATEs (PostgreSQL's error codes) of failures that say nothing about the statement or its data: the
# database is away, read-only for a failover, short of resources, shutting down, or chose this transaction
# as the loser of a conflict. The same work succeeds later, so it is retried and never dead-lettered.
TRANSIENT_SQLSTATE_CLASSES = (
    "08",  # connection exception
    "53",  # insufficient resources: disk full, out of memory, too many connections
    "57P",  # operator intervention: admin or crash shutdown, cannot connect now
    "58",  # system error: I/O error outside the database
)
TRANSIENT_SQLSTATES = frozenset(
    {
        "25006",  # read-only SQL transaction: a replica that has not been promoted yet
        "40001",  # serialization failure
        "40P01",  # deadlock detected
        "55P03",  # lock not available
    }
)
# SQLite's words for another writer holding the file.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
# How long a SQLite writer waits for its turn before giving up with "database is locked", as SQLite's own
# busy timeout would.
SQLITE_BUSY_TIMEOUT_S = 30.0


class StaleVersion(Exception):
    """A conditional write (``... WHERE version = :expected``) found the row at another version: another
    writer got there first, and nothing was changed."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def affected_rows(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an INSERT, UPDATE or DELETE run through ``Session.execute`` changed.

    The session hands back a plain :class:`~sqlalchemy.engine.Result` in its signature, but for such a
    statement the object is always the connection's :class:`~sqlalchemy.engine.CursorResult`, which carries
    the count."""
    return cast(CursorResult[*tuple[Any, ...]], result).rowcount


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


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error (psycopg's ``sqlstate`` on the DBAPI error SQLAlchemy wraps), or None."""
    original = getattr(error, "orig", error)
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return code if isinstance(code, str) else None


def is_transient(error: BaseException) -> bool:
    """True when a database error is the database's passing state rather than the work's fault.

    Such errors are retried with backoff and never dead-lettered: a failover that leaves the database
    read-only for a minute, a full connection pool or another writer holding SQLite's lock all pass, and
    the event behind them is as good as before. The exception's causes are looked at as well, for a
    handler that wrapped the database's error in its own.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_one(error: BaseException) -> bool:
    if isinstance(error, exc.TimeoutError):
        # The pool had no connection to give within its timeout.
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = sqlstate(error)
    if code is not None:
        return code in TRANSIENT_SQLSTATES or code.startswith(TRANSIENT_SQLSTATE_CLASSES)
    original = error.orig
    if isinstance(original, sqlite3.OperationalError):
        return any(words in str(original).lower() for words in _SQLITE_BUSY)
    # Without a SQLSTATE, psycopg's and the pool's connection failures come as these two.
    return isinstance(error, (exc.OperationalError, exc.InterfaceError))


def describe_error(error: BaseException) -> str:
    """The exception class and, for a database error, its SQLSTATE: what a log line or a dead-letter header
    may say about a failure. Never the message: a database's text quotes the values it refused."""
    code = sqlstate(error)
    name = type(error).__name__
    if isinstance(error, exc.DBAPIError):
        name = f"{name} ({type(error.orig).__name__})"
    return f"{name} [SQLSTATE {code}]" if code else name


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else sa.engine.make_url(url_or_engine)
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite database URL, or None (another database, or SQLite in memory). Every process
    that writes to a SQLite file runs on the host whose disk holds it, so they may coordinate by files."""
    if not is_sqlite(url):
        return None
    path = sa.engine.make_url(url).database
    return path if path and path != ":memory:" else None


def make_engine(url: str, *, durable: bool = True, writes: bool = True) -> Engine:
    """An engine for ``url``. ``durable=False`` (SQLite) makes commits skip the fsync: see
    :meth:`Database.relaxed_transaction`; ``writes=False`` (SQLite) begins without the write lock: see
    :meth:`Database.read_session`."""
    if is_sqlite(url):
        path = sqlite_file(url)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        if writes and path is not None:
            connect_args["factory"] = TurnTakingConnection
        engine = sa.create_engine(url, connect_args=connect_args, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the web processes read while the worker writes; the busy timeout makes writers
            # queue instead of failing when gunicorn workers and the background worker meet.
            # pysqlite's own transaction handling would issue a plain BEGIN before ours.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not durable:
                # In WAL mode NORMAL keeps the file consistent; only the last commits may be lost on power loss.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn):
            # Take the write lock at BEGIN: two writers that both started with a read would otherwise
            # deadlock on upgrade and one would fail with "database is locked". A reader takes none: in
            # WAL mode it reads its snapshot while the one writer goes on.
            if not writes:
                conn.exec_driver_sql("BEGIN")
                return
            dbapi_connection = conn.connection.dbapi_connection
            if isinstance(dbapi_connection, TurnTakingConnection):
                try:
                    dbapi_connection.take_turn()
                except sqlite3.OperationalError as error:
                    # As SQLAlchemy wraps the driver's own "database is locked", which callers retry.
                    raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if isinstance(dbapi_connection, TurnTakingConnection):
                    dbapi_connection.end_turn()
                raise

        return engine
    # hide_parameters: an error's text then names the statement but never the values, which are personal
    # data more often than not, so that no log line and no dead-letter header can carry them.
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


class PreparedStatement:
    """A Core statement run many times with new values, on SQLite straight through the driver's cursor.

    SQLAlchemy's execution path costs about 150 µs a statement in Python, several times what SQLite takes
    to run it. On SQLite that time is spent holding the database's one write lock, so every other writer
    waits for it too. The statement is compiled once per set of parameter names, and the values go through
    the same bind processors SQLAlchemy would apply, so what is stored is the same to the byte. Elsewhere
    (PostgreSQL, where writers do not queue for one lock) it runs through SQLAlchemy as usual.
    """

    def __init__(self, statement: UpdateBase | sa.Select) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, ...], tuple[str, list[_Bind]]] = {}
        self._result_processors: list[Callable[[Any], Any] | None] | None = None

    def _for(self, dialect: sa.engine.Dialect, names: tuple[str, ...]) -> tuple[str, list[_Bind]]:
        found = self._compiled.get(names)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=list(names))
            binds = []
            for name in compiled.positiontup or []:
                bind = compiled.binds[name]
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                # A value written into the statement itself is its bind's own, used when none is given.
                binds.append(_Bind(name, process, bind.effective_value))
            found = self._compiled[names] = (compiled.string, binds)
        return found

    def execute(self, connection: Connection, parameters: dict[str, Any]) -> tuple[int, tuple | None]:
        """Run in ``connection``'s transaction: the rows it changed, and the first row it returned."""
        if not connection.in_transaction():
            raise RuntimeError("a prepared statement runs inside a transaction the caller began")
        if connection.dialect.name != "sqlite":
            result = cast(CursorResult[Any], connection.execute(self.statement, parameters))
            changed = result.rowcount  # read before the rows: fetching them closes the cursor
            first = result.first() if result.returns_rows else None
            return changed, tuple(first) if first is not None else None
        sql, binds = self._for(connection.dialect, tuple(parameters))
        values = [bind.value_of(parameters) for bind in binds]
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, values)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.rowcount, rows[0] if rows else None
        finally:
            cursor.close()

    def first(self, db: Database, parameters: dict[str, Any]) -> tuple | None:
        """The first row of a read run on its own, outside any transaction of the caller's: on a SQLite file
        on a pooled reader's cursor (an implicit read transaction of one statement), with the columns'
        result processors; elsewhere through SQLAlchemy."""
        if db.sqlite_file is None:
            with db.engine.connect() as connection:
                found = connection.execute(self.statement, parameters).first()
                return tuple(found) if found is not None else None
        engine = db.reader_engine
        sql, binds = self._for(engine.dialect, tuple(parameters))
        if self._result_processors is None:
            columns = cast(sa.Select, self.statement).selected_columns
            self._result_processors = [
                column.type.dialect_impl(engine.dialect).result_processor(engine.dialect, None) for column in columns
            ]
        values = [bind.value_of(parameters) for bind in binds]
        pooled = engine.raw_connection()
        try:
            cursor = pooled.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                row = cursor.execute(sql, values).fetchone()
            finally:
                cursor.close()
        finally:
            pooled.close()
        if row is None:
            return None
        return tuple(
            value if process is None else process(value)
            for value, process in zip(row, self._result_processors, strict=True)
        )


class _Bind(NamedTuple):
    name: str
    process: Callable[[Any], Any] | None
    own_value: Any

    def value_of(self, parameters: dict[str, Any]) -> Any:
        value = parameters.get(self.name, self.own_value)
        return value if self.process is None else self.process(value)


class TurnTakingConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions queue for their turn on a lock file beside the database.

    SQLite lets one writer in at a time, and a writer that finds the file locked sleeps in SQLite's busy
    handler for 1, 2, 5, 10 ms and more before it looks again, however soon the lock was freed. Web workers
    writing a vacancy each hold the lock for a millisecond or two, so they spent as long asleep as at work.
    Waiting on a lock file instead, polled every 50 to 200 µs, takes the turn within a fraction of a
    millisecond of the writer before committing, and a process that dies gives its turn up. SQLite's own
    lock still guards the data: writers that do not take turns (the sqlite3 shell, migrations) are waited
    for by the busy timeout as before.
    """

    _turn_path: str | None = None
    _turn_fd: int | None = None
    _turn_pid = 0
    _has_turn = False
    # Turns held per thread and file: a thread that opens a second write transaction on the same file
    # while holding one would wait for itself; it goes straight to SQLite's lock, which times out.
    _held = threading.local()

    def take_turn(self) -> None:
        path = self._lock_path()
        if path is None or self._has_turn:
            return
        held: set[str] = self._held.__dict__.setdefault("paths", set())
        if path in held:
            return
        if self._turn_fd is None or self._turn_pid != os.getpid():
            # Opened per process: a descriptor inherited over fork would share its lock with the parent.
            self._turn_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._turn_pid = os.getpid()
            # Closed with the connection, even one the pool drops without closing it.
            weakref.finalize(self, os.close, self._turn_fd)
        _wait_for_lock(self._turn_fd, SQLITE_BUSY_TIMEOUT_S)
        self._has_turn = True
        held.add(path)

    def end_turn(self) -> None:
        if not self._has_turn:
            return
        self._has_turn = False
        self._held.__dict__.setdefault("paths", set()).discard(self._lock_path())
        assert self._turn_fd is not None
        fcntl.flock(self._turn_fd, fcntl.LOCK_UN)

    def _lock_path(self) -> str | None:
        if self._turn_path is None:
            files = [file for _seq, name, file in self.execute("PRAGMA database_list") if name == "main"]
            self._turn_path = f"{files[0]}-writer" if files and files[0] else ""
        return self._turn_path or None

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            self.end_turn()
        finally:
            super().close()


def _wait_for_lock(fd: int, timeout: float) -> None:
    """An exclusive ``flock`` on ``fd`` within ``timeout`` seconds, or SQLite's "database is locked".

    A blocking flock cannot time out, so a taken lock is polled, every 50 µs at first and then every
    200 µs: a writer's turn lasts a millisecond or two, and waking late costs as much as the turn."""
    deadline = None
    pause = 0.00005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = time.monotonic()
        if deadline is None:
            deadline = now + timeout
        elif now >= deadline:
            raise sqlite3.OperationalError("database is locked")
        time.sleep(pause)
        pause = min(pause * 2, 0.0002)


class Database:
    """An engine and its session factory; one per process and database."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Asked on every relaxed transaction (each rate-limit sync and idempotency claim): parsing the URL
        # each time cost more than the transaction's own statements.
        self.is_sqlite = is_sqlite(url)
        self.sqlite_file = sqlite_file(url)
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._relaxed_engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._reader_sessions: sessionmaker[Session] | None = None

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
            self._relaxed_engine = make_engine(self.url, durable=False) if self.is_sqlite else self.engine
        with self._relaxed_engine.begin() as connection:
            if not self.is_sqlite:
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield connection

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A long read that must hold up no writer (an index build): one snapshot, never a write lock, and
        rolled back at the end. SQLite: a deferred BEGIN; PostgreSQL: a read-only transaction."""
        if self._reader_sessions is None:
            self._reader_sessions = sessionmaker(self.reader_engine, expire_on_commit=False)
        session = self._reader_sessions()
        try:
            if not self.is_sqlite:
                session.execute(sa.text("SET TRANSACTION READ ONLY"))
            yield session
        finally:
            session.rollback()
            session.close()

    @property
    def reader_engine(self) -> Engine:
        """On a SQLite file an engine whose transactions begin without the write lock; else the engine."""
        if self.sqlite_file is None:
            return self.engine
        if self._reader_engine is None:
            self._reader_engine = make_engine(self.url, writes=False)
        return self._reader_engine

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
        if self._reader_engine is not None:
            self._reader_engine.dispose()


def alembic_config(script_location: Path, url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    from alembic import command

    path = sqlite_file(url)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(script_location, url), revision)


def run_migrations(metadata: sa.MetaData) -> None:
    """The body of every migrations/env.py: online migrations against the configured URL."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic was started without sqlalchemy.url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, hide_parameters=True)
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
