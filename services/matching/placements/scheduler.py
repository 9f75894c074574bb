"""The check-in-overdue scheduler: a loop in the matching worker that reports each gap in check-ins once,
and, once a day, drops what the ranking log keeps beyond its retention.

Whether a check-in is overdue depends only on the calendar day, so the loop scans when the day (on the
injected clock) changes, and besides every ``interval_s`` for placements that were overdue from the
moment they were registered. Any number of worker replicas may scan at once: reporting a gap is a
conditional update of the placement, and only the replica whose update took emits the event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy.orm import Session

from services.matching.caseload.sweep import sweep
from services.matching.config import RANKING_LOG_RETENTION_DAYS
from services.matching.outbox import emit
from services.matching.placements import store
from services.matching.placements.cadence import Cadence
from services.matching.placements.commands import local_today
from services.matching.ranking.commands import purge_ranking_log
from services.matching.settings import MatchingSettings
from shared import tracing
from shared.clock import Clock
from shared.db import Database
from shared.events import EventType
from shared.loops import WorkerLoop, periodic

log = logging.getLogger(__name__)

SettingsOf = Callable[[str], MatchingSettings]


def report_overdue(session: Session, tenant: str, placement_id: str, today: date, cadence: Cadence) -> bool:
    """Emit ``checkin_overdue`` for the placement's current gap unless it was reported; True if emitted."""
    placement = store.get_placement(session, tenant, placement_id, for_update=True)
    if placement is None or placement["status"] != "active":
        return False
    gap = cadence.overdue_gap(placement["start_date"], placement["last_checkin"], today)
    if gap is None:
        return False
    gap_start, due_since = gap
    episode = store.mark_overdue(session, tenant, placement_id, gap_start)
    if episode is None:
        return False
    emit(
        session,
        EventType.PLACEMENT_CHECKIN_OVERDUE,
        tenant=tenant,
        subject=placement_id,
        data={
            "candidate_id": placement["candidate_id"],
            "vacancy_id": placement["vacancy_id"],
            "jobcoach_id": placement["jobcoach_id"],
            "last_checkin": placement["last_checkin"],
            "due_since": due_since,
            "episode": episode,
            "cadence_days": cadence.interval(placement["start_date"], gap_start),
        },
    )
    store.log_alert(session, tenant, "checkin_overdue")
    return True


def scan(db: Database, settings_of: SettingsOf, today: date) -> int:
    """Report every placement whose check-in is overdue today and not reported yet; how many were."""
    with db.session() as session:
        tenants = store.tenants_with_active_placements(session)
    reported = 0
    for tenant in tenants:
        cadence = Cadence.from_settings(settings_of(tenant))
        shortest = min(cadence.early_days, cadence.later_days)
        with db.session() as session:
            candidates = store.possibly_overdue(session, tenant, today - timedelta(days=shortest))
        for placement_id in candidates:
            # One transaction per placement: a failure leaves the others reported and this one for later.
            with tracing.scheduled("check-in overdue"), db.session() as session:
                reported += report_overdue(session, tenant, placement_id, today, cadence)
    return reported


def scheduler_loop(
    db: Database,
    settings_of: SettingsOf,
    clock: Clock,
    *,
    interval_s: float = 60.0,
    tick_s: float = 1.0,
    ranking_log_kept: timedelta = timedelta(days=RANKING_LOG_RETENTION_DAYS),
) -> WorkerLoop:
    scanned_day: date | None = None
    scanned_at = 0.0

    def step() -> None:
        nonlocal scanned_day, scanned_at
        today = local_today(clock)
        if today != scanned_day or time.monotonic() - scanned_at >= interval_s:
            if today != scanned_day:
                # Retention counts in days, so once a day is enough; on the injected clock, like the scans.
                purged = purge_ranking_log(db, clock(), ranking_log_kept)
                if purged:
                    log.info("ranking log past its retention dropped", extra={"ctx": {"count": purged}})
            # A failing scan (the database away) half-did nothing; the loop retries it on its next tick.
            reported = scan(db, settings_of, today)
            reported += sweep(db, settings_of, today)
            scanned_day, scanned_at = today, time.monotonic()
            if reported:
                log.info(
                    "check-ins overdue, candidates out of sight or caseloads over the limit reported",
                    extra={"ctx": {"count": reported}},
                )

    return periodic("checkin-scheduler", step, every_s=tick_s, retry_s=tick_s)
