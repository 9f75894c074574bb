"""Idle sessions of the workspace end server-side after 8 hours, and their short-lived API keys are revoked:
by the session's own next request, and by the sweep any request sets off for sessions nobody comes back to.
The clock is injected, so no test waits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.workspace import config, sessions, store
from services.workspace.app import create_app
from services.workspace.client import ApiClient
from services.workspace.context import WorkspaceContext
from shared.db import Database, upgrade
from shared.registry import Registry, api_keys

PASSWORD = "een lange zin als wachtwoord"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def workspace(database_url, registry: Registry, tenant: str, tmp_path):
    url = database_url("workspace")
    upgrade(store.MIGRATIONS, url)
    settings = config.load({"DATABASE_URL": url, "WERKBRUG_VAR_DIR": str(tmp_path), "WORKSPACE_IDLE_MINUTES": "480"})
    clock = Clock()
    context = WorkspaceContext(settings, Database(url), registry, ApiClient(settings.api_urls, 1.0), clock)
    registry.create_tenant(tenant)
    app = create_app(context)
    app.config["WTF_CSRF_ENABLED"] = False
    return context, app, clock


def _person(registry: Registry, tenant: str) -> str:
    email = f"jc-{uuid.uuid4().hex[:6]}@{tenant}.test"
    registry.create_person(tenant, "jobcoach", f"jc-{uuid.uuid4().hex[:6]}", email, PASSWORD)
    return email


def _revoked(registry: Registry, tenant: str) -> list[bool]:
    with registry.db.session() as session:
        rows = session.execute(
            sa.select(api_keys.c.revoked_at)
            .where(api_keys.c.tenant == tenant, api_keys.c.label == sessions.KEY_LABEL)
            .order_by(api_keys.c.id)
        ).all()
    return [row.revoked_at is not None for row in rows]


def _sign_in(app, email: str):
    client = app.test_client()
    response = client.post("/sign-in", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return client


def test_a_session_nobody_comes_back_to_loses_its_key_at_anyone_elses_request(workspace, registry, tenant):
    context, app, clock = workspace
    left = _sign_in(app, _person(registry, tenant))
    assert left.get("/sign-out").status_code == 200  # a page view: the session is in use
    assert _revoked(registry, tenant) == [False]

    clock.now += timedelta(hours=7, minutes=50)
    other = _sign_in(app, _person(registry, tenant))
    assert _revoked(registry, tenant) == [False, False], "idle for less than 8 hours: still signed in"

    clock.now += timedelta(minutes=15)  # the first person has now been idle 8 hours and 5 minutes
    assert other.get("/sign-out").status_code == 200
    assert _revoked(registry, tenant) == [True, False]
    with context.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(store.sessions)).scalar() == 1
    # And the idle browser, coming back after all, is asked to sign in again.
    response = left.get("/sign-out")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_an_idle_session_s_own_next_request_ends_it_and_revokes_the_key(workspace, registry, tenant):
    _context, app, clock = workspace
    client = _sign_in(app, _person(registry, tenant))
    clock.now += timedelta(hours=8, minutes=1)
    response = client.get("/sign-out")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert _revoked(registry, tenant) == [True]


def test_the_sweep_runs_at_most_once_per_interval(workspace, registry, tenant):
    context, _app, clock = workspace
    sweep = sessions.IdleSweep(every=timedelta(minutes=5))
    assert sweep(context) == 0
    sessions.sign_in(context, _person(registry, tenant), PASSWORD, "127.0.0.1")
    clock.now += timedelta(hours=8, minutes=1)
    sweep_too_soon = sessions.IdleSweep(every=timedelta(hours=9))
    sweep_too_soon(context)  # its first run, on the idle session: revoked
    assert _revoked(registry, tenant) == [True]
    sessions.sign_in(context, _person(registry, tenant), PASSWORD, "127.0.0.1")
    clock.now += timedelta(hours=8, minutes=1)
    assert sweep_too_soon(context) == 0, "within its interval the sweep does not run"
    assert _revoked(registry, tenant) == [True, False]
    assert sweep(context) == 1
    assert _revoked(registry, tenant) == [True, True]
