"""Service web apps on real databases, driven in-process through Flask's test client."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from shared.db import Database, upgrade
from shared.registry import Registry
from shared.web.app import ServiceContext


@dataclass
class ServiceUnderTest:
    name: str
    context: ServiceContext
    client: FlaskClient

    @property
    def db(self) -> Database:
        return self.context.db

    @property
    def store(self):
        return importlib.import_module(f"services.{self.name}.store")


@pytest.fixture
def service(database_url, registry: Registry) -> Iterator[Callable[[str], ServiceUnderTest]]:
    """Build a service's app on a fresh, migrated database sharing the test's key registry."""
    built: list[ServiceUnderTest] = []

    def build(name: str, **env: str) -> ServiceUnderTest:
        url = database_url(name)
        store = importlib.import_module(f"services.{name}.store")
        upgrade(store.MIGRATIONS, url)
        settings = importlib.import_module(f"services.{name}.config").load(
            {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", **env}
        )
        context = ServiceContext(settings, Database(url), registry)
        app = importlib.import_module(f"services.{name}.app").create_app(context)
        built.append(ServiceUnderTest(name, context, app.test_client()))
        return built[-1]

    yield build
    for service_under_test in built:
        service_under_test.db.dispose()


@pytest.fixture
def keys(registry: Registry, tenant: str) -> dict[str, str]:
    """Keys for the test's tenant: two employers, two jobcoaches, an operator."""
    registry.create_tenant(tenant)
    return {
        "employer": registry.create_key(tenant, "employer", "emp-1"),
        "employer2": registry.create_key(tenant, "employer", "emp-2"),
        "jobcoach": registry.create_key(tenant, "jobcoach", "jc-1"),
        "jobcoach2": registry.create_key(tenant, "jobcoach", "jc-2"),
        "operator": registry.create_key(tenant, "operator", None),
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
