"""One small time-to-live cache for what processes re-read from a database now and then (keys, settings,
models): a change made elsewhere reaches every replica within ``ttl_s`` without a message bus."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl_s: float, *, max_entries: int = 10_000, now: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._now = now
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value, or ``load()``'s when there is none younger than the time to live."""
        now = self._now()
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        # Loaded outside the lock: two threads may both load a missing key, which costs a query, while
        # holding the lock would make every reader wait for one slow database round trip.
        value = load()
        with self._lock:
            if len(self._entries) >= self.max_entries and key not in self._entries:
                # Unbounded keys (API keys tried by anyone) must not grow memory; a full cache starts over.
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def invalidate(self, key: K | None = None) -> None:
        """Forget one key, or everything."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
