"""A candidate's place in their jobcoach's caseload, from what matching knows: pure, no I/O.

Precedence, first that holds wins:

1. ``checkin_overdue``: an active placement whose current gap in check-ins has been reported overdue;
2. ``at_risk``: an active placement inside an at-risk episode;
3. ``placed``: an active placement;
4. ``proposed``: a match was proposed after the last placement ended (or with no placement ever);
5. ``ended``: a placement ended and nothing was proposed since;
6. ``unmatched``: none of the above.

The worse state of a placement comes first because it is what the jobcoach must act on today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

STATUSES = ("unmatched", "proposed", "placed", "at_risk", "checkin_overdue", "ended")


@dataclass(frozen=True)
class PlacementFacts:
    status: str
    at_risk: bool
    overdue: bool
    end_date: date | None


def status_of(placements: Iterable[PlacementFacts], last_proposal: datetime | None) -> str:
    placements = list(placements)
    active = [p for p in placements if p.status == "active"]
    if any(p.overdue for p in active):
        return "checkin_overdue"
    if any(p.at_risk for p in active):
        return "at_risk"
    if active:
        return "placed"
    ended = [p.end_date for p in placements if p.end_date is not None]
    if last_proposal is not None and (not ended or last_proposal.date() > max(ended)):
        return "proposed"
    if placements:
        return "ended"
    return "unmatched"
