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


_HOUR_MS = 3600 * 1000
_DAY_MS = 24 * _HOUR_MS

# candidate-events is compacted so that an erased candidate's tombstone makes Kafka forget them too, and
# within a bound (README, "Erasure in Kafka"): the cleaner never touches the active segment, so it rolls
# after at most 6 hours (on the next message), any dirt at all (1%) makes a partition worth cleaning, and
# no record waits more than 12 hours for it. The tombstone itself, a key and nothing more, stays a week,
# the retention of every other topic, so that a worker that was down that long still learns of the erasure.
CANDIDATE_EVENTS_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "0",
    "segment.ms": str(6 * _HOUR_MS),
    "min.cleanable.dirty.ratio": "0.01",
    "max.compaction.lag.ms": str(12 * _HOUR_MS),
    "delete.retention.ms": str(7 * _DAY_MS),
}
# A dead letter is the original message, kept only as long as it takes to replay it; its segments roll
# daily so that retention can delete them on time (retention drops whole segments only).
DEAD_LETTERS_CONFIG = {
    "retention.ms": str(7 * _DAY_MS),
    "segment.ms": str(_DAY_MS),
}

TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.CANDIDATE_EVENTS, 6, CANDIDATE_EVENTS_CONFIG),
    TopicSpec(Topic.VACANCY_EVENTS, 6, {}),
    TopicSpec(Topic.MATCH_EVENTS, 6, {}),
    TopicSpec(Topic.PLACEMENT_EVENTS, 6, {}),
    TopicSpec(Topic.ALERT_EVENTS, 6, {}),
    TopicSpec(Topic.DEAD_LETTERS, 1, DEAD_LETTERS_CONFIG),
)


def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec] = TOPIC_SPECS,
    timeout_s: float = 30,
    replication_factor: int = 1,
) -> list[str]:
    """Create whichever of the topics do not exist yet and wait until all have leaders.

    A topic that already exists keeps its partitions and gets the spec's configs set (others it has
    are left alone), so that a cluster created by an earlier release takes on new settings such as the
    compaction bounds. Returns the names it created.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
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
        existing = [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=dict(options["configs"]))
            for name, options in wanted.items()
            if name not in created and options["configs"]
        ]
        if existing:
            result = admin.alter_configs(existing, raise_on_unknown=False, incremental=True)
            _raise_on_errors(result, "could not set topic configs")
    finally:
        admin.close()
    if created:
        log.info("created topics %s on %s", ", ".join(created), bootstrap_servers)
    return created


def _raise_on_errors(result: dict[str, dict[str, str]], what: str) -> None:
    """alter_configs answers ``{type: {name: "OK" or the error}}``."""
    from kafka.errors import KafkaError

    failures = [
        f"{name}: {answer}" for answers in result.values() for name, answer in answers.items() if answer != "OK"
    ]
    if failures:
        raise KafkaError(f"{what}: " + "; ".join(failures))
