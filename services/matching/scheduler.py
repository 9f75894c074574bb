"""The check-in-overdue scheduler: a loop in the matching worker that reports each gap in check-ins once.

Whether a check-in is overdue depends only on the calendar day, so the loop scans when the day (on the
injected clock) changes, and besides every ``interval_s`` for placements that were overdue from the
moment they were registered. Any number of worker replicas may scan at once: reporting a gap is a
conditional update of the placement, and only the replica whose update took emits the event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta

from services.matching import placements
from services.matching import placements_store as pstore
from services.matching.cadence import Cadence
from services.matching.settings import MatchingSettings
from shared.db import Database
from shared.worker import WorkerLoop

log = logging.getLogger(__name__)

SettingsOf = Callable[[str], MatchingSettings]


def scan(db: Database, settings_of: SettingsOf, today: date) -> int:
    """Report every placement whose check-in is overdue today and not reported yet; how many were."""
    with db.session() as session:
        tenants = pstore.tenants_with_active_placements(session)
    reported = 0
    for tenant in tenants:
        cadence = Cadence.from_settings(settings_of(tenant))
        shortest = min(cadence.early_days, cadence.later_days)
        with db.session() as session:
            candidates = pstore.possibly_overdue(session, tenant, today - timedelta(days=shortest))
        for placement_id in candidates:
            # One transaction per placement: a failure leaves the others reported and this one for later.
            with db.session() as session:
                reported += placements.report_overdue(session, tenant, placement_id, today, cadence)
    return reported


def scheduler_loop(
    db: Database,
    settings_of: SettingsOf,
    clock: placements.Clock,
    *,
    interval_s: float = 60.0,
    tick_s: float = 1.0,
) -> WorkerLoop:
    def run(stop: threading.Event) -> None:
        scanned_day: date | None = None
        scanned_at = 0.0
        while not stop.is_set():
            today = placements.local_today(clock)
            if today != scanned_day or time.monotonic() - scanned_at >= interval_s:
                try:
                    reported = scan(db, settings_of, today)
                    scanned_day, scanned_at = today, time.monotonic()
                    if reported:
                        log.info("check-ins overdue reported", extra={"ctx": {"count": reported}})
                except Exception as exc:
                    # The database is away: nothing was half-done, so scan again on the next tick.
                    log.warning("overdue scan failed; retrying", extra={"ctx": {"error": type(exc).__name__}})
            stop.wait(tick_s)

    return WorkerLoop("checkin-scheduler", run)
