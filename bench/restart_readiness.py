"""From start to the first event handled, when the system restarts on existing data.

The whole system runs as ``make run`` starts it (the Procfile's processes, workers as static members of
their groups) on a broker and SQLite databases of the benchmark's own. Two restarts are timed:

- clean: every process and the broker stopped together, as Ctrl-C on ``make run`` does, then all started;
- crash: the workers killed (SIGKILL) while the broker and web processes run on, then started again.

For each, the clock runs from the start until every process reports ready (web ``/readyz``, the worker's
``/readyz`` on its metrics port), and then until a candidate registered at that moment has its matches:
the candidate service's worker has published it and the matching worker has handled it.

On a busy machine the processes' own start-up (imports, migrations, the broker's) dominates those figures,
so Kafka's part is also timed alone: a consumer is killed and another of its group started, and the clock
runs from the new consumer's creation until it holds its partitions, as a dynamic and as a static member.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from admin.services import SERVICES, migrations
from bench.alert_latency import CANDIDATE, VACANCY
from shared.db import Database
from shared.devstack.broker import KafkaBroker, free_ports
from shared.devstack.stack import LocalStack
from shared.registry import Registry
from shared.topics import Topic, ensure_topics

BASE = "/v1/tenants/noord-limburg"


def _ready_urls(stack: LocalStack) -> dict[str, str]:
    web = {f"{service}-web": f"{stack.url(service)}/readyz" for service in stack.services}
    workers = {
        f"{service}-worker": f"http://127.0.0.1:{stack.worker_ports[service]}/readyz" for service in stack.services
    }
    return web | workers


def _wait_ready(stack: LocalStack, started: float, limit_s: float = 300) -> dict[str, float]:
    """Every process's time from ``started`` to its first green ``/readyz``."""
    pending = _ready_urls(stack)
    ready: dict[str, float] = {}
    deadline = time.monotonic() + limit_s
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready: {sorted(pending)}")
        for name, url in list(pending.items()):
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    ready[name] = round(time.monotonic() - started, 2)
                    del pending[name]
            except requests.RequestException:
                pass
        time.sleep(0.05)
    return ready


def _first_match(stack: LocalStack, jobcoach: dict[str, str], limit_s: float = 120) -> None:
    posted = requests.post(f"{stack.url('candidate')}{BASE}/candidates", json=CANDIDATE, headers=jobcoach, timeout=10)
    posted.raise_for_status()
    matches = f"{stack.url('matching')}{BASE}/candidates/{posted.json()['id']}/matches"
    deadline = time.monotonic() + limit_s
    while requests.get(matches, headers=jobcoach, timeout=10).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the candidate never reached matching")
        time.sleep(0.02)


def _timed(stack: LocalStack, jobcoach: dict[str, str], started: float) -> dict:
    each = _wait_ready(stack, started)
    ready = time.monotonic()
    _first_match(stack, jobcoach)
    handled = time.monotonic()
    return {
        "ready_s": round(ready - started, 2),
        "first_event_handled_s": round(handled - started, 2),
        "ready_to_handled_s": round(handled - ready, 2),
        "ready_s_by_process": each,
    }


# A consumer of the group that says when it was created and when it first held partitions, then waits.
_MEMBER = """
import sys, time
from shared.kafka import make_consumer
created = time.monotonic()
consumer = make_consumer(sys.argv[1], sys.argv[2], "bench-rejoin", sys.argv[4] or None)
consumer.subscribe([sys.argv[3]])
while not consumer.assignment():
    consumer.poll(timeout_ms=100)
print(created, time.monotonic(), flush=True)
while True:
    consumer.poll(timeout_ms=500)
"""


def _member(bootstrap: str, group: str, instance_id: str) -> tuple[subprocess.Popen, float]:
    child = subprocess.Popen(
        [sys.executable, "-c", _MEMBER, bootstrap, group, Topic.CANDIDATE_EVENTS, instance_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    created, assigned = (float(word) for word in child.stdout.readline().split())
    return child, assigned - created


def _rejoin_after_crash(bootstrap: str, *, static: bool) -> float:
    group = f"bench-rejoin-{uuid.uuid4().hex[:8]}"
    instance_id = f"{group}-member" if static else ""
    first, _ = _member(bootstrap, group, instance_id)
    first.kill()
    first.wait(10)
    second, rejoin = _member(bootstrap, group, instance_id)
    second.kill()
    second.wait(10)
    return round(rejoin, 2)


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-") as scratch:
        root = Path(scratch)
        port, controller_port = free_ports(2)
        broker = KafkaBroker(root / "kafka", port=port, controller_port=controller_port)
        broker.start(timeout=120)
        ensure_topics(broker.bootstrap_servers)
        urls = {service: f"sqlite:///{root / f'{service}.db'}" for service in SERVICES}
        stack = LocalStack(
            root / "stack",
            broker.bootstrap_servers,
            urls,
            f"sqlite:///{root / 'registry.db'}",
            migrations(),
            static_membership=True,
        )
        try:
            stack.start(timeout=120)
            registry = Registry(Database(stack.registry_database_url))
            registry.create_tenant("noord-limburg")
            employer = {"Authorization": f"Bearer {registry.create_key('noord-limburg', 'employer', 'emp-bench')}"}
            jobcoach = {"Authorization": f"Bearer {registry.create_key('noord-limburg', 'jobcoach', 'jc-bench')}"}
            requests.post(f"{stack.url('vacancy')}{BASE}/vacancies", json=VACANCY, headers=employer, timeout=10)
            _first_match(stack, jobcoach)

            # Clean: everything gets SIGTERM at once, as honcho sends it on Ctrl-C.
            for process in stack.processes.values():
                process.signal(signal.SIGTERM)
            broker.stop()
            for process in stack.processes.values():
                process.stop()
            started = time.monotonic()
            broker.start(timeout=120)
            broker_up = time.monotonic() - started
            for process in stack.processes.values():
                process.start()
            clean = _timed(stack, jobcoach, started) | {"broker_start_s": round(broker_up, 2)}

            workers = [process for name, process in stack.processes.items() if name.endswith("-worker")]
            for process in workers:
                process.signal(signal.SIGKILL)
                assert process.popen is not None
                process.popen.wait(10)
            started = time.monotonic()
            for process in workers:
                process.start()
            crash = _timed(stack, jobcoach, started)
            rejoin = {
                "dynamic_member_s": _rejoin_after_crash(broker.bootstrap_servers, static=False),
                "static_member_s": _rejoin_after_crash(broker.bootstrap_servers, static=True),
            }
        finally:
            stack.stop()
            broker.stop()
    return {"clean_restart": clean, "after_worker_crash": crash, "consumer_rejoin_after_crash": rejoin}
