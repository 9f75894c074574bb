"""Links drawn on every row of a long list are built once per request and filled in per row: they must be
exactly what ``url_for`` gives, whatever the id holds."""

from __future__ import annotations

import pytest
from flask import render_template_string, url_for

from services.workspace import config
from services.workspace.app import create_app
from services.workspace.client import ApiClient
from services.workspace.context import WorkspaceContext
from shared.db import Database
from shared.registry import Registry

IDS = ["3f2b8c1e-0d4a-4c5e-9a7b-1c2d3e4f5a6b", "cand-7", "met spatie", "a/b?c#d%e", "ünïcode", "row-value-a7f3c1x"]


@pytest.fixture
def app(tmp_path):
    # The databases are named, never opened: building links reads no rows.
    settings = config.load(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    )
    context = WorkspaceContext(
        settings,
        Database(settings.database_url),
        Registry(Database(settings.registry_database_url)),
        ApiClient(settings.api_urls, 1.0),
    )
    return create_app(context)


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("jobcoach.candidate", "candidate_id"),
        ("jobcoach.placement", "placement_id"),
        ("jobcoach.acknowledge", "alert_id"),
        ("region.acknowledge_escalation", "alert_id"),
    ],
)
def test_a_row_link_is_what_url_for_builds(app, endpoint: str, name: str):
    with app.test_request_context("/"):
        drawn = render_template_string(
            "{% for id in ids %}{{ row_url(endpoint, name, id) }}\n{% endfor %}", ids=IDS, endpoint=endpoint, name=name
        )
        expected = "".join(f"{url_for(endpoint, **{name: value})}\n" for value in IDS)
    assert drawn == expected
    assert drawn.count("\n") == len(IDS)


def test_a_row_link_follows_the_address_the_workspace_is_served_under(app):
    with app.test_request_context("/", base_url="http://werkbrug.test/werkplek"):
        drawn = render_template_string("{{ row_url('jobcoach.candidate', 'candidate_id', 'cand-7') }}")
    assert drawn == "/werkplek/candidates/cand-7"
