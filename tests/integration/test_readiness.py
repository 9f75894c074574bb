"""A web process is ready when its database answers; the broker's state is told, never held against it."""

from __future__ import annotations

import pytest

from shared.db import Database
from shared.web.app import ServiceContext


@pytest.mark.parametrize("name", ["candidate", "vacancy", "matching", "notification"])
def test_a_web_process_stays_ready_while_the_broker_is_away(service, name):
    # The fixture points every app at a port where no broker listens.
    answer = service(name).client.get("/readyz")

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ready", "checks": {"database": "ok", "kafka": "unavailable"}}


def test_a_web_process_without_its_database_is_not_ready(service, tmp_path):
    svc = service("vacancy")
    # A directory where the database file should be: SQLite cannot open it.
    unreachable = Database(f"sqlite:///{tmp_path}")
    context = ServiceContext(svc.context.settings, unreachable, svc.context.registry)
    from services.vacancy.app import create_app

    answer = create_app(context).test_client().get("/readyz")

    assert answer.status_code == 503
    assert answer.get_json()["checks"]["database"] == "unavailable"
