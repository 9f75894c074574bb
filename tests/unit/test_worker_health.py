"""A worker's liveness and readiness: heartbeats of its loops, conditions its loops set."""

from __future__ import annotations

import json
import threading

from werkzeug.test import Client

from shared.health import ProcessHealth
from shared.loops import periodic
from shared.worker import health_app


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_loop_that_stops_coming_round_is_stalled_after_its_wait_and_the_allowance() -> None:
    clock = Ticks()
    health = ProcessHealth(stall_s=30.0, clock=clock)
    with health.watching("scheduler", wait_s=60.0) as beat:
        clock.now = 89.0
        assert health.stalled() == []
        clock.now = 91.0
        assert health.stalled() == ["scheduler"]
        beat()
        assert health.stalled() == []
    clock.now = 1000.0
    assert health.stalled() == [], "a loop that has ended is no longer watched"


def test_a_periodic_loop_beats_on_every_pass_even_when_its_step_fails() -> None:
    clock = Ticks()
    health = ProcessHealth(stall_s=5.0, clock=clock)
    stop = threading.Event()
    seen_stalled: list[list[str]] = []

    def step() -> bool:
        # Each pass moves the clock past the allowance; only the beat at the start of the next pass would
        # bring the loop back to life, so a stalled reading here means the beat came before this step.
        seen_stalled.append(health.stalled())
        clock.now += 100.0
        if len(seen_stalled) == 3:
            stop.set()
        if len(seen_stalled) == 2:
            raise RuntimeError("database away")
        return True

    periodic("relay", step, every_s=0.0, retry_s=0.0, health=health).run(stop)
    assert seen_stalled == [[], [], []]


def test_readiness_waits_for_every_condition_and_ends_when_the_process_stops() -> None:
    health = ProcessHealth()
    stopping = threading.Event()
    holding = health.condition("consumer holds its partitions")
    client = Client(health_app(health, stopping))

    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    assert json.loads(waiting.data)["waiting_for"] == ["consumer holds its partitions"]
    holding(True)
    assert client.get("/readyz").status_code == 200
    stopping.set()
    assert json.loads(client.get("/readyz").data)["waiting_for"] == ["stopping"]


def test_liveness_names_the_stalled_loop_and_metrics_are_served_beside_it() -> None:
    clock = Ticks()
    health = ProcessHealth(stall_s=1.0, clock=clock)
    client = Client(health_app(health, threading.Event()))
    with health.watching("consumer", wait_s=0.0):
        assert client.get("/livez").status_code == 200
        clock.now = 5.0
        stalled = client.get("/livez")
        assert stalled.status_code == 503
        assert json.loads(stalled.data)["stalled"] == ["consumer"]
    assert b"python_info" in client.get("/metrics").data
