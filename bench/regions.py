"""Thirty-five regions in one matching deployment: resident memory, time to ready and ``GET /matches``
latency, with the per-process index memory budget on and off, side by side in one run.

The Netherlands has 35 labour-market regions; each is a tenant here, of a size drawn with a fixed seed:
500 to 5,000 open vacancies and 200 to 2,000 candidates (``BENCH_REGIONS_SCALE`` multiplies both, e.g.
0.1 for a quick run). Their texts are those of :mod:`bench.matching_speed`, each region from its own seed.
The read models are filled on SQLite through the matching service's own store (``insert_new``: the rows and
change numbers its worker's upserts would give them, many rows to a statement).

Then, once per mode, the matching web process (gunicorn with the deployment's settings: 2 workers,
``WEB_TIMEOUT=90``, ``MATCHING_COLD_WAIT_SECONDS=2``) and the matching worker (on a real broker) start
together on that database, as a rollout starts both pods:

- ``budget_off``: ``MATCHING_INDEX_MEMORY_MB=0``, every process keeps every region's index it built;
- ``budget_on``: ``MATCHING_INDEX_MEMORY_MB`` as deployed (384; ``BENCH_REGIONS_BUDGET_MB``).

Each mode reports: the time from start to each process's ``/readyz`` green and to every process idle
(the warm-ups done); each process's resident set (``/proc``: VmRSS now, VmHWM its peak) once idle and
again after the traffic; the indexes' estimated bytes and evictions from the processes' own metrics; and
``GET /v1/tenants/{t}/candidates/{id}/matches?limit=10`` sent ``BENCH_REGIONS_REQUESTS_PER_REGION``
times (default 10) to each of the 35 regions in one shuffled order, with each region's own jobcoach key,
from two clients at once (one per gunicorn worker). A 503 is not retried: those with ``Retry-After``
(a region whose index is being built) are counted apart, and the latency percentiles are given for the
200s and for all answers.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.cold_start import _children, _green, _resident_mib
from bench.matching_speed import (
    JOBCOACH,
    REPO_ROOT,
    candidate_payload,
    latency_summary,
    process_env,
    vacancy_payload,
)

# The 35 labour-market regions (arbeidsmarktregio's) of the Netherlands, as tenant slugs.
REGIONS = (
    "groningen",
    "friesland",
    "drenthe",
    "regio-zwolle",
    "twente",
    "stedendriehoek-en-noordwest-veluwe",
    "achterhoek",
    "midden-gelderland",
    "rijk-van-nijmegen",
    "rivierenland",
    "foodvalley",
    "flevoland",
    "amersfoort",
    "midden-utrecht",
    "gooi-en-vechtstreek",
    "groot-amsterdam",
    "zaanstreek-waterland",
    "noord-holland-noord",
    "zuid-kennemerland-en-ijmond",
    "holland-rijnland",
    "midden-holland",
    "haaglanden",
    "zuid-holland-centraal",
    "rijnmond",
    "drechtsteden",
    "gorinchem",
    "zeeland",
    "west-brabant",
    "midden-brabant",
    "noordoost-brabant",
    "zuidoost-brabant",
    "helmond-de-peel",
    "noord-limburg",
    "midden-limburg",
    "zuid-limburg",
)
SEED = 35_2026
VACANCY_RANGE = (500, 5_000)
CANDIDATE_RANGE = (200, 2_000)
REQUESTS_PER_REGION = 10
# As k8s/base/matching.yaml deploys the matching web process.
BUDGET_MB = 384
DEPLOYED = {"WEB_CONCURRENCY": "2", "WEB_TIMEOUT": "90", "MATCHING_COLD_WAIT_SECONDS": "2"}
CLIENTS = 2
START_LIMIT_S = 900.0
IDLE_LIMIT_S = 300.0
REQUEST_TIMEOUT_S = 120.0
# The processes count as idle (their warm-ups over) when together they used less than this share of one core
# over a window: a matching worker waiting for events uses about 7% (its loops and the consumer's polls).
IDLE_CPU_SHARE = 0.2
IDLE_WINDOW_S = 3.0
BROKER_START_S = 180.0


class Region(NamedTuple):
    tenant: str
    vacancies: int
    candidates: int


def region_sizes(scale: float = 1.0, seed: int = SEED) -> list[Region]:
    """Each region's number of open vacancies and candidates, drawn uniformly from the ranges, then scaled."""
    rng = random.Random(seed)
    regions = []
    for tenant in REGIONS:
        vacancies, candidates = rng.randint(*VACANCY_RANGE), rng.randint(*CANDIDATE_RANGE)
        regions.append(Region(tenant, max(1, round(vacancies * scale)), max(1, round(candidates * scale))))
    return regions


