"""Vacancy events through the whole pipeline with one and with two replicas of each worker.

The whole system runs as real processes (as ``make run`` starts them) on a broker of the benchmark's own and
a PostgreSQL database per service (and one for the registry), created for the run and dropped after it, on
the server ``BENCH_POSTGRES_URL`` names (a role that may CREATE DATABASE). Each variant has regions of its
own (``BENCH_WORKER_SCALE_REGIONS``, default 6), each with one candidate whom every vacancy suits, and the
vacancies are posted to them in turn: the platform's traffic is many regions', and one region's events are
handled one transaction at a time whatever the replica count (matching's change counter, see
:mod:`services.matching.ranking.handlers`), so replicas add throughput across regions, not within one.
With the matching and notification workers stopped, N vacancies are posted (the vacancy service's outbox
puts them on ``vacancy-events``); then the replicas are started, side by side in the same consumer group
(dynamic members, so that they share the partitions), and the clock runs from their start (start-up
included, since the first replica ready starts on every partition before the others are):

- matching: until the group's committed offsets on ``vacancy-events`` reach the end of the topic;
- pipeline: until the notification group has committed every match event published by then (a candidate
  is not alerted of every match: the inbox holds the alerts the notification service chose to raise).

The alerts of both variants are compared by the vacancy's place in the posting order: the same set, and
none twice. Last, raw kafka-python reads the same ``vacancy-events`` from the same broker with a group of
its own, as the ceiling a worker's consumer could reach, and the shared consumer reads them again with a
handler that does nothing (deduplication, one transaction per time budget and the offset commits still
run): the framework's own ceiling, beside the matching worker with its real handlers. The two take turns,
``BENCH_WORKER_SCALE_FRAMEWORK_ROUNDS`` times (default 3), and the round with the median ratio is the one
reported. N is ``BENCH_WORKER_SCALE_EVENTS`` (default 2,000).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
import sqlalchemy as sa

from admin.services import migrations
from bench.alert_latency import CANDIDATE, VACANCY
from shared.consumer import EventConsumer, processed_events_table
from shared.db import Database
from shared.devstack.broker import KafkaBroker, free_ports
from shared.devstack.stack import LocalStack
from shared.events import EventType
from shared.kafka import make_consumer, make_producer
from shared.registry import Registry
from shared.topics import Topic, ensure_topics

SERVICES = ("candidate", "vacancy", "matching", "notification")
WORKERS = ("matching", "notification")
POSTGRES_URL = "postgresql+psycopg://werkbrug:werkbrug@127.0.0.1:5432/werkbrug"


@contextmanager
def postgres_databases(names: list[str]) -> Iterator[dict[str, str]]:
    """A fresh database per name on the benchmark's PostgreSQL server, dropped afterwards: name -> URL."""
    server = sa.engine.make_url(os.environ.get("BENCH_POSTGRES_URL", POSTGRES_URL))
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    run = uuid.uuid4().hex[:8]
    databases = {name: f"bench_scale_{run}_{name}" for name in names}
    try:
        with admin.connect() as connection:
            for database in databases.values():
                connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
        yield {
            name: server.set(database=database).render_as_string(hide_password=False)
            for name, database in databases.items()
        }
    finally:
        with admin.connect() as connection:
            for database in databases.values():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


def _post_vacancies(stack: LocalStack, employers: dict[str, dict[str, str]], count: int) -> list[str]:
    """Post ``count`` vacancies to the regions in turn (region slug -> an employer's headers): their ids."""
    regions = sorted(employers)

    def post(index: int) -> str:
        tenant = regions[index % len(regions)]
        url = f"{stack.url('vacancy')}/v1/tenants/{tenant}/vacancies"
        body = {**VACANCY, "title": f"Medewerker groenonderhoud {index}"}
        response = requests.post(url, json=body, headers=employers[tenant], timeout=30)
        response.raise_for_status()
        return response.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(post, range(count)))


