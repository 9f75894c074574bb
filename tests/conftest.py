"""Fixtures every test layer shares: a real Kafka broker for the session, real databases per test.

The broker runs on free ports with its own data directory, so that the suite never collides with a
running ``make run``. With ``DATABASE_URL`` pointing at PostgreSQL, each test gets fresh schemas on that
server's database (created and dropped here); without it, SQLite files in the test's temporary directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from admin.services import tenant_settings
from shared.db import Database
from shared.devstack.broker import KafkaBroker, free_ports
from shared.registry import Registry
from shared.topics import ensure_topics
from tests.doubles.memory_broker import MemoryBroker

SERVER_URL = os.environ.get("DATABASE_URL", "")
USES_POSTGRES = SERVER_URL.startswith("postgresql")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Iterator[KafkaBroker]:
    port, controller_port = free_ports(2)
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), port=port, controller_port=controller_port)
    broker.start(timeout=120)
    ensure_topics(broker.bootstrap_servers)
    yield broker
    broker.stop()


@pytest.fixture
def bootstrap_servers(kafka_broker: KafkaBroker) -> str:
    if not kafka_broker.is_running():
        kafka_broker.restart(timeout=120)
    return kafka_broker.bootstrap_servers


@pytest.fixture
def memory_broker() -> MemoryBroker:
    """An in-memory broker of the test's own with Werkbrug's topics: for handler tests that need the
    consumer loop or the relay but not Kafka itself (tests/contract keeps the two brokers in step)."""
    return MemoryBroker.with_werkbrug_topics()


class _PostgresDatabases:
    """A schema per database a test asks for: as isolated as a database of its own for our purposes, and
    created in milliseconds instead of the second a CREATE DATABASE takes.

    Every connection to a schema names it as its ``application_name``, so that dropping the schemas can also
    end the connections a test left open: engines a test never disposed otherwise keep their pooled
    connections until the garbage collector finds them, and a few hundred tests' worth of those fill the
    server's ``max_connections`` (100 by default) long before that.
    """

    def __init__(self) -> None:
        self.admin = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.created: list[str] = []

    def new(self, label: str) -> str:
        name = f"wbt_{label}_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        self.created.append(name)
        url = sa.engine.make_url(SERVER_URL)
        query = {"options": f"-csearch_path={name}", "application_name": name}
        return url.update_query_dict(query).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            if self.created:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = ANY(:names) AND pid <> pg_backend_pid()"
                    ),
                    {"names": self.created},
                )
            for name in self.created:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self.admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A factory of fresh, empty database URLs, one per label (a service, the registry)."""
    if USES_POSTGRES:
        databases = _PostgresDatabases()
        yield databases.new
        databases.drop_all()
    else:
        yield lambda label: f"sqlite:///{tmp_path / f'{label}-{uuid.uuid4().hex[:6]}.db'}"


@pytest.fixture(scope="session")
def session_database_url(tmp_path_factory) -> Iterator[Callable[[str], str]]:
    """Like ``database_url``, for fixtures that live as long as the test session (the e2e stack)."""
    if USES_POSTGRES:
        databases = _PostgresDatabases()
        yield databases.new
        databases.drop_all()
    else:
        directory = tmp_path_factory.mktemp("databases")
        yield lambda label: f"sqlite:///{directory / f'{label}-{uuid.uuid4().hex[:6]}.db'}"


@pytest.fixture
def registry(database_url) -> Iterator[Registry]:
    # Every service's settings: the tests run several services in one process on this one registry.
    registry = Registry(Database(database_url("registry")), cache_seconds=0, tenant_settings=tenant_settings())
    registry.migrate()
    yield registry
    registry.db.dispose()


@pytest.fixture
def tenant() -> str:
    """A region of its own for each test, so that tests never see each other's rows."""
    return f"regio-{uuid.uuid4().hex[:8]}"
