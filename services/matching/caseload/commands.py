"""What the caseload API asks for: each candidate's status, last contact and open alerts, for their
jobcoach or the region's operator; and for operators every jobcoach's load."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from services.matching.caseload import store
from services.matching.caseload.status import PlacementFacts, status_of
from shared.db import Database


def entries(db: Database, tenant: str, today: date, *, jobcoach_id: str | None = None) -> list[dict]:
    """Every candidate of the caseload (one jobcoach's, or the region's), longest without contact first."""
    with db.session() as session:
        rows = store.rows(session, tenant, jobcoach_id)
        alerts = store.open_alert_counts(session, tenant)
        proposals = store.last_proposals(session, tenant)
        placements: dict[str, list[PlacementFacts]] = defaultdict(list)
        for row in store.placement_facts(session, tenant):
            placements[row.candidate_id].append(
                PlacementFacts(row.status, row.at_risk, bool(row.overdue), row.end_date)
            )
    return [
        {
            "candidate_id": row["candidate_id"],
            "jobcoach_id": row["jobcoach_id"],
            "status": status_of(placements.get(row["candidate_id"], []), proposals.get(row["candidate_id"])),
            "last_contact": row["last_contact"],
            "days_since_contact": max(0, (today - row["last_contact"]).days),
            "open_alerts": alerts.get(row["candidate_id"], 0),
        }
        for row in rows
    ]


def loads(items: list[dict]) -> list[dict]:
    """Each jobcoach's load: candidates, how many at risk and how many with a check-in overdue."""
    by_coach: dict[str, dict] = {}
    for item in items:
        load = by_coach.setdefault(
            item["jobcoach_id"],
            {"jobcoach_id": item["jobcoach_id"], "candidates": 0, "at_risk": 0, "checkin_overdue": 0},
        )
        load["candidates"] += 1
        if item["status"] in ("at_risk", "checkin_overdue"):
            load[item["status"]] += 1
    return [by_coach[coach] for coach in sorted(by_coach)]
