"""The caseload status precedence: what the jobcoach must act on today comes first."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.matching.caseload.status import PlacementFacts, status_of

ACTIVE = PlacementFacts("active", at_risk=False, overdue=False, end_date=None)
AT_RISK = PlacementFacts("active", at_risk=True, overdue=False, end_date=None)
OVERDUE = PlacementFacts("active", at_risk=True, overdue=True, end_date=None)
ENDED = PlacementFacts("ended", at_risk=False, overdue=False, end_date=date(2026, 5, 1))


def test_an_overdue_check_in_outranks_risk_and_risk_outranks_a_plain_placement():
    assert status_of([ACTIVE, OVERDUE], None) == "checkin_overdue"
    assert status_of([ACTIVE, AT_RISK], None) == "at_risk"
    assert status_of([ACTIVE, ENDED], datetime(2026, 6, 1, tzinfo=UTC)) == "placed"


def test_a_proposal_after_the_last_placement_ended_makes_the_candidate_proposed_again():
    assert status_of([ENDED], datetime(2026, 6, 1, tzinfo=UTC)) == "proposed"
    assert status_of([ENDED], datetime(2026, 4, 1, tzinfo=UTC)) == "ended"
    assert status_of([], datetime(2026, 4, 1, tzinfo=UTC)) == "proposed"


def test_nothing_known_is_unmatched():
    assert status_of([], None) == "unmatched"
