"""What a background process says about itself on ``/livez`` and ``/readyz``.

Live means every running loop has come round recently: each pass of a loop beats, whether its step worked
or failed, because a loop waiting out a database outage is alive and a restart would not help it, while a
loop stuck inside a call never beats again. Ready means every condition registered by the loops holds; the
consumer's is that it holds its partitions, so that "ready" means events flow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# A pass may take this long beyond the loop's own wait before the loop counts as hung: Kafka's
# max.poll.interval.ms, the longest a consumer may spend between polls before the group drops it.
DEFAULT_STALL_S = 300.0


@dataclass
class _Beat:
    name: str
    allowance_s: float
    last: float


class ProcessHealth:
    """Heartbeats of the running loops and the conditions for readiness, read by the health endpoint."""

    def __init__(self, stall_s: float = DEFAULT_STALL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self.clock = clock
        self._beats: dict[object, _Beat] = {}
        self._ready: dict[object, tuple[str, bool]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def watching(self, name: str, wait_s: float) -> Iterator[Callable[[], None]]:
        """Watch a loop while the block runs; the block calls what it is given once per pass."""
        token = object()
        allowance = wait_s + self.stall_s
        with self._lock:
            self._beats[token] = _Beat(name, allowance, self.clock())

        def beat() -> None:
            self._beats[token].last = self.clock()

        try:
            yield beat
        finally:
            with self._lock:
                self._beats.pop(token, None)

    def condition(self, name: str) -> Callable[[bool], None]:
        """A condition for readiness, false until set true through what is returned.

        Registered when the loop is built, before the process answers on its health port, so that there is
        no moment in which a worker that has not yet joined its group looks ready.
        """
        token = object()
        with self._lock:
            self._ready[token] = (name, False)

        def set_ready(ready: bool) -> None:
            with self._lock:
                self._ready[token] = (name, ready)

        return set_ready

    def stalled(self) -> list[str]:
        """The loops that have not come round within their wait plus the allowance."""
        now = self.clock()
        with self._lock:
            return sorted(beat.name for beat in self._beats.values() if now - beat.last > beat.allowance_s)

    def not_ready(self) -> list[str]:
        with self._lock:
            return sorted(name for name, ready in self._ready.values() if not ready)


# One per process, like the metrics registry: the loops beat into it and the worker's endpoint reads it.
PROCESS_HEALTH = ProcessHealth()
