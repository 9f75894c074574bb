"""The round-2 alert types in the notification domain: their Dutch texts, who reads them, which escalate,
and that the service knows exactly the types the event contracts name."""

from __future__ import annotations

from datetime import date

import pytest

from services.notification import domain, metrics
from shared import events


def test_the_service_holds_exactly_the_alert_types_the_event_contracts_name():
    assert set(domain.ALERT_TYPES) == set(events.ALERT_TYPES)
    assert set(domain.TYPE_LABELS) == set(events.ALERT_TYPES), "every type has a Dutch label for mail"


def test_operators_read_escalations_and_caseloads_and_jobcoaches_everything_else():
    assert set(domain.OPERATOR_ALERT_TYPES) == {
        "placement_at_risk_escalated",
        "checkin_overdue_escalated",
        "caseload_over_limit",
    }
    assert domain.ESCALATES_TO == {
        "placement_at_risk": "placement_at_risk_escalated",
        "checkin_overdue": "checkin_overdue_escalated",
    }


def test_out_of_sight_counts_the_days_since_the_last_contact_in_plain_dutch():
    assert domain.out_of_sight_message(date(2026, 10, 24), date(2026, 11, 23), 30) == (
        "Al 30 dagen geen contact met deze kandidaat (laatste contact 24-10-2026). Neem contact op."
    )
    # Raised late (a scheduler that was down): the real gap, not the region's limit.
    assert domain.out_of_sight_message(date(2026, 10, 1), date(2026, 11, 23), 30).startswith("Al 53 dagen ")
    # A clock behind the producer's never says fewer days than the limit that set the alert off.
    assert domain.out_of_sight_message(date(2026, 11, 20), date(2026, 11, 23), 30).startswith("Al 30 dagen ")


def test_employer_interest_names_the_vacancy_and_never_the_employer():
    message = domain.employer_interest_message("Medewerker  groenonderhoud\n")
    assert message == (
        "Een werkgever wil kennismaken met je kandidaat voor de vacature Medewerker groenonderhoud. "
        "Vraag je kandidaat wat die wil en geef antwoord."
    )
    assert domain.employer_interest_message(None).startswith(
        "Een werkgever wil kennismaken met je kandidaat voor een vacature."
    )
    assert domain.employer_interest_message("   ") == domain.employer_interest_message(None)


def test_an_endless_vacancy_title_is_cut_so_the_message_fits_its_column():
    message = domain.employer_interest_message("x" * 5000)
    assert len(message) <= 500
    assert "x" * (domain.TITLE_IN_MESSAGE - 1) + "…" in message


def test_the_caseload_message_names_the_jobcoach_the_count_and_the_limit():
    assert (
        domain.caseload_message("jc-7", 23, 20) == "Jobcoach jc-7 heeft 23 kandidaten. Dat is meer dan de grens van 20."
    )


@pytest.mark.parametrize(
    ("alert_type", "expected"),
    [
        ("placement_at_risk", "Een risicomelding is na 48 uur nog niet bevestigd door de jobcoach."),
        ("checkin_overdue", "Een melding over een te late check-in is na 48 uur nog niet bevestigd door de jobcoach."),
    ],
)
def test_an_escalation_says_what_was_left_unacknowledged(alert_type, expected):
    assert domain.escalation_message(48, alert_type) == expected


def test_the_alert_counter_starts_at_zero_for_every_type_new_ones_included():
    tenant = "regio-priming"
    metrics.prime_tenant_series([tenant])
    primed = {
        sample.labels["type"]: sample.value
        for metric in metrics.ALERTS_CREATED.collect()
        for sample in metric.samples
        if sample.labels.get("tenant") == tenant and sample.name.endswith("_total")
    }
    assert primed == dict.fromkeys(events.ALERT_TYPES, 0.0)
