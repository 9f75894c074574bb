"""Writes on the real databases: prepared statements store exactly what SQLAlchemy stores, and SQLite's
writers take turns on a lock file, which a killed process gives up and a thread never waits for itself."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

import shared.db
from shared.db import Database, PreparedStatement, is_transient, upgrade
from shared.outbox import outbox_table

METADATA = sa.MetaData()
OUTBOX = outbox_table(METADATA)
NOTES = sa.Table("notes", METADATA, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.Text))


@pytest.fixture
def db(database_url):
    database = Database(database_url("writes"))
    METADATA.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    METADATA.create_all(database.engine)
    yield database
    database.dispose()


def _rows(db: Database) -> list[tuple]:
    with db.engine.connect() as connection:
        return [tuple(row)[1:] for row in connection.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id))]


@pytest.mark.parametrize(
    "values",
    [
        {"payload": None, "headers": None, "event_id": None},
        {"payload": '{"a": "é"}', "headers": [["traceparent", "00-ab-cd-01"]], "event_id": "evt-1"},
    ],
)
def test_a_prepared_insert_stores_what_sqlalchemy_stores(db, values):
    written = datetime(2026, 12, 1, 13, 45, 7, 123456, tzinfo=UTC)
    row = {"topic": "vacancy-events", "message_key": "t/s", "created_at": written, **values}
    with db.session() as session:
        PreparedStatement(OUTBOX.insert()).execute(session.connection(), row)
    with db.session() as session:
        session.execute(OUTBOX.insert(), {**row, "event_id": row["event_id"] and "evt-2"})
    prepared, plain = _rows(db)
    assert prepared[1:] == plain[1:]
    assert prepared[-2] == written  # the timezone-aware column reads back as written


def test_a_prepared_statement_returns_its_row_and_counts_what_it_changed(db):
    insert = PreparedStatement(NOTES.insert().values(text=sa.bindparam("text")).returning(NOTES.c.id))
    update = PreparedStatement(NOTES.update().where(NOTES.c.id == sa.bindparam("note")).values(text="changed"))
    with db.session() as session:
        changed, returned = insert.execute(session.connection(), {"text": "first"})
        assert changed == 1 and returned is not None
        assert update.execute(session.connection(), {"note": returned[0]}) == (1, None)
        assert update.execute(session.connection(), {"note": returned[0] + 1000}) == (0, None)
    with db.engine.connect() as connection:
        assert connection.execute(sa.select(NOTES.c.text)).scalars().all() == ["changed"]


def test_a_prepared_read_gives_what_sqlalchemy_reads_with_the_columns_types(db):
    written = datetime(2026, 12, 1, 13, 45, 7, 123456, tzinfo=UTC)
    row = {"topic": "t", "message_key": "k", "created_at": written, "payload": "{}", "headers": [["a", "b"]]}
    with db.session() as session:
        session.execute(OUTBOX.insert(), row)
    read = PreparedStatement(
        sa.select(OUTBOX.c.created_at, OUTBOX.c.headers, OUTBOX.c.topic).where(
            OUTBOX.c.message_key == sa.bindparam("key", type_=OUTBOX.c.message_key.type)
        )
    )

    found = read.first(db, {"key": "k"})

    with db.engine.connect() as connection:
        plain = connection.execute(read.statement, {"key": "k"}).one()
    assert found == tuple(plain) == (written, [["a", "b"]], "t")
    assert read.first(db, {"key": "none"}) is None


def test_a_prepared_statement_refuses_to_run_outside_a_transaction(sqlite_db):
    with sqlite_db.engine.connect() as connection, pytest.raises(RuntimeError, match="transaction"):
        PreparedStatement(NOTES.insert()).execute(connection, {"text": "lost"})


def _write_in_a_thread(db: Database, text: str) -> tuple[threading.Thread, threading.Event]:
    """A thread writing one note; the event is set once its transaction committed."""
    done = threading.Event()

    def write():
        with db.session() as session:
            session.execute(NOTES.insert().values(text=text))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    return thread, done


def test_a_writer_waits_for_the_turn_of_another_and_goes_on_when_it_commits(sqlite_db):
    holding = sqlite_db.new_session()
    holding.execute(NOTES.insert().values(text="first"))  # begins, takes the turn and SQLite's lock
    turn = os.open(f"{sqlite_db.engine.url.database}-writer", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(turn)
    writer, done = _write_in_a_thread(sqlite_db, "second")
    try:
        assert not done.wait(0.5), "a second writer got in while the first held its turn"
        holding.commit()
        assert done.wait(30), "the second writer never got its turn"
    finally:
        holding.close()
        writer.join(30)
    with sqlite_db.engine.connect() as connection:
        assert connection.execute(sa.select(NOTES.c.text).order_by(NOTES.c.id)).scalars().all() == ["first", "second"]


def test_a_second_write_transaction_in_the_same_thread_fails_instead_of_waiting_for_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(shared.db, "SQLITE_BUSY_TIMEOUT_S", 0.5)
    database = Database(f"sqlite:///{tmp_path / 'self.db'}")
    METADATA.create_all(database.engine)
    try:
        with database.session() as outer:
            outer.execute(NOTES.insert().values(text="outer"))
            with (
                pytest.raises(exc.OperationalError, match="database is locked") as raised,
                database.relaxed_transaction() as inner,
            ):
                inner.execute(NOTES.insert().values(text="inner"))
            assert is_transient(raised.value)
    finally:
        database.dispose()


def test_a_writer_that_never_gets_its_turn_fails_as_a_locked_database_would(tmp_path, monkeypatch):
    monkeypatch.setattr(shared.db, "SQLITE_BUSY_TIMEOUT_S", 0.5)
    database = Database(f"sqlite:///{tmp_path / 'held.db'}")
    METADATA.create_all(database.engine)
    holding = database.new_session()
    try:
        holding.execute(NOTES.insert().values(text="held"))
        failure: list[BaseException] = []

        def late_writer():
            try:
                with database.session() as session:
                    session.execute(NOTES.insert().values(text="late"))
            except BaseException as error:
                failure.append(error)

        writer = threading.Thread(target=late_writer)
        writer.start()
        writer.join(30)
        assert len(failure) == 1 and is_transient(failure[0]), failure
    finally:
        holding.rollback()
        holding.close()
        database.dispose()


_HOLDER = """
import sys, time
import sqlalchemy as sa
from shared.db import Database
database = Database(sys.argv[1])
session = database.new_session()
session.execute(sa.text("INSERT INTO notes (text) VALUES ('from the killed process')"))
print("holding", flush=True)
time.sleep(600)
"""


def test_a_killed_writer_gives_its_turn_up_with_nothing_written(sqlite_db):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, sqlite_db.url],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        waiting, done = _write_in_a_thread(sqlite_db, "after the kill")
        assert not done.wait(0.5), "a writer got in while another process held its turn"
        holder.send_signal(signal.SIGKILL)
        assert done.wait(30), "the killed process's turn was never given up"
        waiting.join(30)
    finally:
        holder.kill()
        holder.wait(30)
    with sqlite_db.engine.connect() as connection:
        assert connection.execute(sa.select(NOTES.c.text)).scalars().all() == ["after the kill"]


def test_the_services_tables_take_prepared_writes_on_both_databases(database_url):
    """The idempotency claim and answer, prepared, on a service's migrated database."""
    from shared import idempotency

    url = database_url("vacancy")
    upgrade(Path("services/vacancy/migrations"), url)
    database = Database(url)
    now = datetime.now(UTC)
    try:
        with database.relaxed_transaction() as connection:
            outcome = idempotency.claim(connection, "p" * 64, uuid.uuid4().hex, "h" * 64, now)
        assert outcome.claim is not None
        answer = idempotency.StoredAnswer(201, {"Location": "/v1/x"}, '{"id": "x"}')
        with database.session() as session:
            assert idempotency.complete(session, outcome.claim, answer, now + timedelta(seconds=1))
        with database.session() as session:
            assert not idempotency.complete(session, outcome.claim, answer, now), "completed twice"
    finally:
        database.dispose()
