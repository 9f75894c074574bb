"""The workspace in a real browser against the real services: a jobcoach's day, the other roles' pages,
and the security rules. axe-core checks every page these tests visit."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import requests
from selenium.webdriver.support.select import Select

from tests.e2e.browser import Browser, chromium_available
from tests.e2e.conftest import bearer
from tests.e2e.helpers import put_channels, set_tenant_settings, stack_today
from tests.e2e.payloads import GARDENER, GREEN_VACANCY

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and chromium-driver")

PASSWORD = "een lange zin als wachtwoord"


@pytest.fixture
def region(stack):
    """A region of its own with a jobcoach, an operator, a council member and an employer who can sign in."""
    tenant, keys = stack.new_tenant()
    employer_id = f"emp-{uuid.uuid4().hex[:6]}"
    keys["employer"] = stack.registry.create_key(tenant, "employer", employer_id)
    people = {}
    for role, subject in (
        ("jobcoach", keys["jobcoach_id"]),
        ("operator", None),
        ("council", None),
        ("employer", employer_id),
    ):
        email = f"{role}-{uuid.uuid4().hex[:6]}@{tenant}.test"
        stack.registry.create_person(tenant, role, subject, email, PASSWORD)
        people[role] = email
    return tenant, keys, people


@pytest.fixture
def browser(workspace):
    opened = Browser(workspace.url)
    yield opened
    opened.close()


def test_a_jobcoach_registers_a_candidate_places_them_and_acknowledges_the_risk_alert(
    stack, workspace, region, browser
):
    tenant, keys, people = region
    stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])

    browser.sign_in(people["jobcoach"], PASSWORD)
    assert browser.heading == "Vandaag"

    browser.open("/candidates/new")
    browser.fill("display_name", "Tulp")
    browser.fill("talents", "planten verzorgen\nbuiten werken")
    browser.find("#need-quiet_workplace-essential").click()
    browser.find("#need-work_buddy-preferred").click()
    browser.fill("hours_min", "12")
    browser.fill("hours_max", "24")
    browser.fill("location.postcode", "59")  # wrong: four digits are needed
    browser.fill("location.max_travel_km", "20")
    browser.find("#veld-consent-share_with_employers").click()
    browser.submit()
    # The API's field error, in Dutch, next to the field; what was typed is still there.
    assert "Vul de 4 cijfers van de postcode in" in browser.find(".werkbrug-field--invalid").text
    assert browser.find('[name="display_name"]').get_attribute("value") == "Tulp"
    assert browser.find("#need-quiet_workplace-essential").is_selected()

    browser.fill("location.postcode", "5912")
    browser.submit()
    assert browser.heading == "Tulp"
    browser.wait_for(lambda: "Medewerker groenonderhoud" in browser.text, 60, "match with an explanation")
    browser.check_accessibility()
    assert "Nodig en geboden: Rustige werkplek" in browser.text
    browser.screenshot("candidate")

    browser.find("details.werkbrug-details summary").click()
    browser.set_value("start_date", (stack_today(stack) - timedelta(days=21)).isoformat())
    browser.submit("details.werkbrug-details form")
    assert browser.heading.startswith("Plaatsing vanaf")

    for days_ago in (14, 7, 0):
        browser.set_value("date", (stack_today(stack) - timedelta(days=days_ago)).isoformat())
        browser.find("#wb-1").click()
        browser.fill("hours_worked", "4")
        browser.fill("absence_days", "3")
        for signal in ("conflict_with_supervisor", "missed_shift"):
            browser.find(f"#signaal-{signal}").click()
        browser.submit()
        assert "De check-in is opgeslagen" in browser.text
    assert "Loopt risico" in browser.text
    assert browser.finds("svg.werkbrug-chart")
    browser.screenshot("placement")

    browser.open("/")
    browser.wait_for(lambda: "Plaatsing loopt risico" in browser.text, 60, "at-risk alert on Vandaag", reload=True)
    browser.check_accessibility()
    browser.screenshot("today")
    alert = next(a for a in browser.finds(".werkbrug-alert--open") if "Plaatsing loopt risico" in a.text)
    alert.find_element("css selector", "button").click()
    browser.wait_for(lambda: "Gezien op" in browser.text, 10, "acknowledgement")
    browser.check_accessibility()
    assert any(
        a["acknowledged_at"] for a in stack.alerts(keys["jobcoach"], tenant=tenant) if a["type"] == "placement_at_risk"
    )

    browser.open("/caseload")
    browser.open("/channels")
    browser.fill("email", "niet-een-adres")
    browser.submit()
    assert "Vul een geldig e-mailadres in" in browser.text
    browser.open("/introductions")

    browser.press(browser.find(".werkbrug-signout button"))
    assert browser.heading == "Je bent uitgelogd"
    browser.open("/")
    assert browser.heading == "Inloggen"


def test_in_a_region_that_requires_if_match_an_employer_edits_and_a_form_overtaken_meanwhile_saves_nothing(
    stack, workspace, region, browser
):
    tenant, keys, people = region
    set_tenant_settings(stack, tenant, require_if_match="true")
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    url = f"{stack.url('vacancy')}/v1/tenants/{tenant}/vacancies/{vacancy_id}"

    browser.sign_in(people["employer"], PASSWORD)
    browser.open(f"/vacancies/{vacancy_id}")
    browser.fill("positions", "3")
    browser.submit()
    assert "De wijzigingen zijn opgeslagen" in browser.text
    assert requests.get(url, headers=bearer(keys["employer"]), timeout=10).json()["positions"] == 3

    # Meanwhile the region's operator changes the vacancy through the API, under the tag it read.
    read = requests.get(url, headers=bearer(keys["operator"]), timeout=10)
    changed = requests.patch(
        url, json={"hours_max": 30}, headers={**bearer(keys["operator"]), "If-Match": read.headers["ETag"]}, timeout=10
    )
    assert changed.status_code == 200, changed.text

    browser.fill("title", "Hovenier")
    browser.submit()
    assert "Iemand anders heeft dit net veranderd" in browser.find("#foutmeldingen").text
    assert browser.find('[name="title"]').get_attribute("value") == "Hovenier"
    stored = requests.get(url, headers=bearer(keys["employer"]), timeout=10).json()
    assert (stored["title"], stored["hours_max"]) == (GREEN_VACANCY["title"], 30)

    # Saving once more, after the notice, is a knowing choice: the form as typed is stored.
    browser.submit()
    assert "De wijzigingen zijn opgeslagen" in browser.text
    assert requests.get(url, headers=bearer(keys["employer"]), timeout=10).json()["title"] == "Hovenier"


def test_a_council_member_is_refused_the_caseload(workspace, region, browser):
    _tenant, _keys, people = region
    browser.sign_in(people["council"], PASSWORD)
    browser.open("/caseload")
    assert browser.heading == "Geen toegang"
    browser.open("/insights")
    # The matching API refuses councils the insights today; the page then says so, never a stack trace.
    assert browser.heading in ("Geen toegang", f"Inzicht in regio {_tenant}")


def test_operators_and_employers_see_their_pages(stack, workspace, region, browser):
    tenant, _keys, people = region
    browser.sign_in(people["operator"], PASSWORD)
    assert browser.heading == f"Regio {tenant}"
    browser.open("/insights")
    assert browser.heading == f"Inzicht in regio {tenant}"
    browser.screenshot("insights")
    browser.press(browser.find(".werkbrug-signout button"))

    browser.sign_in(people["employer"], PASSWORD)
    assert browser.heading == "Mijn vacatures"
    browser.open("/vacancies/new")
    browser.fill("title", "Medewerker groenonderhoud")
    browser.fill("hours_min", "24")
    browser.fill("hours_max", "16")
    browser.fill("location.postcode", "5911")
    browser.submit()
    assert "minstens zo veel zijn als het minimum" in browser.text
    browser.fill("hours_min", "16")
    browser.fill("hours_max", "24")
    browser.submit()
    assert "De vacature is geplaatst" in browser.text
    browser.screenshot("vacancy")
    browser.open("/vacancies")
    browser.screenshot("vacancies")


def _sign_out(browser: Browser) -> None:
    browser.press(browser.find(".werkbrug-signout button"))
    assert browser.heading == "Je bent uitgelogd"


def test_an_operator_hands_a_candidate_over_and_the_new_jobcoach_sees_them(stack, workspace, region, browser):
    tenant, keys, people = region
    newcomer_id = f"jc-{uuid.uuid4().hex[:6]}"
    newcomer = f"nieuw-{uuid.uuid4().hex[:6]}@{tenant}.test"
    stack.registry.create_person(tenant, "jobcoach", newcomer_id, newcomer, PASSWORD)
    set_tenant_settings(stack, tenant, contact_days=21)  # the caseload page says what matching answers
    elsewhere, _ = stack.new_tenant()
    stranger_id, stranger = f"jc-{uuid.uuid4().hex[:6]}", f"elders-{uuid.uuid4().hex[:6]}@{elsewhere}.test"
    stack.registry.create_person(elsewhere, "jobcoach", stranger_id, stranger, PASSWORD)
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])

    browser.sign_in(people["operator"], PASSWORD)
    assert browser.heading == f"Regio {tenant}"
    # The load per jobcoach comes from matching, which hears of the candidate through an event.
    browser.wait_for(lambda: keys["jobcoach_id"] in browser.text, 60, "the jobcoach's load", reload=True)
    browser.check_accessibility()

    def coaches() -> Select:
        return Select(browser.find('select[name="jobcoach_id"]'))

    # The region's jobcoaches to choose from: the newcomer by account (no candidates yet), the candidate's
    # jobcoach by account and load; never another region's, neither by id nor by e-mail.
    offered = {option.get_attribute("value"): option.text for option in coaches().options}
    assert offered[newcomer_id] == f"{newcomer_id} ({newcomer}), geen kandidaten"
    assert offered[keys["jobcoach_id"]] == f"{keys['jobcoach_id']} ({people['jobcoach']}), 1 kandidaat"
    assert stranger_id not in offered and stranger not in browser.text
    assert browser.find('label[for="veld-jobcoach_id"]').text == "Nieuwe jobcoach"

    Select(browser.find('[name="candidate_id"]')).select_by_value(candidate_id)
    coaches().select_by_value(keys["jobcoach_id"])  # the candidate's own jobcoach: the API says no
    browser.submit()
    assert "Deze kandidaat hoort al bij deze jobcoach" in browser.find(".werkbrug-field--invalid").text
    assert Select(browser.find('[name="candidate_id"]')).first_selected_option.get_attribute("value") == candidate_id
    kept = coaches().first_selected_option
    assert kept.get_attribute("value") == keys["jobcoach_id"]
    assert kept.text.endswith("nu de jobcoach van deze kandidaat"), "with the candidate chosen, theirs is marked"
    browser.check_accessibility()

    coaches().select_by_value(newcomer_id)
    browser.submit()
    assert f"overgedragen aan jobcoach {newcomer_id}" in browser.text
    browser.screenshot("region")
    browser.open(f"/caseload?jobcoach_id={newcomer_id}")
    assert "Tulp" in browser.text
    _sign_out(browser)

    browser.sign_in(newcomer, PASSWORD)
    browser.open("/caseload")
    assert browser.heading == "Mijn kandidaten"
    assert any("Tulp" in row.text for row in browser.finds(".werkbrug-caseload tbody tr"))
    assert "Uit beeld betekent: 21 dagen of langer geen contact" in browser.text
    # Matching catches up through the candidate's event: then the status chip replaces "updating".
    browser.wait_for(
        lambda: (
            "Nog geen match" in browser.find(".werkbrug-caseload tbody").text
            or "Match voorgesteld" in browser.find(".werkbrug-caseload tbody").text
        ),
        60,
        "the candidate's status from matching",
        reload=True,
    )
    browser.check_accessibility()
    browser.open("/caseload?sort=name&order=desc")
    assert browser.find('th[aria-sort="descending"]').text.startswith("Kandidaat")
    browser.screenshot("caseload")
    _sign_out(browser)

    former = _signed_in(workspace.url, people["jobcoach"])
    response = former.get(f"{workspace.url}/candidates/{candidate_id}", timeout=10)
    assert response.status_code == 404 and "Niet gevonden" in response.text
    assert "Tulp" not in former.get(f"{workspace.url}/caseload", timeout=10).text


def test_an_employers_interest_accepted_by_the_jobcoach_shows_the_employer_how_to_reach_them(
    stack, workspace, region, browser
):
    tenant, keys, people = region
    work_email = f"{keys['jobcoach_id']}@werk.example.org"
    assert put_channels(stack, tenant, keys, {"email": work_email}).status_code == 200
    stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])

    browser.sign_in(people["employer"], PASSWORD)
    browser.open(f"/vacancies/{vacancy_id}")
    browser.wait_for(lambda: "Interesse tonen" in browser.text, 60, "an anonymous match", reload=True)
    browser.check_accessibility()
    browser.press(browser.find('form[action$="/interest"] button'))
    assert "Uw interesse is doorgegeven" in browser.text
    assert "Wacht op antwoord" in browser.find("#kennismakingen").find_element("xpath", "..").text
    _sign_out(browser)

    browser.sign_in(people["jobcoach"], PASSWORD)
    browser.wait_for(lambda: "Een werkgever wil kennismaken" in browser.text, 60, "the interest alert", reload=True)
    browser.check_accessibility()
    browser.open(browser.find('.werkbrug-alert a[href^="/introductions"]').get_attribute("pathname"))
    assert browser.heading == "Kennismakingen"
    assert "Wacht op antwoord" in browser.text
    browser.screenshot("introductions")
    browser.press(browser.find('form[action$="/accept"] button'))
    assert "je kandidaat wil kennismaken" in browser.text
    assert not browser.finds('form[action$="/accept"]'), "answered once"
    _sign_out(browser)

    browser.sign_in(people["employer"], PASSWORD)
    browser.open("/introductions")
    # The jobcoach's work e-mail reaches matching as an event of its own.
    browser.wait_for(lambda: work_email in browser.text, 60, "the jobcoach's work e-mail", reload=True)
    browser.check_accessibility()
    assert "Kandidaat wil kennismaken" in browser.text
    browser.open(f"/vacancies/{vacancy_id}")
    assert f"Mail de jobcoach: {work_email}" in browser.text
    assert "Tulp" not in browser.text, "the employer never learns who the candidate is"


def test_a_jobcoach_may_not_hand_over_and_an_employer_may_not_answer(workspace, region):
    _tenant, _keys, people = region
    jobcoach = _signed_in(workspace.url, people["jobcoach"])
    token = _csrf(jobcoach, f"{workspace.url}/caseload")
    response = jobcoach.post(f"{workspace.url}/region/handover", data={"csrf_token": token, "candidate_id": "x"})
    assert response.status_code == 403 and "Geen toegang" in response.text
    employer = _signed_in(workspace.url, people["employer"])
    token = _csrf(employer, f"{workspace.url}/introductions")
    missing = uuid.uuid4().hex
    response = employer.post(f"{workspace.url}/introductions/{missing}/accept", data={"csrf_token": token})
    assert response.status_code == 403 and "Traceback" not in response.text
    assert employer.get(f"{workspace.url}/region", timeout=10).status_code == 403


def _csrf(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', session.get(url, timeout=10).text).group(1)


def _signed_in(url: str, email: str) -> requests.Session:
    session = requests.Session()
    token = _csrf(session, f"{url}/sign-in")
    response = session.post(
        f"{url}/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token}, allow_redirects=False
    )
    assert response.status_code == 302, response.text
    return session


def test_forms_without_a_csrf_token_are_refused(workspace, region):
    _tenant, _keys, people = region
    session = _signed_in(workspace.url, people["jobcoach"])
    response = session.post(f"{workspace.url}/candidates/new", data={"display_name": "Zonder token"})
    assert response.status_code == 400
    assert "Dit verzoek klopt niet" in response.text
    assert session.post(f"{workspace.url}/sign-out", data={}).status_code == 400


def test_the_session_cookie_is_http_only_and_same_site_and_holds_no_api_key(workspace, region):
    _tenant, _keys, people = region
    session = requests.Session()
    token = _csrf(session, f"{workspace.url}/sign-in")
    response = session.post(
        f"{workspace.url}/sign-in",
        data={"email": people["jobcoach"], "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    cookie = response.headers["Set-Cookie"]
    assert "werkbrug_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "wbk_" not in cookie and "wbk_" not in session.get(f"{workspace.url}/", timeout=10).text


def test_another_jobcoachs_or_regions_candidate_is_the_404_page(stack, workspace, region):
    tenant, _keys, people = region
    colleague = f"jc-{uuid.uuid4().hex[:6]}"
    theirs = stack.post_candidate(GARDENER, tenant=tenant, key=stack.registry.create_key(tenant, "jobcoach", colleague))
    other_region = stack.post_candidate(GARDENER)  # the stack's own region and jobcoach
    session = _signed_in(workspace.url, people["jobcoach"])
    for candidate_id in (theirs, other_region):
        response = session.get(f"{workspace.url}/candidates/{candidate_id}", timeout=10)
        assert response.status_code == 404
        assert "Niet gevonden" in response.text and "Traceback" not in response.text


def test_sign_in_is_throttled_after_repeated_wrong_passwords(workspace, region):
    _tenant, _keys, people = region
    session = requests.Session()
    url = f"{workspace.url}/sign-in"
    for _ in range(5):
        response = session.post(
            url, data={"email": people["employer"], "password": "fout", "csrf_token": _csrf(session, url)}
        )
        assert response.status_code == 200 and "klopt niet" in response.text
    # Now even the right password waits: the account is paused, whoever is guessing.
    response = session.post(
        url, data={"email": people["employer"], "password": PASSWORD, "csrf_token": _csrf(session, url)}
    )
    assert response.status_code == 429
    assert "Te veel pogingen" in response.text and int(response.headers["Retry-After"]) > 0
    # An unknown address answers exactly like a known one with a wrong password.
    unknown = session.post(
        url,
        data={"email": f"nobody-{uuid.uuid4().hex[:6]}@x.test", "password": "fout", "csrf_token": _csrf(session, url)},
    )
    assert unknown.status_code == 200 and "Het e-mailadres of het wachtwoord klopt niet." in unknown.text


def test_signing_out_revokes_the_sessions_api_key(stack, workspace, region):
    import sqlalchemy as sa

    from shared.registry import api_keys

    tenant, _keys, people = region
    session = _signed_in(workspace.url, people["jobcoach"])
    assert session.get(f"{workspace.url}/", timeout=10).status_code == 200

    def session_keys():
        with stack.registry.db.session() as db:
            return db.execute(
                sa.select(api_keys.c.revoked_at, api_keys.c.expires_at).where(
                    api_keys.c.tenant == tenant, api_keys.c.label == "workspace-session"
                )
            ).all()

    assert [row.revoked_at for row in session_keys()] == [None]
    assert all(row.expires_at is not None for row in session_keys())
    session.post(f"{workspace.url}/sign-out", data={"csrf_token": _csrf(session, f"{workspace.url}/sign-out")})
    assert all(row.revoked_at is not None for row in session_keys())
    assert session.get(f"{workspace.url}/", allow_redirects=False, timeout=10).status_code == 302
