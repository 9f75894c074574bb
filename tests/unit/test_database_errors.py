"""Which database errors are the database's passing state (retried, never dead-lettered), by SQLSTATE."""

from __future__ import annotations

import sqlite3

import psycopg.errors as pg
import pytest
from sqlalchemy import exc

from shared.db import describe_error, is_transient


def wrapped(kind: type[exc.DBAPIError], original: Exception) -> exc.DBAPIError:
    return kind("INSERT INTO candidates (display_name) VALUES (%s)", ("Jansen",), original)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (wrapped(exc.InternalError, pg.ReadOnlySqlTransaction("read-only")), True),
        (wrapped(exc.OperationalError, pg.SerializationFailure("conflict")), True),
        (wrapped(exc.OperationalError, pg.DeadlockDetected("deadlock")), True),
        (wrapped(exc.OperationalError, pg.AdminShutdown("terminating")), True),
        (wrapped(exc.OperationalError, pg.TooManyConnections("too many")), True),
        (wrapped(exc.OperationalError, pg.DiskFull("disk full")), True),
        (wrapped(exc.OperationalError, pg.ConnectionFailure("gone")), True),
        (wrapped(exc.OperationalError, pg.OperationalError("server closed the connection")), True),
        (exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"), True),
        (wrapped(exc.OperationalError, sqlite3.OperationalError("database is locked")), True),
        (wrapped(exc.IntegrityError, pg.UniqueViolation("duplicate key")), False),
        (wrapped(exc.DataError, pg.UntranslatableCharacter("NUL")), False),
        (wrapped(exc.ProgrammingError, pg.UndefinedTable("no table")), False),
        (wrapped(exc.OperationalError, sqlite3.OperationalError("no such table: alerts")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_transient_errors_are_told_by_sqlstate(error, transient):
    assert is_transient(error) is transient


def test_a_handler_that_wraps_a_transient_error_is_still_transient():
    try:
        try:
            raise wrapped(exc.InternalError, pg.ReadOnlySqlTransaction("read-only"))
        except exc.InternalError as inner:
            raise RuntimeError("could not store the alert") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_an_error_is_described_by_class_and_sqlstate_never_its_text():
    error = wrapped(exc.IntegrityError, pg.UniqueViolation("Key (name)=(Jansen) already exists."))
    assert describe_error(error) == "IntegrityError (UniqueViolation) [SQLSTATE 23505]"