def region_payloads(region: Region, seed: int = SEED) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """The region's vacancy and candidate event payloads, the same on every run."""
    rng = random.Random(f"{seed}/{region.tenant}")
    return (
        [(f"v-{number:06d}", vacancy_payload(rng)) for number in range(region.vacancies)],
        [(f"c-{number:06d}", candidate_payload(rng)) for number in range(region.candidates)],
    )


def request_plan(regions: Sequence[Region], per_region: int, seed: int = SEED) -> list[tuple[str, str]]:
    """``per_region`` (tenant, candidate id) pairs for every region, candidates drawn from the region's own,
    all regions shuffled together so that each client moves between them as real traffic does."""
    rng = random.Random(seed + 1)
    plan = [
        (region.tenant, f"c-{rng.randrange(region.candidates):06d}") for region in regions for _ in range(per_region)
    ]
    rng.shuffle(plan)
    return plan


@dataclass(frozen=True)
class Answer:
    tenant: str
    seconds: float
    status: int
    retry_after: str | None


def summarise_answers(answers: Sequence[Answer]) -> dict:
    """Latency of the 200s and of all answers, and the 503s with and without ``Retry-After``."""
    ok = [answer.seconds for answer in answers if answer.status == 200]
    refused = [answer for answer in answers if answer.status == 503]
    return {
        "requests": len(answers),
        "status_200": len(ok),
        "status_503_with_retry_after": sum(1 for answer in refused if answer.retry_after),
        "status_503_without_retry_after": sum(1 for answer in refused if not answer.retry_after),
        "other_status": sorted({answer.status for answer in answers} - {200, 503}),
        "regions_with_a_503": len({answer.tenant for answer in refused}),
        "latency_200": latency_summary(ok) if ok else None,
        "latency_all": latency_summary([answer.seconds for answer in answers]) if answers else None,
    }


# --------------------------------------------------------------------------------------------------------
# Seeding


class Seeded(NamedTuple):
    database_url: str
    registry_url: str
    keys: dict[str, str]  # tenant -> a jobcoach's API key
    generate_s: float
    fill_s: float


def seed(root: Path, regions: Sequence[Region]) -> Seeded:
    from services.matching import store
    from services.matching.ranking import store as read_models
    from shared.db import Database, upgrade
    from shared.registry import Registry

    database_url = f"sqlite:///{root / 'matching.db'}"
    registry_url = f"sqlite:///{root / 'registry.db'}"
    upgrade(store.MIGRATIONS, database_url)
    database = Database(database_url)
    registry = Registry(Database(registry_url))
    registry.migrate()
    keys = {}
    generate_s = fill_s = 0.0
    for region in regions:
        registry.create_tenant(region.tenant)
        keys[region.tenant] = registry.create_key(region.tenant, "jobcoach", JOBCOACH)
        started = time.perf_counter()
        vacancies, candidates = region_payloads(region)
        generated = time.perf_counter()
        with database.session() as session:
            read_models.insert_new(session, region.tenant, vacancies, candidates)
        generate_s += generated - started
        fill_s += time.perf_counter() - generated
    return Seeded(database_url, registry_url, keys, generate_s, fill_s)


# --------------------------------------------------------------------------------------------------------
# The processes