def _end_offsets(bootstrap: str, topic: str) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def _wait_published(bootstrap: str, total: int, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while sum(_end_offsets(bootstrap, str(Topic.VACANCY_EVENTS)).values()) < total:
        if time.monotonic() > deadline:
            raise RuntimeError("the vacancy outbox did not publish every vacancy")
        time.sleep(0.5)


def _committed_behind(admin, group: str, ends: dict) -> int:
    committed = admin.list_group_offsets(group).get(group, {})
    return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


def _alert_rows(notification_db: str, tenants: list[str]) -> list[tuple[str, str]]:
    engine = sa.create_engine(notification_db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT type, vacancy_id FROM alerts WHERE tenant IN :tenants").bindparams(
                    sa.bindparam("tenants", expanding=True)
                ),
                {"tenants": tenants},
            )
            return [(row[0], row[1]) for row in rows]
    finally:
        engine.dispose()


def _wait_ready(stack: LocalStack, names: list[str], limit_s: float = 180) -> None:
    """Until every one of these replicas holds partitions (only they: the stack's first workers are stopped)."""
    pending = list(names)
    deadline = time.monotonic() + limit_s
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"replicas not ready: {pending}")
        for name in list(pending):
            process = stack.processes[name]
            if not process.alive():
                raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
            try:
                if requests.get(f"http://127.0.0.1:{stack.replica_ports[name]}/readyz", timeout=2).status_code == 200:
                    pending.remove(name)
            except requests.RequestException:
                pass
        time.sleep(0.05)


