"""The workspace's pure logic: API errors into Dutch next to the right field, forms into API bodies, the
inbox order, and the server-drawn charts."""

from __future__ import annotations

from services.workspace import charts, domain, sessions


def test_nested_api_errors_land_on_the_field_they_belong_to_in_dutch():
    errors = {
        "location": {"postcode": ["String does not match expected pattern."]},
        "hours_max": ["must be at least hours_min"],
        "support_needs": {"0": {"level": ["Must be one of: essential, preferred."]}},
        "display_name": ["Missing data for required field."],
        "mystery": ["Something else."],
    }
    placed = domain.field_errors(errors, domain.CANDIDATE_FIELDS)
    assert placed["location.postcode"] == ["Vul de 4 cijfers van de postcode in, bijvoorbeeld 5912."]
    assert placed["hours_max"] == ["Dit moet minstens zo veel zijn als het minimum aantal uren."]
    assert placed["support_needs"] == ["Kies een van de mogelijkheden."]
    assert placed["display_name"] == ["Dit veld is verplicht."]
    assert placed[domain.FORM_ERROR] == ["Something else."]


def test_range_messages_keep_their_numbers():
    assert domain.dutch("Must be greater than or equal to 1 and less than or equal to 5.") == (
        "Kies een getal van 1 tot en met 5."
    )
    assert domain.dutch("An unknown message stays as it is.") == "An unknown message stays as it is."


def test_a_body_level_error_list_goes_to_the_form():
    assert domain.flatten_errors(["whole body wrong"]) == {domain.FORM_ERROR: ["whole body wrong"]}


def test_the_candidate_form_becomes_the_api_body_and_back():
    form = {
        "display_name": " Tulp ",
        "talents": "planten verzorgen\nbuiten werken\n",
        "need.quiet_workplace": "essential",
        "need.work_buddy": "preferred",
        "need.travel_support": "",
        "hours_min": "12",
        "hours_max": "24,0",
        "ladder_step": "3",
        "location.postcode": "5912",
        "location.max_travel_km": "20",
        "consent.matching": "on",
    }
    payload = domain.candidate_payload(form)
    assert payload["display_name"] == "Tulp"
    assert payload["talents"] == ["planten verzorgen", "buiten werken"]
    assert payload["support_needs"] == [
        {"code": "work_buddy", "level": "preferred"},
        {"code": "quiet_workplace", "level": "essential"},
    ]
    assert (payload["hours_min"], payload["hours_max"], payload["ladder_step"]) == (12, 24, 3)
    assert payload["location"] == {"postcode": "5912", "max_travel_km": 20}
    assert payload["consent"] == {"matching": True, "share_with_employers": False}
    back = domain.candidate_form({**payload, "display_name": "Tulp"})
    assert back["need.quiet_workplace"] == "essential" and back["hours_max"] == "24"


def test_text_in_a_number_field_goes_to_the_api_as_typed_so_that_it_names_the_field():
    payload = domain.candidate_payload({"hours_min": "twaalf", "hours_max": ""})
    assert payload["hours_min"] == "twaalf"
    assert "hours_max" not in payload


def test_the_inbox_shows_unacknowledged_alerts_first_then_newest_first():
    alerts = [
        {"id": "old-open", "created_at": "2026-11-01T08:00:00Z", "acknowledged_at": None},
        {"id": "new-seen", "created_at": "2026-11-03T08:00:00Z", "acknowledged_at": "2026-11-03T09:00:00Z"},
        {"id": "new-open", "created_at": "2026-11-02T08:00:00Z", "acknowledged_at": None},
    ]
    assert [a["id"] for a in domain.inbox_order(alerts)] == ["new-open", "old-open", "new-seen"]


