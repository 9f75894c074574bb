"""When a placement's next check-in is due. Pure logic: dates in, dates out.

A jobcoach checks in every ``early_days`` days while the placement is young (its first
``early_period_days``), then every ``later_days`` days. The interval that applies to a gap is the one in
force on the day the gap began (the start date or the last check-in), so a gap that began in the early
period keeps its short interval even if it runs past the period's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Cadence:
    early_days: int = 14
    later_days: int = 28
    early_period_days: int = 91

    @classmethod
    def from_settings(cls, settings) -> Cadence:
        return cls(settings.checkin_days_early, settings.checkin_days_later, settings.early_period_days)

    def interval(self, start: date, gap_start: date) -> int:
        return self.early_days if (gap_start - start).days < self.early_period_days else self.later_days

    def due_date(self, start: date, last_checkin: date | None) -> date:
        """The day the next check-in is due: one interval after the last check-in, or after the start."""
        gap_start = max(start, last_checkin) if last_checkin else start
        return gap_start + timedelta(days=self.interval(start, gap_start))

    def overdue_gap(self, start: date, last_checkin: date | None, today: date) -> tuple[date, date] | None:
        """``(gap_start, due_since)`` when a whole interval has passed without a check-in, else None.

        The gap is named by the day it began, so that one gap is reported once however long it lasts.
        """
        gap_start = max(start, last_checkin) if last_checkin else start
        due = gap_start + timedelta(days=self.interval(start, gap_start))
        return (gap_start, due) if today >= due else None

    def missed_checkins(self, start: date, checkin_dates: Iterable[date], as_of: date) -> int:
        """Whole intervals that passed without a check-in, from the start up to ``as_of``.

        A check-in within one interval of the previous one (or of the start) missed nothing; a gap of two
        intervals missed one check-in, and so on. The open gap up to ``as_of`` counts its elapsed intervals.
        """
        days = sorted({day for day in checkin_dates if start <= day <= as_of})
        missed = 0
        previous = start
        for day in days:
            missed += max(0, (day - previous).days // self.interval(start, previous) - 1)
            previous = day
        missed += (as_of - previous).days // self.interval(start, previous)
        return missed
