"""The small mechanisms every service shares: the periodic loop, the TTL cache, the fake clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.cache import TTLCache
from shared.clock import FakeClock
from shared.events import EVENT_TYPES, EventType
from shared.loops import Every, periodic


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(step, every_s: float = 0.0, **options) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=periodic("test", lambda: step(stop), every_s, **options).run, args=(stop,))
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the loop did not stop when asked"


def test_a_periodic_loop_survives_a_failing_step_and_tells_how_many_failed_in_a_row() -> None:
    calls: list[str] = []
    failures_seen: list[int] = []

    def step(stop: threading.Event) -> bool:
        calls.append("call")
        if len(calls) <= 2:
            raise RuntimeError("database away")
        stop.set()
        return False

    run_steps(step, retry_s=0.001, on_error=failures_seen.append)
    assert len(calls) == 3
    assert failures_seen == [1, 2]


def test_a_step_with_more_work_waiting_is_called_again_without_waiting() -> None:
    calls = 0

    def step(stop: threading.Event) -> bool:
        nonlocal calls
        calls += 1
        if calls == 50:
            stop.set()
        return True

    # A wait of an hour between steps would hang the test if the loop waited after a busy step.
    run_steps(step, every_s=3600)
    assert calls == 50


def test_every_is_due_at_first_and_then_once_per_period() -> None:
    ticks = Ticks()
    every = Every(10, now=ticks)
    assert every.due()
    assert not every.due()
    ticks.now = 9.9
    assert not every.due()
    ticks.now = 10.0
    assert every.due()


def test_the_ttl_cache_loads_once_per_time_to_live_and_forgets_on_request() -> None:
    ticks = Ticks()
    cache: TTLCache[str, int] = TTLCache(10, now=ticks)
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("a", load) == 1
    assert cache.get("a", load) == 1
    ticks.now = 10
    assert cache.get("a", load) == 2
    cache.invalidate("a")
    assert cache.get("a", load) == 3
    cache.invalidate()
    assert cache.get("a", load) == 4


def test_a_full_ttl_cache_starts_over_instead_of_growing() -> None:
    cache: TTLCache[int, int] = TTLCache(60, max_entries=3)
    for key in range(3):
        cache.get(key, lambda key=key: key)
    cache.get(99, lambda: 99)
    reloaded: list[int] = []
    cache.get(0, lambda: reloaded.append(0) or 0)
    assert reloaded == [0]


def test_the_fake_clock_stands_still_until_moved() -> None:
    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    clock = FakeClock(start)
    assert clock() == start
    assert clock.advance(hours=2) == start + timedelta(hours=2)
    clock.advance(timedelta(minutes=30), minutes=30)
    assert clock() == start + timedelta(hours=3)
    clock.set(start)
    assert clock() == start


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_constant_has_a_contract_and_equals_its_wire_name(event_type: EventType) -> None:
    assert event_type in EVENT_TYPES
    assert EVENT_TYPES[event_type].event_type == event_type
    assert event_type == event_type.value


def test_a_failing_remedy_does_not_end_the_loop() -> None:
    calls = 0

    def step(stop: threading.Event) -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("broker away")
        stop.set()
        return False

    def remedy(_failures: int) -> None:
        raise TimeoutError("the old client would not close")

    run_steps(step, retry_s=0.001, on_error=remedy)
    assert calls == 3