def test_a_match_explanation_reads_as_plain_dutch():
    summary = domain.match_summary(
        {
            "talents_matched": [{"talent": "planten verzorgen", "matched": "groenonderhoud"}],
            "supports": {
                "essential_met": ["quiet_workplace"],
                "preferred_met": [],
                "preferred_missing": ["work_buddy"],
            },
            "hours": {"overlap": [16, 24]},
            "ladder": {"from": 3, "to": 4},
            "distance_km": 1.25,
        }
    )
    assert summary["essential_met"] == ["Rustige werkplek"]
    assert summary["preferred_missing"] == ["Werkmaatje"]
    assert summary["hours"] == "16 tot 24 uur per week past bij allebei"
    assert summary["ladder"] == "Van trede 3 naar trede 4"
    assert summary["distance"] in ("1,2 km", "1,3 km")


def test_the_line_chart_is_an_accessible_svg_with_escaped_labels_and_gaps():
    svg = str(
        charts.line_chart(
            "wb",
            "Welbevinden <test>",
            [charts.Point("01-11", 4), charts.Point("08-11", None), charts.Point("15-11", 1), charts.Point("22-11", 2)],
            low=1,
            high=5,
            reference=3,
        )
    )
    assert svg.startswith("<svg") and 'role="img"' in svg and 'aria-labelledby="wb-title wb-desc"' in svg
    assert "Welbevinden &lt;test&gt;" in svg and "<test>" not in svg
    assert svg.count('class="point"') == 3
    assert svg.count("<polyline") == 1  # the gap splits the line; a lone point draws no line
    assert 'class="reference"' in svg
    assert "08-11: geen" in svg


def test_the_bar_chart_marks_suppressed_cells_instead_of_drawing_them():
    svg = str(charts.bar_chart("b", "Per trede", [charts.Point("Trede 3", 20), charts.Point("Trede 4", None)]))
    assert svg.count('class="bar"') == 1
    assert 'class="suppressed"' in svg and "te klein om te tonen" in svg


def test_a_sealed_api_key_opens_only_with_the_sessions_token():
    sealed = sessions.seal("token-a", "wbk_secret-key")
    assert "wbk_" not in sealed
    assert sessions.unseal("token-a", sealed) == "wbk_secret-key"
    opened_wrongly = bytes(
        a ^ b for a, b in zip(bytes.fromhex(sealed), sessions._keystream("token-b", 14), strict=True)
    )
    assert opened_wrongly != b"wbk_secret-key"


def _caseload():
    candidates = [
        {"id": "c-anna", "display_name": "Anna", "jobcoach_id": "jc-1", "ladder_step": 3},
        {"id": "c-bram", "display_name": "bram", "jobcoach_id": "jc-2", "ladder_step": 4},
        {"id": "c-cees", "display_name": "Cees", "jobcoach_id": "jc-1", "ladder_step": 2},
        {"id": "c-dirk", "display_name": "Dirk", "jobcoach_id": "jc-2", "ladder_step": 2},
    ]
    entries = [
        {"candidate_id": "c-anna", "status": "placed", "days_since_contact": 3, "open_alerts": 0},
        {"candidate_id": "c-bram", "status": "unmatched", "days_since_contact": 45, "open_alerts": 1},
        {"candidate_id": "c-cees", "status": "at_risk", "days_since_contact": 1, "open_alerts": 2},
        # c-dirk was just handed over: matching has not caught up yet.
        {"candidate_id": "c-gone", "status": "placed", "days_since_contact": 0, "open_alerts": 0},
    ]
    return domain.caseload_rows(candidates, entries, contact_days=30)


def test_caseload_rows_follow_the_candidate_service_and_flag_who_is_out_of_sight():
    rows = {row["candidate_id"]: row for row in _caseload()}
    assert set(rows) == {"c-anna", "c-bram", "c-cees", "c-dirk"}, "no row for a candidate no longer theirs"
    assert rows["c-bram"]["chips"] == ["out_of_sight", "unmatched"]
    assert rows["c-cees"]["chips"] == ["at_risk"]
    assert rows["c-dirk"]["chips"] == [domain.UPDATING]
    assert domain.CHIP_LABELS["out_of_sight"] == "Uit beeld"
    entry = {"candidate_id": "c-bram", "status": "unmatched", "days_since_contact": 45, "open_alerts": 1}
    unknown = domain.caseload_rows([{"id": "c-bram", "jobcoach_id": "jc-2"}], [entry], contact_days=None)
    assert unknown[0]["chips"] == ["unmatched"], "without the region's contact_days nobody is called out of sight"


