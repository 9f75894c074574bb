"""Every service's migrations build exactly the tables its code declares, the web layer's included."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import upgrade


@pytest.mark.parametrize("service", ["candidate", "vacancy", "matching", "notification"])
def test_the_migrated_schema_is_the_one_the_code_declares(database_url, service):
    store = importlib.import_module(f"services.{service}.store")
    url = database_url(service)
    upgrade(store.MIGRATIONS, url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, store.metadata)
    finally:
        engine.dispose()

    assert differences == []
