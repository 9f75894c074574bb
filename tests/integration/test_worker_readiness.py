"""A worker is ready once its consumer holds its partitions, and a clean stop leaves the group."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient
from werkzeug.test import Client

from shared.config import load_settings
from shared.consumer import processed_events_table
from shared.db import Database
from shared.events import EventType
from shared.health import ProcessHealth
from shared.worker import consumer_loop, health_app
from tests.kafka_helpers import fresh_topic

pytestmark = pytest.mark.kafka


def _members(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return len(admin.describe_groups([group])[group]["members"])
    finally:
        admin.close()


def _wait_until(condition, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def test_the_worker_is_ready_only_while_it_holds_its_partitions_and_leaves_the_group_on_stop(
    bootstrap_servers: str, database_url
) -> None:
    topic = fresh_topic(bootstrap_servers, partitions=2)
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    url = database_url("worker")
    metadata = sa.MetaData()
    processed = processed_events_table(metadata)
    db = Database(url)
    metadata.create_all(db.engine)
    settings = load_settings(
        "readiness",
        {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "CONSUMER_GROUP": group},
        port=0,
        worker_metrics_port=0,
    )
    health = ProcessHealth()
    stop = threading.Event()
    loop = consumer_loop(
        settings, db, processed, [topic], {EventType.VACANCY_CLOSED: [lambda _session, _event: None]}, health=health
    )
    client = Client(health_app(health, stop))
    assert client.get("/readyz").status_code == 503, "not ready before the consumer has joined its group"

    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    try:
        _wait_until(lambda: client.get("/readyz").status_code == 200, "the consumer held its partitions")
        assert _members(bootstrap_servers, group) == 1
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert json.loads(client.get("/readyz").data)["waiting_for"] == ["consumer holds its partitions", "stopping"]
    # Left, not timed out: a replica taking over need not wait out the session.
    assert _members(bootstrap_servers, group) == 0
