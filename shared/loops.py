"""The one shape of a background loop: call a step until asked to stop, wait between calls, survive errors.

Every relay, scheduler and poller in the workers is a :class:`WorkerLoop`; those that do a unit of work now
and then are built with :func:`periodic`, so that stopping, waiting and retrying are written once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.health import PROCESS_HEALTH, ProcessHealth

log = logging.getLogger(__name__)

# Runs until the event is set; whatever it returns (a warm-up's count, say) is of no interest to the worker.
Loop = Callable[[threading.Event], object]
# A step returns True when more work is waiting, so that the loop calls it again without waiting.
Step = Callable[[], bool | int | None]


@dataclass(frozen=True)
class WorkerLoop:
    name: str
    run: Loop


def periodic(
    name: str,
    step: Step,
    every_s: float,
    *,
    retry_s: float = 1.0,
    max_retry_s: float | None = None,
    on_error: Callable[[int], None] | None = None,
    health: ProcessHealth = PROCESS_HEALTH,
) -> WorkerLoop:
    """A loop calling ``step`` every ``every_s`` seconds until stopped.

    A step that raises is retried after ``retry_s``, doubling up to ``max_retry_s`` while it keeps failing:
    the usual cause is the broker or the database being away, which no amount of logging fixes, so the
    loop waits it out and never dies of it. ``on_error`` hears how many failures came in a row. Every pass,
    failed or not, beats the loop's heart in ``health``: only a step that never returns stops it.
    """
    ceiling = retry_s if max_retry_s is None else max_retry_s

    def run(stop: threading.Event) -> None:
        with health.watching(name, max(every_s, ceiling)) as beat:
            _run(stop, beat)

    def _run(stop: threading.Event, beat: Callable[[], None]) -> None:
        delay, failures = retry_s, 0
        while not stop.is_set():
            beat()
            try:
                more = step()
            except Exception as exc:
                failures += 1
                log.warning("loop step failed; retrying", extra={"ctx": {"reason": name, "error": type(exc).__name__}})
                if on_error is not None:
                    # A remedy that fails too (a client that will not close) must not end the loop it serves.
                    try:
                        on_error(failures)
                    except Exception as remedy_error:
                        log.warning(
                            "loop remedy failed", extra={"ctx": {"reason": name, "error": type(remedy_error).__name__}}
                        )
                stop.wait(delay)
                delay = min(delay * 2, ceiling)
                continue
            delay, failures = retry_s, 0
            if not more:
                stop.wait(every_s)

    return WorkerLoop(name, run)


class Every:
    """Housekeeping inside a loop (purges, forgetting old ids): ``due()`` is true once per ``seconds``."""

    def __init__(self, seconds: float, now: Callable[[], float] | None = None) -> None:
        self.seconds = seconds
        self._now = now or time.monotonic
        self._last: float | None = None

    def due(self) -> bool:
        now = self._now()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True