def _cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                # Fields after the command name, which may hold spaces: utime and stime are 14th and 15th.
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_idle(pids: Sequence[int], limit_s: float) -> bool:
    """Wait until these processes together use under IDLE_CPU_SHARE of a core; False if they never do."""
    deadline = time.monotonic() + limit_s
    used = _cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(IDLE_WINDOW_S)
        now = _cpu_seconds(pids)
        if now - used < IDLE_CPU_SHARE * IDLE_WINDOW_S:
            return True
        used = now
    return False


def _index_figures(metrics_url: str) -> dict:
    """The indexes' estimated bytes, evictions, builds and cold requests from a process's own metrics."""
    text = requests.get(metrics_url, timeout=10).text
    figures: dict = {"index_estimated_mib": None, "evictions": 0, "initial_builds": 0, "cold": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "werkbrug_matching_index_bytes":
                figures["index_estimated_mib"] = round(sample.value / 2**20, 1)
            elif sample.name == "werkbrug_matching_index_evictions_total":
                figures["evictions"] = int(sample.value)
            elif sample.name == "werkbrug_matching_index_build_seconds_count" and sample.labels["kind"] == "initial":
                figures["initial_builds"] = int(sample.value)
            elif sample.name == "werkbrug_matching_index_cold_total":
                figures["cold"][sample.labels["outcome"]] = int(sample.value)
    return figures


def _memory(web: subprocess.Popen, worker: subprocess.Popen) -> dict:
    """Each process's resident set: the gunicorn master, its workers, and the matching worker."""
    return {
        "web_master": _resident_mib(web.pid),
        "web_workers": [_resident_mib(pid) for pid in _children(web.pid)],
        "worker": _resident_mib(worker.pid),
    }


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(10)


def _until_green(urls: dict[str, str], processes: Sequence[tuple[subprocess.Popen, Path]], started: float) -> dict:
    """Seconds from ``started`` until each of these ``/readyz`` answered 200; None for one that did not
    within START_LIMIT_S (the run goes on: what such a process holds and answers is the finding)."""
    deadline = time.monotonic() + START_LIMIT_S
    green: dict[str, float | None] = dict.fromkeys(urls)
    while None in green.values() and time.monotonic() < deadline:
        for name, url in urls.items():
            if green[name] is None and _green(url):
                green[name] = round(time.monotonic() - started, 2)
        for process, log in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a matching process exited:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    return green


def run_mode(
    mode: str, budget_mb: int, env: dict[str, str], root: Path, plan: Sequence[tuple[str, str]], keys: dict[str, str]
) -> dict:
    from shared.devstack.broker import free_ports

    web_port, worker_port = free_ports(2)
    env = env | {
        "MATCHING_INDEX_MEMORY_MB": str(budget_mb),
        "WERKBRUG_PORT": str(web_port),
        "WORKER_METRICS_PORT": str(worker_port),
    }
    # gunicorn's workers share their metrics through files; the worker process keeps its own in memory.
    web_env = env | {"PROMETHEUS_MULTIPROC_DIR": str(root / f"metrics-{mode}")}
    base, worker_base = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}"
    web_log, worker_log = root / f"matching-web-{mode}.log", root / f"matching-worker-{mode}.log"
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:shared.web.gunicorn_conf"]
    started = time.monotonic()
    web = _start([*gunicorn, "services.matching.app:create_app()"], web_env, web_log)
    worker = _start([sys.executable, "-m", "services.matching.worker"], env, worker_log)
    both = [(web, web_log), (worker, worker_log)]
    try:
        ready_s = _until_green({"web": f"{base}/readyz", "worker": f"{worker_base}/readyz"}, both, started)
        pids = [web.pid, *_children(web.pid), worker.pid]
        settled = _wait_idle(pids, IDLE_LIMIT_S)
        settled_s = round(time.monotonic() - started, 2)
        after_ready = {
            "memory": _memory(web, worker),
            "web_indexes": _index_figures(f"{base}/metrics"),
            "worker_indexes": _index_figures(f"{worker_base}/metrics"),
        }

        def client(number: int) -> list[Answer]:
            session = requests.Session()
            answers = []
            for tenant, candidate_id in plan[number::CLIENTS]:
                url = f"{base}/v1/tenants/{tenant}/candidates/{candidate_id}/matches"
                headers = {"Authorization": f"Bearer {keys[tenant]}"}
                sent = time.perf_counter()
                response = session.get(url, params={"limit": 10}, headers=headers, timeout=REQUEST_TIMEOUT_S)
                seconds = time.perf_counter() - sent
                answers.append(Answer(tenant, seconds, response.status_code, response.headers.get("Retry-After")))
            return answers

        traffic_started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [answer for sent in pool.map(client, range(CLIENTS)) for answer in sent]
        traffic_s = round(time.monotonic() - traffic_started, 1)
        after_traffic = {
            "memory": _memory(web, worker),
            "web_indexes": _index_figures(f"{base}/metrics"),
            "worker_indexes": _index_figures(f"{worker_base}/metrics"),
        }
    finally:
        _stop(web)
        _stop(worker)
    return {
        "mode": mode,
        "matching_index_memory_mb": budget_mb,
        "ready_limit_s": START_LIMIT_S,
        "web_ready_s": ready_s["web"],
        "worker_ready_s": ready_s["worker"],
        "all_idle_s": settled_s if settled else None,
        "traffic_s": traffic_s,
        **summarise_answers(answers),
        "after_ready": after_ready,
        "after_traffic": after_traffic,
    }


