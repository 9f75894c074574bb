"""Nobody out of sight: a pass of the worker's scheduler over every caseload of every region.

A candidate with no contact for the region's ``contact_days`` is reported once per gap (the gap is named
by the contact it started from, so a new contact starts a new episode); a jobcoach whose caseload passes
the region's ``caseload_limit`` is reported once, and again only after it fell back to the limit or
under. Both are conditional updates, so any number of worker replicas may sweep at once and only the one
whose update took emits the event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date

from services.matching import metrics
from services.matching.caseload import store
from services.matching.outbox import emit
from services.matching.settings import MatchingSettings
from shared import tracing
from shared.db import Database
from shared.events import EventType


def sweep(db: Database, settings_of: Callable[[str], MatchingSettings], today: date) -> int:
    """Report who is out of sight and who is over the limit, and set the caseload gauge; how many events."""
    with db.session() as session:
        tenants = store.tenants(session)
    emitted = 0
    for tenant in tenants:
        settings = settings_of(tenant)
        with db.session() as session:
            rows = store.rows(session, tenant)
            known = store.jobcoaches_with_limit_state(session, tenant)
        for row in rows:
            if (today - row["last_contact"]).days >= settings.contact_days and row["out_of_sight_since"] != row[
                "last_contact"
            ]:
                with tracing.scheduled("out of sight"), db.session() as session:
                    emitted += _out_of_sight(session, tenant, row, settings.contact_days)
        loads = Counter(row["jobcoach_id"] for row in rows)
        for jobcoach_id in sorted(set(loads) | set(known)):
            load = loads.get(jobcoach_id, 0)
            metrics.CASELOAD_CANDIDATES.labels(tenant, jobcoach_id).set(load)
            if load > settings.caseload_limit:
                with tracing.scheduled("caseload over limit"), db.session() as session:
                    episode = store.enter_over_limit(session, tenant, jobcoach_id)
                    if episode is not None:
                        data = {
                            "jobcoach_id": jobcoach_id,
                            "caseload": load,
                            "caseload_limit": settings.caseload_limit,
                            "episode": episode,
                        }
                        emit(session, EventType.CASELOAD_OVER_LIMIT, tenant=tenant, subject=jobcoach_id, data=data)
                        emitted += 1
            else:
                with db.session() as session:
                    store.leave_over_limit(session, tenant, jobcoach_id)
    return emitted


def _out_of_sight(session, tenant: str, row: dict, contact_days: int) -> int:
    episode = store.mark_out_of_sight(session, tenant, row["candidate_id"], row["last_contact"])
    if episode is None:
        return 0
    data = {
        "candidate_id": row["candidate_id"],
        "jobcoach_id": row["jobcoach_id"],
        "last_contact": row["last_contact"],
        "contact_days": contact_days,
        "episode": episode,
    }
    emit(session, EventType.CANDIDATE_OUT_OF_SIGHT, tenant=tenant, subject=row["candidate_id"], data=data)
    return 1
