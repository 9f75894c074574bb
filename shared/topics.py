"""Every Kafka topic Werkbrug uses, named once."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