def run(scale: float | None = None) -> dict:
    from shared.devstack.broker import KafkaBroker, free_ports
    from shared.topics import ensure_topics

    scale = scale if scale is not None else float(os.environ.get("BENCH_REGIONS_SCALE", "1"))
    per_region = int(os.environ.get("BENCH_REGIONS_REQUESTS_PER_REGION", REQUESTS_PER_REGION))
    budget_mb = int(os.environ.get("BENCH_REGIONS_BUDGET_MB", BUDGET_MB))
    regions = region_sizes(scale)
    plan = request_plan(regions, per_region)
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-") as scratch:
        root = Path(scratch)
        print(f"  regions: seeding {sum(r.vacancies for r in regions)} vacancies", flush=True)
        seeded = seed(root, regions)
        port, controller_port = free_ports(2)
        broker = KafkaBroker(root / "kafka", port=port, controller_port=controller_port)
        broker.start(timeout=BROKER_START_S)
        try:
            ensure_topics(broker.bootstrap_servers)
            env = {key: value for key, value in process_env().items() if not key.startswith(("MATCHING_", "WEB_"))}
            env |= DEPLOYED | {
                "DATABASE_URL": seeded.database_url,
                "REGISTRY_DATABASE_URL": seeded.registry_url,
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "WERKBRUG_VAR_DIR": str(root / "var"),
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
            modes = {}
            # BENCH_REGIONS_MODES=budget_on measures one side only (a change to the budget's behaviour).
            only = os.environ.get("BENCH_REGIONS_MODES", "budget_off,budget_on").split(",")
            for mode, budget in (("budget_off", 0), ("budget_on", budget_mb)):
                if mode not in only:
                    continue
                print(f"  regions: {mode}", flush=True)
                modes[mode] = run_mode(mode, budget, env, root, plan, seeded.keys)
        finally:
            broker.stop()
    return {
        "scale": scale,
        "regions": len(regions),
        "vacancies_total": sum(region.vacancies for region in regions),
        "candidates_total": sum(region.candidates for region in regions),
        "sizes": {region.tenant: [region.vacancies, region.candidates] for region in regions},
        "requests_per_region": per_region,
        "settings": DEPLOYED,
        "load_average_1min": load_at_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "generate_payloads_s": round(seeded.generate_s, 1),
        "fill_read_models_s": round(seeded.fill_s, 1),
        "modes": modes,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
