"""Time from an employer's POST of a vacancy to the match alert in the jobcoach's inbox.

The whole system runs as real processes (as ``make run`` starts them) on a broker and SQLite databases of
the benchmark's own. Vacancies are posted one after another; for each, the clock runs from just before
the POST until the inbox, polled every 10 ms, shows its alert.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import requests

from admin.services import SERVICES, migrations
from shared.db import Database
from shared.devstack.broker import KafkaBroker, free_ports
from shared.devstack.stack import LocalStack
from shared.registry import Registry
from shared.topics import ensure_topics

CANDIDATE = {
    "display_name": "Bench",
    "talents": ["planten verzorgen", "buiten werken"],
    "support_needs": [{"code": "quiet_workplace", "level": "essential"}],
    "hours_min": 12,
    "hours_max": 24,
    "ladder_step": 3,
    "location": {"postcode": "5912"},
    "consent": {"matching": True, "share_with_employers": True},
}
VACANCY = {
    "title": "Medewerker groenonderhoud",
    "tasks": ["planten verzorgen"],
    "skills": ["groenonderhoud"],
    "supports_offered": ["quiet_workplace"],
    "hours_min": 16,
    "hours_max": 24,
    "kind": "work_experience",
    "positions": 1,
    "location": {"postcode": "5911"},
}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(count: int = 100) -> dict:
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-") as scratch:
        root = Path(scratch)
        port, controller_port = free_ports(2)
        broker = KafkaBroker(root / "kafka", port=port, controller_port=controller_port)
        broker.start(timeout=120)
        ensure_topics(broker.bootstrap_servers)
        urls = {service: f"sqlite:///{root / f'{service}.db'}" for service in SERVICES}
        registry_url = f"sqlite:///{root / 'registry.db'}"
        stack = LocalStack(root / "stack", broker.bootstrap_servers, urls, registry_url, migrations())
        try:
            stack.start(timeout=120)
            registry = Registry(Database(stack.registry_database_url))
            registry.create_tenant("noord-limburg")
            employer = {"Authorization": f"Bearer {registry.create_key('noord-limburg', 'employer', 'emp-bench')}"}
            jobcoach = {"Authorization": f"Bearer {registry.create_key('noord-limburg', 'jobcoach', 'jc-bench')}"}
            base = "/v1/tenants/noord-limburg"
            candidate = requests.post(f"{stack.url('candidate')}{base}/candidates", json=CANDIDATE, headers=jobcoach)
            candidate_id = candidate.json()["id"]
            matches = f"{stack.url('matching')}{base}/candidates/{candidate_id}/matches"
            while requests.get(matches, headers=jobcoach, timeout=10).status_code != 200:
                time.sleep(0.05)
            latencies = []
            inbox = f"{stack.url('notification')}{base}/alerts"
            for _ in range(count):
                started = time.perf_counter()
                posted = requests.post(f"{stack.url('vacancy')}{base}/vacancies", json=VACANCY, headers=employer)
                vacancy_id = posted.json()["id"]
                deadline = started + 30
                while time.perf_counter() < deadline:
                    newest = requests.get(inbox, params={"page_size": 5}, headers=jobcoach, timeout=10).json()
                    if any(alert["vacancy_id"] == vacancy_id for alert in newest["items"]):
                        latencies.append(time.perf_counter() - started)
                        break
                    time.sleep(0.01)
                else:
                    raise RuntimeError(f"no alert within 30 s for vacancy {vacancy_id}")
        finally:
            stack.stop()
            broker.stop()
    return {
        "vacancies": count,
        "median_s": round(statistics.median(latencies), 4),
        "p95_s": round(_percentile(latencies, 0.95), 4),
        "max_s": round(max(latencies), 4),
        "min_s": round(min(latencies), 4),
    }