def _machine_cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of every core since boot; (0, 0) where /proc/stat is not there."""
    try:
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    # user, nice, system, idle, iowait, irq, softirq, steal (the guest columns are counted in user already)
    total = sum(ticks[:8])
    return total - ticks[3] - ticks[4], total


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a running process has used; 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _variant(stack: LocalStack, bootstrap: str, tenants: list[str], ids: list[str], replicas: int, db: str) -> dict:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    names = [stack.add_worker_replica(service, start=False) for service in WORKERS for _ in range(replicas)]
    ends = _end_offsets(bootstrap, str(Topic.VACANCY_EVENTS))
    try:
        # The clock runs from the start of the replicas, start-up included: the first replica ready takes
        # every partition and starts before the others are, so a clock started once all are ready would
        # miss part of the work, more of it the more replicas there are.
        started = time.monotonic()
        busy_before, total_before = _machine_cpu()
        for name in names:
            stack.processes[name].start()
        _wait_ready(stack, names)
        ready_s = time.monotonic() - started
        matched_s = None
        match_ends: dict = {}
        deadline = started + float(os.environ.get("BENCH_WORKER_SCALE_LIMIT_S", "1800"))
        reported = started
        while True:
            now = time.monotonic()
            if now - reported > 10:
                reported = now
                behind = _committed_behind(admin, "werkbrug-matching", ends)
                print(f"  {replicas} replica(s): {behind} behind, {len(_alert_rows(db, tenants))} alerts", flush=True)
            if now > deadline:
                raise RuntimeError(f"{replicas} replica(s): the pipeline did not finish")
            if matched_s is None and _committed_behind(admin, "werkbrug-matching", ends) == 0:
                matched_s = now - started
                # Every match the vacancies led to is on the topic once matching's outbox has caught up.
                time.sleep(1)
                match_ends = _end_offsets(bootstrap, str(Topic.MATCH_EVENTS))
            if matched_s is not None and _committed_behind(admin, "werkbrug-notification", match_ends) == 0:
                pipeline_s = time.monotonic() - started
                break
            time.sleep(0.2)
        # Whether the replicas had cores to run on: the whole machine's busy share over the run (every
        # process of the stack, PostgreSQL and the broker included), and what each replica used itself.
        busy_after, total_after = _machine_cpu()
        cpu_s = {}
        for name in names:
            popen = stack.processes[name].popen
            cpu_s[name] = round(_process_cpu_s(popen.pid), 1) if popen is not None else None
    finally:
        for name in names:
            stack.processes[name].stop()
        admin.close()
    rows = _alert_rows(db, tenants)
    place = {vacancy_id: index for index, vacancy_id in enumerate(ids)}
    return {
        "replicas": replicas,
        "ready_s": round(ready_s, 2),
        "machine_busy_share": round((busy_after - busy_before) / (total_after - total_before), 2)
        if total_after > total_before
        else None,
        "replica_cpu_s": cpu_s,
        "matching_s": round(matched_s, 2),
        "matching_events_per_s": round(len(ids) / matched_s, 1) if matched_s else None,
        "pipeline_s": round(pipeline_s, 2),
        "pipeline_events_per_s": round(len(ids) / pipeline_s, 1),
        "alerts": len(rows),
        "doubles": len(rows) - len(set(rows)),
        "_alert_set": {(kind, place.get(vacancy_id, -1)) for kind, vacancy_id in rows},
    }


def _from_the_beginning(consumer) -> None:
    """Join the group, then rewind: both readers start from the first message with their partitions held."""
    while not consumer.assignment():
        consumer.poll(timeout_ms=100)
    consumer.seek_to_beginning()


def _raw_kafka(bootstrap: str, total: int) -> dict:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        str(Topic.VACANCY_EVENTS),
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        _from_the_beginning(consumer)
        started = time.monotonic()
        seen = 0
        while seen < total:
            for records in consumer.poll(timeout_ms=500).values():
                seen += len(records)
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    return {"messages": seen, "seconds": round(elapsed, 3), "events_per_s": round(seen / elapsed, 1)}


def _minimal_consumer(bootstrap: str, database_url: str, total: int) -> dict:
    """The shared consumer with a handler that does nothing, on a database of its own: what the framework
    costs by itself (decoding, deduplication, transactions, offset commits, metrics)."""
    metadata = sa.MetaData()
    processed = processed_events_table(metadata)
    db = Database(database_url)
    # Empty for every round: a second round would otherwise find every event handled and only skip them.
    metadata.drop_all(db.engine)
    metadata.create_all(db.engine)
    group = f"bench-minimal-{time.time_ns()}"
    consumer = make_consumer(bootstrap, group, "bench-minimal")
    consumer.subscribe([str(Topic.VACANCY_EVENTS)])
    producer = make_producer(bootstrap, "bench-minimal-dead-letters")

    def nothing(_session, _event) -> None:
        pass

    events = EventConsumer(
        db=db,
        processed_events=processed,
        consumer=consumer,
        dead_letter_producer=producer,
        group_id=group,
        handlers={EventType.VACANCY_POSTED: [nothing]},
    )
    try:
        _from_the_beginning(consumer)
        started = time.monotonic()
        seen = 0
        while seen < total:
            seen += events.poll_once(timeout_ms=500)
        elapsed = time.monotonic() - started
    finally:
        consumer.close(autocommit=False)
        producer.close()
        db.engine.dispose()
    return {"messages": seen, "seconds": round(elapsed, 3), "events_per_s": round(seen / elapsed, 1)}


def run(count: int | None = None) -> dict:
    count = count or int(os.environ.get("BENCH_WORKER_SCALE_EVENTS", "2000"))
    regions = int(os.environ.get("BENCH_WORKER_SCALE_REGIONS", "6"))
    with (
        tempfile.TemporaryDirectory(prefix="werkbrug-bench-") as scratch,
        postgres_databases([*SERVICES, "registry", "minimal"]) as all_urls,
    ):
        root = Path(scratch)
        port, controller_port = free_ports(2)
        broker = KafkaBroker(root / "kafka", port=port, controller_port=controller_port)
        broker.start(timeout=120)
        bootstrap = broker.bootstrap_servers
        ensure_topics(bootstrap)
        urls = {service: all_urls[service] for service in SERVICES}
        stack = LocalStack(
            root / "stack",
            bootstrap,
            urls,
            all_urls["registry"],
            {service: path for service, path in migrations().items() if service in SERVICES},
        )
        try:
            stack.start(timeout=180)
            registry = Registry(Database(stack.registry_database_url))
            employers: dict[int, dict[str, dict[str, str]]] = {}
            for replicas in (1, 2):
                employers[replicas] = {}
                for region in range(regions):
                    tenant = f"scale-{replicas}-{region}"
                    registry.create_tenant(tenant)
                    employer = {"Authorization": f"Bearer {registry.create_key(tenant, 'employer', 'emp-bench')}"}
                    jobcoach = {"Authorization": f"Bearer {registry.create_key(tenant, 'jobcoach', 'jc-bench')}"}
                    base = f"/v1/tenants/{tenant}"
                    candidates = f"{stack.url('candidate')}{base}/candidates"
                    posted = requests.post(candidates, json=CANDIDATE, headers=jobcoach)
                    posted.raise_for_status()
                    matches = f"{stack.url('matching')}{base}/candidates/{posted.json()['id']}/matches"
                    while requests.get(matches, headers=jobcoach, timeout=10).status_code != 200:
                        time.sleep(0.05)
                    employers[replicas][tenant] = employer
            # From here the workers run only as the variants start them.
            for service in WORKERS:
                stack.processes[f"{service}-worker"].stop()
            variants = {}
            published = sum(_end_offsets(bootstrap, str(Topic.VACANCY_EVENTS)).values())
            for replicas in (1, 2):
                posting = time.monotonic()
                ids = _post_vacancies(stack, employers[replicas], count)
                posted_s = time.monotonic() - posting
                published += count
                _wait_published(bootstrap, published)
                print(f"  {count} vacancies posted in {posted_s:.1f} s for {replicas} replica(s)", flush=True)
                tenants = sorted(employers[replicas])
                variants[replicas] = _variant(stack, bootstrap, tenants, ids, replicas, urls["notification"])
                variants[replicas]["posting_s"] = round(posted_s, 2)
            # Side by side, on the same messages of the same broker, in alternating rounds: one reading of
            # each swings by a third on a shared machine, so the round with the median ratio is reported.
            framework_rounds = []
            for _ in range(int(os.environ.get("BENCH_WORKER_SCALE_FRAMEWORK_ROUNDS", "3"))):
                raw = _raw_kafka(bootstrap, published)
                minimal = _minimal_consumer(bootstrap, all_urls["minimal"], published)
                ratio = round(minimal["events_per_s"] / raw["events_per_s"], 4)
                framework_rounds.append({"raw_kafka_python": raw, "minimal_handler_consumer": minimal, "ratio": ratio})
        finally:
            stack.stop()
            broker.stop()
    one, two = variants[1], variants[2]
    identical = one.pop("_alert_set") == two.pop("_alert_set")
    median = sorted(framework_rounds, key=lambda round_: round_["ratio"])[len(framework_rounds) // 2]
    return {
        "events": count,
        "regions_per_variant": regions,
        "database": "postgresql",
        "one_replica": one,
        "two_replicas": two,
        "matching_ratio_two_to_one": round(two["matching_events_per_s"] / one["matching_events_per_s"], 2),
        "pipeline_ratio_two_to_one": round(two["pipeline_events_per_s"] / one["pipeline_events_per_s"], 2),
        "alerts_identical": identical and one["doubles"] == 0 and two["doubles"] == 0,
        "framework_rounds": framework_rounds,
        "raw_kafka_python": median["raw_kafka_python"],
        "minimal_handler_consumer": median["minimal_handler_consumer"],
        # The matching worker (one replica, its real handlers) and the framework alone, each against raw.
        "worker_to_raw_ratio": round(one["matching_events_per_s"] / median["raw_kafka_python"]["events_per_s"], 4),
        "minimal_handler_to_raw_ratio": median["ratio"],
    }
