"""A person's session in the workspace ends when the API refuses its key: the workspace, driven through
Flask's test client, talks over HTTP to the real notification service on a real database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.workspace import config as workspace_config
from services.workspace import store as workspace_store
from services.workspace.app import create_app
from services.workspace.client import ApiClient
from services.workspace.context import WorkspaceContext
from services.workspace.sessions import KEY_LABEL
from shared.db import Database, upgrade
from tests.integration.helpers import served

PASSWORD = "een lange zin als wachtwoord"


@pytest.fixture
def notification_url(service) -> Iterator[str]:
    """The notification service's app served over real HTTP, as the workspace reaches it."""
    with served(service("notification").client.application) as url:
        yield url


@pytest.fixture
def workspace(database_url, registry, notification_url):
    url = database_url("workspace")
    upgrade(workspace_store.MIGRATIONS, url)
    settings = workspace_config.load(
        {
            "DATABASE_URL": url,
            "REGISTRY_DATABASE_URL": registry.db.url,
            "WORKSPACE_SECRET_KEY": uuid.uuid4().hex * 2,
            "NOTIFICATION_API_URL": notification_url,
        }
    )
    context = WorkspaceContext(settings, Database(url), registry, ApiClient(settings.api_urls, 5.0))
    app = create_app(context)
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def _signed_in_jobcoach(workspace, registry, tenant):
    registry.create_tenant(tenant)
    email = f"jc-{uuid.uuid4().hex[:6]}@{tenant}.test"
    registry.create_person(tenant, "jobcoach", "jc-1", email, PASSWORD)
    answer = workspace.post("/sign-in", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 302
    assert workspace.get("/channels").status_code == 200  # the session's key works against the API
    (key,) = [key for key in registry.list_keys(tenant) if key.label == KEY_LABEL and key.revoked_at is None]
    return key


def test_a_revoked_key_ends_the_session_and_says_why_in_dutch(workspace, registry, tenant):
    key = _signed_in_jobcoach(workspace, registry, tenant)
    registry.revoke_key(key.id)

    answer = workspace.get("/")  # the inbox, whose alert reads run in the client's worker threads
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/sign-in?ended=1")
    page = workspace.get(answer.headers["Location"])
    assert "je toegang is ingetrokken of verlopen" in page.get_data(as_text=True)

    # Signed out for good: the session is gone from the workspace's database, the next page asks to sign in.
    again = workspace.get("/channels")
    assert again.status_code == 302 and again.headers["Location"].startswith("/sign-in")
    assert "ended" not in again.headers["Location"]
    assert not [k for k in registry.list_keys(tenant) if k.label == KEY_LABEL and k.revoked_at is None]


def test_a_fragment_request_with_a_revoked_key_sends_the_whole_page_to_sign_in(workspace, registry, tenant):
    key = _signed_in_jobcoach(workspace, registry, tenant)
    registry.revoke_key(key.id)

    answer = workspace.get("/channels", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert answer.headers["HX-Redirect"].startswith("/sign-in?ended=1")
    assert workspace.get("/channels").headers["Location"].startswith("/sign-in")
