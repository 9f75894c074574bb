"""Operations of every web process: ready when its database answers (the broker's state is told, never held
against it), and the client's address believed from a proxy only as far as the deployment says."""

from __future__ import annotations

import time

import pytest

from shared.db import Database
from shared.web.app import ServiceContext


@pytest.mark.parametrize("name", ["candidate", "vacancy", "matching", "notification"])
def test_a_web_process_stays_ready_while_the_broker_is_away(service, name):
    # The fixture points every app at a port where no broker listens.
    svc = service(name)
    own_checks = {}
    if name == "matching":
        # Matching is ready once its indexes are warm too; the warm-up runs in a thread of its own.
        cache = svc.client.application.extensions["werkbrug"].engine.cache
        while not cache.warmed_up():
            time.sleep(0.05)
        own_checks = {"indexes": "ok"}
    answer = svc.client.get("/readyz")

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ready", "checks": {"database": "ok", "kafka": "unavailable", **own_checks}}


def test_a_web_process_without_its_database_is_not_ready(service, tmp_path):
    svc = service("vacancy")
    # A directory where the database file should be: SQLite cannot open it.
    unreachable = Database(f"sqlite:///{tmp_path}")
    context = ServiceContext(svc.context.settings, unreachable, svc.context.registry)
    from services.vacancy.app import create_app

    answer = create_app(context).test_client().get("/readyz")

    assert answer.status_code == 503
    assert answer.get_json()["checks"]["database"] == "unavailable"


def test_behind_a_trusted_proxy_the_forwarded_client_address_counts(service, monkeypatch):
    from flask import request

    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    app = service("vacancy").client.application
    # ProxyFix acts on a request through the WSGI stack: drive one and read what the app saw.
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(request.remote_addr) and None)
    app.test_client().get(
        "/healthz", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert seen == ["203.0.113.7"]


def test_without_a_trusted_proxy_a_forwarded_address_is_not_believed(service):
    from flask import request

    app = service("vacancy").client.application
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(request.remote_addr) and None)
    app.test_client().get(
        "/healthz", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert seen == ["10.0.0.9"]