def test_the_caseload_sorts_by_query_parameters_most_urgent_first_by_default():
    rows = _caseload()
    column, descending = domain.caseload_sort(None, None)
    assert [r["name"] for r in domain.sort_caseload(rows, column, descending)] == ["Cees", "bram", "Anna", "Dirk"]
    column, descending = domain.caseload_sort("name", None)
    assert [r["name"] for r in domain.sort_caseload(rows, column, descending)] == ["Anna", "bram", "Cees", "Dirk"]
    column, descending = domain.caseload_sort("contact", None)
    assert descending and domain.sort_caseload(rows, column, descending)[0]["name"] == "bram"
    assert domain.caseload_sort("contact", "asc") == ("contact", False)
    assert domain.caseload_sort("drop table", "sideways") == ("status", False)


def test_region_loads_add_the_out_of_sight_count_per_jobcoach():
    loads = [
        {"jobcoach_id": "jc-1", "candidates": 2, "at_risk": 1, "checkin_overdue": 0},
        {"jobcoach_id": "jc-2", "candidates": 1, "at_risk": 0, "checkin_overdue": 0},
    ]
    counted = {load["jobcoach_id"]: load["out_of_sight"] for load in domain.region_loads(loads, _caseload())}
    assert counted == {"jc-1": 0, "jc-2": 1}


def test_handover_errors_and_new_alert_types_read_in_plain_dutch():
    placed = domain.field_errors({"jobcoach_id": ["The candidate is already this jobcoach's."]}, domain.HANDOVER_FIELDS)
    assert placed == {"jobcoach_id": ["Deze kandidaat hoort al bij deze jobcoach."]}
    for code in ("out_of_sight", "employer_interest", "caseload_over_limit", "checkin_overdue"):
        assert domain.ALERT_TYPES[code] and domain.ALERT_TYPES[code] != code


def test_handover_choices_join_the_regions_accounts_with_whoever_has_candidates_and_mark_the_current_one():
    accounts = [("jc-3", "eva@example.nl"), ("jc-1", "anna@example.nl"), ("jc-1", "a.de.vries@example.nl")]
    choices = domain.handover_choices(accounts, _caseload(), current="jc-1")
    assert [choice["jobcoach_id"] for choice in choices] == ["jc-1", "jc-2", "jc-3"]
    by_id = {choice["jobcoach_id"]: choice for choice in choices}
    assert by_id["jc-1"]["label"] == (
        "jc-1 (a.de.vries@example.nl, anna@example.nl), 2 kandidaten, nu de jobcoach van deze kandidaat"
    )
    assert by_id["jc-2"]["label"] == "jc-2, 2 kandidaten", "with candidates but no account: still a choice"
    assert by_id["jc-3"]["label"] == "jc-3 (eva@example.nl), geen kandidaten"
    assert [choice["current"] for choice in choices] == [True, False, False]
    assert not any(choice["current"] for choice in domain.handover_choices(accounts, _caseload()))
    assert domain.handover_choices([], [{"jobcoach_id": "jc-9"}])[0]["label"] == "jc-9, 1 kandidaat"


def test_a_form_sends_back_only_a_well_formed_entity_tag_as_if_match():
    assert domain.form_etag({domain.ETAG_FIELD: '"3f2a9c"'}) == '"3f2a9c"'
    assert domain.form_etag({domain.ETAG_FIELD: ' "3f2a9c" '}) == '"3f2a9c"'
    # No tag, an empty one, a weak or a malformed one: nothing is sent (the API would answer 400 to these).
    for shown in ({}, {domain.ETAG_FIELD: ""}, {domain.ETAG_FIELD: 'W/"3f2a9c"'}, {domain.ETAG_FIELD: "3f2a9c"}):
        assert domain.form_etag(shown) is None
    assert domain.form_etag({domain.ETAG_FIELD: '"a" , "b"'}) is None
