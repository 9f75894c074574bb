"""The workspace's edit forms carry the ETag they were shown with and send it as If-Match: a region that
requires If-Match can still edit through the workspace, and a form shown before someone else's change says
so in Dutch, keeps what was typed and changes nothing. The workspace, driven through Flask's test client,
talks over HTTP to the real candidate, vacancy, matching and notification services on real databases."""

from __future__ import annotations

import contextlib
import copy
import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.workspace import config as workspace_config
from services.workspace import domain
from services.workspace import store as workspace_store
from services.workspace.app import create_app
from services.workspace.client import ApiClient
from services.workspace.context import WorkspaceContext
from shared.db import Database, upgrade
from shared.events import EventType, load_example
from tests.e2e.payloads import GARDENER, GREEN_VACANCY
from tests.integration.conftest import bearer
from tests.integration.helpers import feed_matching, served, snapshot

PASSWORD = "een lange zin als wachtwoord"
CHANGED_MEANWHILE = "Iemand anders heeft dit net veranderd"
TOO_OLD = "Deze pagina is te oud om op te slaan"
_ETAG_FIELD = re.compile(r'<input type="hidden" name="etag" value="([^"]*)">')


@pytest.fixture
def services(service):
    return {name: service(name) for name in ("candidate", "vacancy", "matching", "notification")}


@pytest.fixture
def sign_in(database_url, registry, services, keys, tenant):
    """A workspace test client signed in as a person of the test's region, with the services over HTTP."""
    url = database_url("workspace")
    upgrade(workspace_store.MIGRATIONS, url)
    with contextlib.ExitStack() as stack:
        env = {
            f"{name.upper()}_API_URL": stack.enter_context(served(svc.client.application))
            for name, svc in services.items()
        }
        settings = workspace_config.load(
            {
                "DATABASE_URL": url,
                "REGISTRY_DATABASE_URL": registry.db.url,
                "WORKSPACE_SECRET_KEY": uuid.uuid4().hex * 2,
                **env,
            }
        )
        context = WorkspaceContext(settings, Database(url), registry, ApiClient(settings.api_urls, 5.0))
        app = create_app(context)
        app.config["WTF_CSRF_ENABLED"] = False

        def person(role: str, subject: str | None):
            email = f"{role}-{uuid.uuid4().hex[:6]}@{tenant}.test"
            registry.create_person(tenant, role, subject, email, PASSWORD)
            client = app.test_client()
            assert client.post("/sign-in", data={"email": email, "password": PASSWORD}).status_code == 302
            return client

        yield person


def _data(svc) -> dict[str, list[tuple]]:
    """Every row the service holds but its audit log, which rightly records the reads a form post makes."""
    return {name: rows for name, rows in snapshot(svc).items() if name != "audit_log"}


def _shown_etag(page) -> str | None:
    found = _ETAG_FIELD.search(page.get_data(as_text=True))
    return html.unescape(found.group(1)) if found else None


