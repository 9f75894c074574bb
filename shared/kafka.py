"""Kafka clients configured the one way Werkbrug uses them.

Clients start background threads, and threads do not survive ``fork()``: build them inside the process
that uses them (workers), never in a gunicorn master. Web processes never need one: they write to the
outbox.
"""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer


def make_producer(bootstrap_servers: str, client_id: str) -> KafkaProducer:
    # Idempotence with acks=all is kafka-python's default from 3.0 on; spelled out because passing other
    # acks or retries silently turns it off, and the outbox's no-duplicates promise leans on it.
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,
        linger_ms=5,
        # send() waits this long for metadata while the broker is away; the relay would rather fail fast
        # and retry the batch than hang for kafka-python's default minute.
        max_block_ms=10_000,
        request_timeout_ms=15_000,
        delivery_timeout_ms=30_000,
        retry_backoff_ms=200,
        reconnect_backoff_max_ms=2_000,
    )


def make_consumer(
    bootstrap_servers: str, group_id: str, client_id: str, group_instance_id: str | None = None
) -> KafkaConsumer:
    """An unsubscribed consumer with manual commits; the caller subscribes once its topics exist."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap_servers.split(","),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=200,
        # A webhook or a re-rank may take a while; losing the partitions mid-batch would only redeliver,
        # but needless rebalances stall every replica.
        max_poll_interval_ms=300_000,
        # A crashed dynamic member holds its partitions until the broker gives up on it, so the session is
        # short: 10 s, near the broker's floor (group.min.session.timeout.ms, 6 s by default) but clear of a
        # slow heartbeat on a busy machine, with heartbeats at a third of it as Kafka advises.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        group_instance_id=group_instance_id,
        reconnect_backoff_max_ms=2_000,
    )
