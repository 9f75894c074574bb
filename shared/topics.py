"""Every Kafka topic Werkbrug uses, named once, with how each is created."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class Topic(enum.StrEnum):
    CANDIDATE_EVENTS = "candidate-events"
    VACANCY_EVENTS = "vacancy-events"
    MATCH_EVENTS = "match-events"
    PLACEMENT_EVENTS = "placement-events"
    ALERT_EVENTS = "alert-events"
    DEAD_LETTERS = "dead-letters"


@dataclass(frozen=True)
class TopicSpec:
    topic: Topic
    partitions: int
    config: dict[str, str]


# candidate-events is compacted so that an erased candidate's tombstone makes Kafka forget them too.
TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.CANDIDATE_EVENTS, 6, {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}),
    TopicSpec(Topic.VACANCY_EVENTS, 6, {}),
    TopicSpec(Topic.MATCH_EVENTS, 6, {}),
    TopicSpec(Topic.PLACEMENT_EVENTS, 6, {}),
    TopicSpec(Topic.ALERT_EVENTS, 6, {}),
    TopicSpec(Topic.DEAD_LETTERS, 1, {"retention.ms": str(30 * 24 * 3600 * 1000)}),
)


def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec] = TOPIC_SPECS,
    timeout_s: float = 30,
    replication_factor: int = 1,
) -> list[str]:
    """Create whichever of the topics do not exist yet and wait until all have leaders.

    Topics that already exist are left exactly as they are. Returns the names it created.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, for_code

    specs = list(specs)
    if not specs:
        return []
    wanted: dict[str, dict[str, Any]] = {
        str(spec.topic): {
            "num_partitions": spec.partitions,
            "replication_factor": replication_factor,
            "configs": dict(spec.config),
        }
        for spec in specs
    }
    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="werkbrug-ensure-topics",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        result = admin.create_topics(wanted, timeout_ms=timeout_ms, raise_errors=False)
        created: list[str] = []
        failures: list[str] = []
        for topic in result["topics"]:
            code = topic["error_code"]
            if code == 0:
                created.append(topic["name"])
            elif code != _TOPIC_ALREADY_EXISTS:
                error = for_code(code).__name__
                failures.append(f"{topic['name']}: {error} {topic.get('error_message') or ''}".rstrip())
        if failures:
            raise KafkaError("could not create topics: " + "; ".join(failures))
        admin.wait_for_topics(list(wanted), timeout_ms=timeout_ms)
    finally:
        admin.close()
    if created:
        log.info("created topics %s on %s", ", ".join(created), bootstrap_servers)
    return created