def _candidate(services, keys, tenant) -> str:
    created = services["candidate"].client.post(
        f"/v1/tenants/{tenant}/candidates", json=GARDENER, headers=bearer(keys["jobcoach"])
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()["id"]


def _stored_candidate(services, keys, tenant, candidate_id) -> dict:
    answer = services["candidate"].client.get(
        f"/v1/tenants/{tenant}/candidates/{candidate_id}", headers=bearer(keys["jobcoach"])
    )
    return answer.get_json() | {"etag": answer.headers["ETag"]}


def test_a_region_that_requires_if_match_edits_a_candidate_through_the_workspace(
    sign_in, services, keys, tenant, registry
):
    registry.change_settings(tenant, {"require_if_match": "true"})
    jobcoach = sign_in("jobcoach", "jc-1")
    candidate_id = _candidate(services, keys, tenant)

    page = jobcoach.get(f"/candidates/{candidate_id}")
    assert page.status_code == 200
    shown = _shown_etag(page)
    assert shown == _stored_candidate(services, keys, tenant, candidate_id)["etag"]

    form = domain.candidate_form(GARDENER) | {"hours_max": "28", domain.ETAG_FIELD: shown}
    saved = jobcoach.post(f"/candidates/{candidate_id}", data=form)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    after = _stored_candidate(services, keys, tenant, candidate_id)
    assert after["hours_max"] == 28
    assert after["etag"] != shown

    # The page shown after the save carries the new tag, so the next edit goes through as well.
    assert _shown_etag(jobcoach.get(f"/candidates/{candidate_id}")) == after["etag"]


def test_a_stale_candidate_form_says_so_keeps_what_was_typed_and_changes_nothing(
    sign_in, services, keys, tenant, registry
):
    registry.change_settings(tenant, {"require_if_match": "true"})
    jobcoach = sign_in("jobcoach", "jc-1")
    candidate_id = _candidate(services, keys, tenant)
    shown = _shown_etag(jobcoach.get(f"/candidates/{candidate_id}"))

    # Meanwhile someone else (here the region's operator, through the API) changes the candidate.
    current = _stored_candidate(services, keys, tenant, candidate_id)
    other = services["candidate"].client.patch(
        f"/v1/tenants/{tenant}/candidates/{candidate_id}",
        json={"ladder_step": 4},
        headers={**bearer(keys["operator"]), "If-Match": current["etag"]},
    )
    assert other.status_code == 200
    before = _data(services["candidate"])

    typed = domain.candidate_form(GARDENER) | {"talents": "fietsen repareren", domain.ETAG_FIELD: shown}
    refused = jobcoach.post(f"/candidates/{candidate_id}", data=typed)
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert CHANGED_MEANWHILE in text
    assert "Daarom is er niets opgeslagen" in text
    assert "fietsen repareren" in text  # what was typed is still in the form
    assert _data(services["candidate"]) == before

    # The form shown again carries the tag of the candidate as it is now: saving again is a knowing choice.
    fresh = _shown_etag(refused)
    assert fresh == _stored_candidate(services, keys, tenant, candidate_id)["etag"]
    again = jobcoach.post(f"/candidates/{candidate_id}", data=typed | {domain.ETAG_FIELD: fresh})
    assert again.status_code == 303
    assert _stored_candidate(services, keys, tenant, candidate_id)["talents"] == ["fietsen repareren"]


def test_a_form_without_a_tag_in_a_region_that_requires_one_changes_nothing(sign_in, services, keys, tenant, registry):
    registry.change_settings(tenant, {"require_if_match": "true"})
    jobcoach = sign_in("jobcoach", "jc-1")
    candidate_id = _candidate(services, keys, tenant)
    before = _data(services["candidate"])

    # A page shown before the form carried a tag, or one whose tag was tampered with: no If-Match is sent.
    for tag in (None, "not-a-tag"):
        form = domain.candidate_form(GARDENER) | {"hours_max": "30"}
        if tag:
            form[domain.ETAG_FIELD] = tag
        refused = jobcoach.post(f"/candidates/{candidate_id}", data=form)
        assert refused.status_code == 409
        assert TOO_OLD in refused.get_data(as_text=True)
        assert _data(services["candidate"]) == before


def test_a_region_without_the_requirement_still_saves_a_form_without_a_tag(sign_in, services, keys, tenant):
    jobcoach = sign_in("jobcoach", "jc-1")
    candidate_id = _candidate(services, keys, tenant)
    saved = jobcoach.post(f"/candidates/{candidate_id}", data=domain.candidate_form(GARDENER) | {"hours_max": "30"})
    assert saved.status_code == 303
    assert _stored_candidate(services, keys, tenant, candidate_id)["hours_max"] == 30


def test_a_stale_vacancy_form_says_so_politely_and_changes_nothing(sign_in, services, keys, tenant, registry):
    registry.change_settings(tenant, {"require_if_match": "true"})
    employer = sign_in("employer", "emp-1")
    api = services["vacancy"].client
    created = api.post(f"/v1/tenants/{tenant}/vacancies", json=GREEN_VACANCY, headers=bearer(keys["employer"]))
    assert created.status_code == 201
    vacancy_id = created.get_json()["id"]
    shown = _shown_etag(employer.get(f"/vacancies/{vacancy_id}"))
    assert shown == created.headers["ETag"]

    other = api.patch(
        f"/v1/tenants/{tenant}/vacancies/{vacancy_id}",
        json={"positions": 3},
        headers={**bearer(keys["operator"]), "If-Match": shown},
    )
    assert other.status_code == 200
    before = _data(services["vacancy"])

    typed = domain.vacancy_form(GREEN_VACANCY) | {"title": "Hovenier", domain.ETAG_FIELD: shown}
    refused = employer.post(f"/vacancies/{vacancy_id}", data=typed)
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert CHANGED_MEANWHILE in text and "Wat u hebt ingevuld, staat hieronder nog" in text
    assert 'value="Hovenier"' in text
    assert _data(services["vacancy"]) == before

    again = employer.post(f"/vacancies/{vacancy_id}", data=typed | {domain.ETAG_FIELD: _shown_etag(refused)})
    assert again.status_code == 303
    stored = api.get(f"/v1/tenants/{tenant}/vacancies/{vacancy_id}", headers=bearer(keys["employer"])).get_json()
    assert (stored["title"], stored["positions"]) == ("Hovenier", 2)  # the form as typed, knowingly saved


def test_stale_channels_say_so_and_change_nothing(sign_in, services, keys, tenant, registry):
    registry.change_settings(tenant, {"require_if_match": "true"})
    jobcoach = sign_in("jobcoach", "jc-1")

    # Set for the first time: nothing to overwrite, so no tag is needed even where the region requires one.
    first = jobcoach.post("/channels", data={"email": "eerste@example.org"})
    assert first.status_code == 303
    shown = _shown_etag(jobcoach.get("/channels"))
    assert shown

    other = jobcoach.post("/channels", data={"email": "tweede@example.org", domain.ETAG_FIELD: shown})
    assert other.status_code == 303
    before = _data(services["notification"])

    refused = jobcoach.post("/channels", data={"email": "derde@example.org", domain.ETAG_FIELD: shown})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert CHANGED_MEANWHILE in text and 'value="derde@example.org"' in text
    assert _data(services["notification"]) == before
    assert 'value="tweede@example.org"' in jobcoach.get("/channels").get_data(as_text=True)


def test_a_check_in_goes_through_with_the_tag_and_a_stale_one_changes_nothing(
    sign_in, services, keys, tenant, registry
):
    registry.change_settings(tenant, {"require_if_match": "true"})
    matching = services["matching"]
    today = datetime.now(UTC).date()
    candidate = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"]) | {"jobcoach_id": "jc-1"}
    vacancy = copy.deepcopy(load_example(EventType.VACANCY_POSTED)["data"]) | {"employer_id": "emp-1"}
    started = matching.client.post(
        f"/v1/tenants/{tenant}/placements",
        json={
            "candidate_id": feed_matching(matching, tenant, EventType.CANDIDATE_REGISTERED, candidate),
            "vacancy_id": feed_matching(matching, tenant, EventType.VACANCY_POSTED, vacancy),
            "start_date": (today - timedelta(days=21)).isoformat(),
            "agreed_hours": 16,
            "supports_agreed": [],
        },
        headers=bearer(keys["jobcoach"]),
    )
    assert started.status_code == 201, started.get_data(as_text=True)
    placement_id = started.get_json()["id"]
    jobcoach = sign_in("jobcoach", "jc-1")

    def check_in(days_ago: int, tag: str | None, hours: str = "12"):
        form = {"date": (today - timedelta(days=days_ago)).isoformat(), "wellbeing": "4", "hours_worked": hours}
        return jobcoach.post(f"/placements/{placement_id}", data=form | {"absence_days": "0", "etag": tag or ""})

    shown = _shown_etag(jobcoach.get(f"/placements/{placement_id}"))
    assert shown == started.headers["ETag"]
    assert check_in(14, shown).status_code == 303
    page = jobcoach.get(f"/placements/{placement_id}?saved=checkin")
    assert "De check-in is opgeslagen" in page.get_data(as_text=True)
    after_first = _shown_etag(page)
    assert after_first != shown

    # Another check-in, recorded meanwhile (say in a second tab), makes the tag on the page stale.
    other = matching.client.post(
        f"/v1/tenants/{tenant}/placements/{placement_id}/checkins",
        json={"date": (today - timedelta(days=7)).isoformat(), "wellbeing": 3, "hours_worked": 10, "absence_days": 0},
        headers={**bearer(keys["jobcoach"]), "If-Match": after_first},
    )
    assert other.status_code == 201
    before = _data(matching)

    refused = check_in(0, after_first, hours="13,5")
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert CHANGED_MEANWHILE in text and 'value="13,5"' in text
    assert _data(matching) == before
    assert _shown_etag(refused) == other.headers["ETag"]
