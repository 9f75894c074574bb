"""Time, injected: schedulers ask a clock instead of the system, so tests move the clock, not wait.

In production the clock is the system's. For end-to-end tests, ``WERKBRUG_CLOCK_FILE`` names a file
holding a number of seconds to add to the system time; every process that reads the same file moves
together when a test writes a new offset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from shared.db import utcnow

Clock = Callable[[], datetime]


def offset_file_clock(path: Path) -> Clock:
    def now() -> datetime:
        try:
            offset = float(path.read_text().strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return utcnow() + timedelta(seconds=offset)

    return now


def clock_from_env(env: Mapping[str, str] = os.environ) -> Clock:
    path = env.get("WERKBRUG_CLOCK_FILE")
    return offset_file_clock(Path(path)) if path else utcnow


def move_clock(path: Path, by: timedelta) -> None:
    """Test helper: push every process reading ``path`` forward by ``by``."""
    try:
        current = float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        current = 0.0
    path.write_text(str(current + by.total_seconds()))


class FakeClock:
    """A clock for tests: it stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by ``by`` or by timedelta keyword parts (``advance(hours=2)``)."""
        self.now += (by or timedelta()) + timedelta(**parts)
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now
