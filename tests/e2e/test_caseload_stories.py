"""The caseload's stories through every real process: a handover taking the alerts along, nobody out of sight
and no jobcoach over the limit without the region hearing of it (on the moved clock), an employer's interest
answered through the jobcoach, a council that may only read the region's figures, and a placement's end
lifting the candidate up the ladder. Each story has its own region, keys and ids."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import requests

from shared.clock import move_clock
from tests.e2e.conftest import bearer
from tests.e2e.helpers import put_channels, set_tenant_settings, stack_today, start_placement, wait_until
from tests.e2e.payloads import GARDENER, GREEN_VACANCY

pytestmark = pytest.mark.kafka

# Enough scheduler ticks (one a second, and one on every new day of the clock) for a duplicate to show.
QUIET_SECONDS = 3


def get(stack, service: str, tenant: str, path: str, key: str, **params) -> requests.Response:
    return requests.get(
        f"{stack.url(service)}/v1/tenants/{tenant}{path}", params=params, headers=bearer(key), timeout=10
    )


def post(stack, service: str, tenant: str, path: str, key: str, body: dict | None = None) -> requests.Response:
    return requests.post(f"{stack.url(service)}/v1/tenants/{tenant}{path}", json=body, headers=bearer(key), timeout=10)


def items(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["items"]


def wait_until_matching_knows(stack, tenant: str, jobcoach_key: str, candidate_id: str) -> None:
    wait_until(
        lambda: get(stack, "matching", tenant, f"/candidates/{candidate_id}/matches", jobcoach_key).status_code == 200,
        60,
        "the candidate in the matching service",
        stack,
    )


def another_jobcoach(stack, tenant: str) -> tuple[str, str]:
    jobcoach_id = f"jc-{uuid.uuid4().hex[:6]}"
    return jobcoach_id, stack.registry.create_key(tenant, "jobcoach", jobcoach_id)


def test_a_handover_moves_the_candidate_and_their_open_alert_to_the_new_jobcoach(stack):
    tenant, keys = stack.new_tenant()
    new_coach, new_key = another_jobcoach(stack, tenant)
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    proposal = stack.wait_for_alert(
        keys["jobcoach"], lambda a: a["type"] == "match_proposed" and a["vacancy_id"] == vacancy_id, tenant=tenant
    )
    assert proposal["candidate_id"] == candidate_id and proposal["acknowledged_at"] is None
    assert stack.alerts(new_key, tenant=tenant) == []

    handover = post(
        stack, "candidate", tenant, f"/candidates/{candidate_id}/handover", keys["operator"], {"jobcoach_id": new_coach}
    )
    assert handover.status_code == 200, handover.text
    assert handover.json()["jobcoach_id"] == new_coach

    # The candidate service answers at once; the alerts follow the candidate.updated event.
    assert get(stack, "candidate", tenant, f"/candidates/{candidate_id}", keys["jobcoach"]).status_code == 404
    assert items(get(stack, "candidate", tenant, "/candidates", keys["jobcoach"])) == []
    assert [c["id"] for c in items(get(stack, "candidate", tenant, "/candidates", new_key))] == [candidate_id]
    assert get(stack, "candidate", tenant, f"/candidates/{candidate_id}", new_key).json()["jobcoach_id"] == new_coach

    moved = wait_until(
        lambda: [a for a in stack.alerts(new_key, tenant=tenant) if a["id"] == proposal["id"]],
        60,
        "the alert in the new jobcoach's inbox",
        stack,
    )
    assert moved[0]["candidate_id"] == candidate_id and moved[0]["acknowledged_at"] is None
    assert [a for a in stack.alerts(keys["jobcoach"], tenant=tenant) if a["candidate_id"] == candidate_id] == []
    assert post(stack, "notification", tenant, f"/alerts/{proposal['id']}/ack", keys["jobcoach"]).status_code == 404
    # Matching's caseload follows too: the candidate is the new jobcoach's, with the alert still open.
    entry = wait_until(
        lambda: [e for e in items(get(stack, "matching", tenant, "/caseload", new_key)) if e["open_alerts"] == 1],
        60,
        "the candidate with the open alert in the new jobcoach's caseload",
        stack,
    )
    assert [(e["candidate_id"], e["jobcoach_id"]) for e in entry] == [(candidate_id, new_coach)]
    assert items(get(stack, "matching", tenant, "/caseload", keys["jobcoach"])) == []


def test_out_of_sight_and_caseload_over_limit_are_reported_once_on_the_moved_clock(stack):
    tenant, keys = stack.new_tenant()
    contact_days, caseload_limit = 2, 1
    set_tenant_settings(stack, tenant, contact_days=contact_days)
    # Other stories may have moved the shared clock already, or not: this one never relies on it standing at
    # zero, so it moves it a day before it starts.
    move_clock(stack.clock_file, timedelta(days=1))
    today = stack_today(stack)
    candidates = {stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"]) for _ in range(3)}

    def caseload() -> list[dict]:
        return items(get(stack, "matching", tenant, "/caseload", keys["jobcoach"]))

    wait_until(lambda: {e["candidate_id"] for e in caseload()} == candidates, 60, "the caseload of three", stack)
    # Registration is contact, on the day the region's clock says it is.
    assert {(e["last_contact"], e["days_since_contact"]) for e in caseload()} == {(today.isoformat(), 0)}

    def out_of_sight() -> list[dict]:
        return stack.alerts(keys["jobcoach"], tenant=tenant, type="out_of_sight")

    def over_limit() -> list[dict]:
        response = get(stack, "notification", tenant, "/escalations", keys["operator"], type="caseload_over_limit")
        return items(response)

    # Three candidates against a limit of one: the operators hear of it once, at the worker's next sweep. The
    # limit comes once all three are in, or a sweep between the second and the third would report two.
    set_tenant_settings(stack, tenant, caseload_limit=caseload_limit)
    [escalation] = wait_until(over_limit, 90, "the caseload over the limit", stack)
    assert escalation["type"] == "caseload_over_limit" and escalation["candidate_id"] is None
    assert escalation["details"]["jobcoach_id"] == keys["jobcoach_id"]
    assert (escalation["details"]["caseload"], escalation["details"]["caseload_limit"]) == (3, caseload_limit)

    move_clock(stack.clock_file, timedelta(days=contact_days - 1))
    time.sleep(QUIET_SECONDS)
    assert out_of_sight() == [], "one day short of contact_days is not out of sight yet"

    move_clock(stack.clock_file, timedelta(days=1))
    found = wait_until(lambda: len(out_of_sight()) >= 3 and out_of_sight(), 60, "three out-of-sight alerts", stack)
    assert sorted(a["candidate_id"] for a in found) == sorted(candidates)
    assert all(a["details"]["last_contact"] == today.isoformat() for a in found), found
    assert all(a["details"]["contact_days"] == contact_days for a in found), found

    # The same gap a day longer is not news: nothing comes twice.
    move_clock(stack.clock_file, timedelta(days=1))
    time.sleep(QUIET_SECONDS)
    assert sorted(a["id"] for a in out_of_sight()) == sorted(a["id"] for a in found)
    assert [e["id"] for e in over_limit()] == [escalation["id"]]
    assert stack.alerts(keys["jobcoach"], tenant=tenant, type="caseload_over_limit") == [], "operators only"
    assert {e["days_since_contact"] for e in caseload()} == {contact_days + 1}


def test_an_employers_interest_accepted_by_the_jobcoach_shows_the_contact_never_the_candidate(stack):
    tenant, keys = stack.new_tenant()
    work_email = f"{keys['jobcoach_id']}@werk.example.org"
    assert put_channels(stack, tenant, keys, {"email": work_email}).status_code == 200
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    private = {**GARDENER, "display_name": "Roos", "consent": {"matching": True, "share_with_employers": False}}
    private_id = stack.post_candidate(private, tenant=tenant, key=keys["jobcoach"])
    for candidate in (candidate_id, private_id):
        wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate)
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])

    def matches() -> list[dict] | None:
        response = get(stack, "matching", tenant, f"/vacancies/{vacancy_id}/matches", keys["employer"])
        return response.json()["items"] if response.status_code == 200 else None

    profiles = wait_until(matches, 60, "the vacancy's matches", stack)
    assert len(profiles) == 1, "only the candidate who shares with employers is shown"
    assert candidate_id not in str(profiles) and private_id not in str(profiles)

    body = {"profile_ref": profiles[0]["profile_ref"]}
    interest = post(stack, "matching", tenant, f"/vacancies/{vacancy_id}/interest", keys["employer"], body)
    assert interest.status_code == 201, interest.text
    introduction = interest.json()
    assert (introduction["status"], introduction["profile_ref"]) == ("pending", profiles[0]["profile_ref"])
    assert candidate_id not in interest.text

    alert = stack.wait_for_alert(keys["jobcoach"], lambda a: a["type"] == "employer_interest", tenant=tenant)
    assert alert["details"]["introduction_id"] == introduction["id"]
    assert (alert["candidate_id"], alert["vacancy_id"]) == (candidate_id, vacancy_id)
    [listed] = items(get(stack, "matching", tenant, "/introductions", keys["jobcoach"]))
    assert (listed["id"], listed["status"], listed["candidate_id"]) == (introduction["id"], "pending", candidate_id)

    accepted = post(stack, "matching", tenant, f"/introductions/{introduction['id']}/accept", keys["jobcoach"])
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["status"], accepted.json()["answered_by"]) == ("accepted", keys["jobcoach_id"])
    again = post(stack, "matching", tenant, f"/introductions/{introduction['id']}/decline", keys["jobcoach"])
    assert again.status_code == 409, "the answer is recorded once"

    def employer_view() -> list[dict] | None:
        response = get(stack, "matching", tenant, f"/vacancies/{vacancy_id}/introductions", keys["employer"])
        found = items(response)
        # The work e-mail reaches matching as an event of its own: until then the service desk is the way.
        return found if found and (found[0]["contact"] or {}).get("work_email") else None

    [shown] = wait_until(employer_view, 60, "the accepted introduction with the jobcoach's work e-mail", stack)
    assert (shown["id"], shown["status"]) == (introduction["id"], "accepted")
    assert shown["contact"] == {"work_email": work_email, "how": "e-mail the jobcoach"}
    raw = get(stack, "matching", tenant, f"/vacancies/{vacancy_id}/introductions", keys["employer"]).text
    assert candidate_id not in raw and "candidate_id" not in raw

    def consent_entries() -> list[dict]:
        return items(get(stack, "candidate", tenant, f"/candidates/{candidate_id}/consent", keys["jobcoach"]))

    entry = wait_until(
        lambda: [e for e in consent_entries() if e["type"] == "introduction_accepted"],
        60,
        "the accepted introduction in the consent history",
        stack,
    )
    assert [(e["introduction_id"], e["vacancy_id"], e["recorded_by"]) for e in entry] == [
        (introduction["id"], vacancy_id, keys["jobcoach_id"])
    ]
    assert [e["type"] for e in consent_entries()] == ["introduction_accepted", "consent"]


def test_a_council_reads_the_regions_figures_and_nothing_else(stack):
    tenant, keys = stack.new_tenant()
    council = stack.registry.create_key(tenant, "council", None)
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])

    assert get(stack, "matching", tenant, "/insights", council).status_code == 200
    assert get(stack, "matching", tenant, "/exposure", council).status_code == 200
    refused = [
        get(stack, "matching", tenant, "/caseload", council),
        get(stack, "matching", tenant, "/introductions", council),
        get(stack, "candidate", tenant, "/candidates", council),
        get(stack, "candidate", tenant, f"/candidates/{candidate_id}", council),
        get(stack, "notification", tenant, "/alerts", council),
        get(stack, "notification", tenant, "/escalations", council),
        get(stack, "vacancy", tenant, "/vacancies", council),
        post(stack, "vacancy", tenant, "/vacancies", council, GREEN_VACANCY),
        post(stack, "candidate", tenant, "/candidates", council, GARDENER),
    ]
    assert [(r.request.method, r.url, r.status_code) for r in refused] == [
        (r.request.method, r.url, 403) for r in refused
    ]
    assert all(r.headers["Content-Type"] == "application/problem+json" for r in refused)
    # Nothing a refused request asked for happened.
    assert [c["id"] for c in items(get(stack, "candidate", tenant, "/candidates", keys["operator"]))] == [candidate_id]
    assert items(get(stack, "vacancy", tenant, "/vacancies", keys["operator"])) == []


def test_a_placement_that_ends_in_paid_work_raises_the_candidates_ladder_step(stack):
    tenant, keys = stack.new_tenant()
    today = stack_today(stack)
    placement = start_placement(stack, tenant, keys, today - timedelta(days=30))
    candidate_id = placement["candidate_id"]
    assert GARDENER["ladder_step"] == 3 and GREEN_VACANCY["kind"] == "work_experience"

    ended = post(
        stack,
        "matching",
        tenant,
        f"/placements/{placement['id']}/end",
        keys["jobcoach"],
        {"date": today.isoformat(), "outcome": "moved_to_paid_work"},
    )
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["outcome"]) == ("ended", "moved_to_paid_work")

    def step() -> int:
        return get(stack, "candidate", tenant, f"/candidates/{candidate_id}", keys["jobcoach"]).json()["ladder_step"]

    # Paid work after a work-experience place is paid work with support: rung 5.
    wait_until(lambda: step() == 5, 60, "the raised ladder step", stack)
    ladder = items(get(stack, "candidate", tenant, f"/candidates/{candidate_id}/ladder", keys["jobcoach"]))
    assert [(e["step"], e["previous_step"], e["reason"]) for e in ladder] == [
        (5, 3, "placement_ended"),
        (3, None, "registered"),
    ]
    assert (ladder[0]["placement_id"], ladder[0]["outcome"], ladder[0]["end_date"]) == (
        placement["id"],
        "moved_to_paid_work",
        today.isoformat(),
    )
    assert ladder[0]["recorded_by"] == keys["jobcoach_id"]
    # Ending twice is refused, and the step is raised once.
    again = post(
        stack,
        "matching",
        tenant,
        f"/placements/{placement['id']}/end",
        keys["jobcoach"],
        {"date": today.isoformat(), "outcome": "moved_to_paid_work"},
    )
    assert again.status_code == 409
    time.sleep(1)
    assert len(items(get(stack, "candidate", tenant, f"/candidates/{candidate_id}/ladder", keys["jobcoach"]))) == 2
