"""What the outbox relay and the shared consumer loop promise, checked on the in-memory broker and on Kafka.

Every case runs twice through the ``backend`` fixture, on a real database either way; only the broker
differs. A case that passes on Kafka and fails on the double (or the other way round) means the double
has drifted from Kafka's behaviour, and handler tests built on it can no longer be trusted.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from kafka import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from sqlalchemy.exc import OperationalError

from shared.consumer import EventConsumer, processed_events_table
from shared.db import Database
from shared.events import KAFKA_HEADERS, EventType, encode_event, load_example, new_event
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.topics import Topic
from tests.contract.backends import Backend
from tests.doubles.memory_broker import partition_for

CLOSED = EventType.VACANCY_CLOSED
POSTED = EventType.VACANCY_POSTED


class Flow:
    """One test's topic, consumer group and database: a handler table writes its effects to ``effects``."""

    def __init__(self, backend: Backend, db: Database, tenant: str, partitions: int) -> None:
        metadata = sa.MetaData()
        self.processed = processed_events_table(metadata)
        self.outbox = Outbox(outbox_table(metadata))
        self.effects = sa.Table(
            "effects",
            metadata,
            sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("event_id", sa.String(36), nullable=True),
            sa.Column("subject", sa.String(200), nullable=False),
            sa.Column("handler", sa.String(50), nullable=False),
        )
        metadata.create_all(db.engine)
        self.backend, self.db, self.tenant = backend, db, tenant
        self.topic = backend.topic(partitions)
        self.group = f"contract-{uuid.uuid4().hex[:8]}"
        self.producer = backend.producer()

    # -- the messages

    def key(self, subject: str) -> str:
        return f"{self.tenant}/{subject}"

    def closed(self, subject: str) -> dict:
        return new_event(
            CLOSED, tenant=self.tenant, subject=subject, data={"employer_id": "e", "status": "closed"}, source="test"
        )

    def send(
        self, subject: str, value: dict | bytes | None, key: str | None = None, headers: list | None = None
    ) -> None:
        raw = encode_event(value) if isinstance(value, dict) else value
        self.producer.send(self.topic, key=(key or self.key(subject)).encode(), value=raw, headers=headers).get(30)

    # -- the consumer

    def handler(self, name: str, calls: list | None = None, fail=None):
        """A handler that stores one effect row, after ``fail(event)`` had its chance to raise."""

        def handle(session, event) -> None:
            if calls is not None:
                calls.append((name, event.subject))
            if fail is not None:
                fail(event)
            session.execute(self.effects.insert().values(event_id=event.id, subject=event.subject, handler=name))

        return handle

    def tombstone_handler(self, name: str):
        def erase(session, tenant: str, subject: str) -> None:
            assert tenant == self.tenant
            session.execute(self.effects.insert().values(event_id=None, subject=subject, handler=name))

        return erase

    def consumer(self, handlers=None, tombstone_handlers=None) -> EventConsumer:
        return EventConsumer(
            db=self.db,
            processed_events=self.processed,
            consumer=self.backend.consumer(self.group, [self.topic]),
            dead_letter_producer=self.producer,
            group_id=self.group,
            handlers={CLOSED: [self.handler("effect")]} if handlers is None else handlers,
            tombstone_handlers=tombstone_handlers,
            retry_backoff_s=0.01,
        )

    def drain(self, consumer: EventConsumer, expected: int, tolerate: tuple = (), until=None) -> tuple[int, int]:
        """Poll until ``expected`` messages were taken (or ``until()`` holds after a poll that did not
        raise); returns (taken, how many polls raised)."""
        taken = raised = 0
        for _ in range(self.backend.rounds):
            try:
                taken += consumer.poll_once(timeout_ms=self.backend.poll_ms)
            except tolerate:
                raised += 1
                continue
            if until() if until else taken >= expected:
                break
        return taken, raised

    # -- the outcome

    def effect_rows(self) -> list[tuple[str, str]]:
        with self.db.session() as session:
            query = sa.select(self.effects.c.handler, self.effects.c.subject).order_by(self.effects.c.n)
            return [tuple(row) for row in session.execute(query)]

    def processed_ids(self) -> set[str]:
        with self.db.session() as session:
            return set(session.execute(sa.select(self.processed.c.event_id)).scalars())

    def committed_total(self, partitions: int = 1) -> int:
        return sum(self.backend.committed(self.group, TopicPartition(self.topic, p)) or 0 for p in range(partitions))

    def dead_letters(self, subject: str) -> list:
        return self.backend.read(str(Topic.DEAD_LETTERS), key_prefix=self.key(subject).encode())

    def add_outbox_row(self, subject: str, payload: str | None, headers: list | None = None) -> None:
        with self.db.session() as session:
            session.execute(
                self.outbox.table.insert().values(
                    topic=self.topic,
                    message_key=self.key(subject),
                    payload=payload,
                    headers=headers,
                    created_at=sa.func.current_timestamp(),
                )
            )

    def pending(self) -> int:
        with self.db.session() as session:
            return self.outbox.pending_count(session)


@pytest.fixture
def flow(backend: Backend, database_url, tenant):
    def build(partitions: int = 1) -> Flow:
        return Flow(backend, Database(database_url("contract")), tenant, partitions)

    return build


# --------------------------------------------------------------------------------------------------------
# The outbox relay


def test_the_relay_publishes_each_pending_row_once_in_order_and_marks_it(flow):
    f = flow()
    documents = [f.closed("v-1") for _ in range(3)]
    for document in documents:
        f.add_outbox_row("v-1", encode_event(document).decode())
    f.add_outbox_row("v-1", None)
    f.add_outbox_row("v-dead", '{"id": "x"}', headers=[["dlq.reason", "delivery_failed"]])
    relay = OutboxRelay(f.db, f.outbox, f.producer)

    assert relay.publish_batch() == 5
    assert relay.publish_batch() == 0

    messages = f.backend.read(f.topic)
    assert [m.key for m in messages] == [f.key("v-1").encode()] * 4 + [f.key("v-dead").encode()]
    assert [json.loads(m.value)["id"] for m in messages[:3]] == [d["id"] for d in documents]
    assert [m.headers for m in messages[:3]] == [KAFKA_HEADERS] * 3, "the CloudEvents binding's structured mode"
    assert messages[3].value is None, "a NULL payload goes out as a tombstone"
    assert messages[3].headers == [], "a tombstone has no content to describe"
    assert messages[4].headers == [("dlq.reason", b"delivery_failed"), *KAFKA_HEADERS]
    assert f.pending() == 0


def test_a_row_that_names_its_own_content_type_keeps_it(flow):
    f = flow()
    f.add_outbox_row("v-dead", '{"id": "x"}', headers=[["content-type", "application/json"]])

    assert OutboxRelay(f.db, f.outbox, f.producer).publish_batch() == 1

    [message] = f.backend.read(f.topic)
    assert message.headers == [("content-type", b"application/json")]


def test_rows_stay_pending_while_the_broker_refuses_them_and_go_out_once_it_takes_them(flow):
    f = flow()
    documents = [f.closed(f"v-{n}") for n in range(2)]
    for document in documents:
        f.add_outbox_row(document["subject"], encode_event(document).decode())
    relay = OutboxRelay(f.db, f.outbox, f.producer)
    f.backend.refuse_sends(f.producer)

    with pytest.raises(KafkaError):
        relay.publish_batch(send_timeout_s=3)
    assert f.pending() == 2, "nothing is marked sent that the broker did not take"
    assert f.backend.read(f.topic) == []

    assert relay.publish_batch() == 2
    assert sorted(json.loads(m.value)["id"] for m in f.backend.read(f.topic)) == sorted(d["id"] for d in documents)
    assert f.pending() == 0


# --------------------------------------------------------------------------------------------------------
# The consumer loop


def test_events_are_handled_once_in_key_order_and_committed_only_after_their_effect(flow):
    partitions = 3
    f = flow(partitions)
    subjects = [f"v-{n}" for n in range(4)]
    for subject in subjects:
        f.send(subject, f.closed(subject), key=f.key("one-entity"))
    consumer = f.consumer()
    real_commit = consumer.consumer.commit
    effects_at_commit = []

    def watching_commit(offsets):
        effects_at_commit.append(({tp.partition: o.offset for tp, o in offsets.items()}, len(f.effect_rows())))
        return real_commit(offsets)

    consumer.consumer.commit = watching_commit

    assert f.drain(consumer, 4) == (4, 0)

    assert f.effect_rows() == [("effect", subject) for subject in subjects]
    home = partition_for(f.key("one-entity").encode(), partitions)
    assert {m.partition for m in f.backend.read(f.topic)} == {home}, "one key, one partition: Kafka's murmur2"
    assert effects_at_commit, "offsets were committed"
    for committed, stored in effects_at_commit:
        assert list(committed) == [home]
        assert stored >= committed[home], "an offset is committed only once its effect is stored"
    assert f.backend.committed(f.group, TopicPartition(f.topic, home)) == 4


def test_an_event_redelivered_after_a_crash_before_the_commit_has_no_second_effect(flow):
    f = flow()
    documents = [f.closed(f"v-{n}") for n in range(2)]
    for document in documents:
        f.send(document["subject"], document, key=f.key("crash"))
    first = f.consumer()
    f.backend.refuse_commits(first.consumer)

    with pytest.raises(KafkaError):
        for _ in range(f.backend.rounds):
            first.poll_once(timeout_ms=f.backend.poll_ms)
    assert f.processed_ids() <= {d["id"] for d in documents}
    handled_before_the_crash = len(f.effect_rows())
    assert handled_before_the_crash >= 1
    first.consumer.close(autocommit=False)  # the process dies: its partitions go to the next consumer
    assert f.committed_total() == 0

    second = f.consumer()
    assert f.drain(second, 2) == (2, 0), "the uncommitted messages come again"

    assert sorted(subject for _, subject in f.effect_rows()) == ["v-0", "v-1"], "once each"
    assert f.processed_ids() == {d["id"] for d in documents}
    assert f.committed_total() == 2


def _poison(f: Flow, kind: str) -> bytes:
    if kind == "undecodable":
        return b"\xff\xfe not json"
    document = f.closed("poison")
    if kind == "unknown_type":
        document["type"] = "nl.werkbrug.vacancy.exploded"
    else:
        document["data"] = {"employer_id": "e", "status": "on fire"}
    return encode_event(document)


@pytest.mark.parametrize(
    ("kind", "reason"), [("undecodable", "undecodable"), ("schema", "invalid"), ("unknown_type", "unknown_type")]
)
def test_a_poison_message_is_dead_lettered_unchanged_with_its_origin_and_the_next_one_is_handled(flow, kind, reason):
    f = flow()
    poison = _poison(f, kind)
    f.send("poison", poison)
    f.send("v-ok", f.closed("v-ok"))
    consumer = f.consumer()

    assert f.drain(consumer, 2) == (2, 0)

    assert f.effect_rows() == [("effect", "v-ok")]
    [dead] = f.dead_letters("poison")
    assert dead.value == poison
    headers = {name: content.decode() for name, content in dead.headers}
    assert headers["dlq.original.topic"] == f.topic
    assert (headers["dlq.original.partition"], headers["dlq.original.offset"]) == ("0", "0")
    assert headers["dlq.consumer.group"] == f.group
    assert headers["dlq.reason"] == reason
    assert headers["dlq.exception.message"]
    assert f.committed_total() == 2


def test_a_dead_letter_keeps_the_messages_own_headers_and_says_it_is_a_cloudevent(flow):
    f = flow()
    poison = _poison(f, "schema")
    f.send("traced", poison, headers=[("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
    f.send("labelled", poison, headers=[("content-type", b"application/cloudevents+json; charset=utf-8")])

    assert f.drain(f.consumer(), 2) == (2, 0)

    [traced] = f.dead_letters("traced")
    assert traced.headers[:2] == [
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        *KAFKA_HEADERS,
    ]
    [labelled] = f.dead_letters("labelled")
    assert labelled.headers[0] == ("content-type", b"application/cloudevents+json; charset=utf-8")
    assert [name for name, _ in labelled.headers].count("content-type") == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(KAFKA_HEADERS, id="structured-mode"),
        pytest.param([("Content-Type", b"application/cloudevents+json; charset=UTF-8")], id="with-parameters"),
        pytest.param(None, id="older-producer-without-header"),
    ],
)
def test_an_event_with_extension_attributes_is_handled_and_they_reach_the_handler(flow, headers):
    f = flow()
    document = f.closed("v-traced") | {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "congo=t61rcWkgMzE",
        "partitionkey": "noord-limburg/v-traced",
        "sequence": 7,
        "sampled": True,
        "comexampleunset": None,
    }
    seen = []
    consumer = f.consumer({CLOSED: [lambda _session, event: seen.append(event.extensions)]})
    f.send("v-traced", document, headers=headers)

    assert f.drain(consumer, 1) == (1, 0)

    assert seen == [
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE",
            "partitionkey": "noord-limburg/v-traced",
            "sequence": 7,
            "sampled": True,
        }
    ]
    assert f.dead_letters("v-traced") == []
    assert f.committed_total() == 1


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        pytest.param({"Traceparent": "x"}, None, id="upper-case-attribute-name"),
        pytest.param({"data_base64": "eyJ9"}, None, id="binary-data-member"),
        pytest.param({"comexample": {"nested": 1}}, None, id="extension-value-an-object"),
        pytest.param({"comexample": 1.5}, None, id="extension-value-a-fraction"),
        pytest.param({}, [("content-type", b"application/json"), ("ce_type", b"x")], id="binary-content-mode"),
        pytest.param({}, [("content-type", b"application/cloudevents-batch+json")], id="batched-mode"),
    ],
)
def test_what_breaks_the_cloudevents_rules_is_dead_lettered(flow, change, headers):
    f = flow()
    f.send("v-broken", f.closed("v-broken") | change, headers=headers)

    assert f.drain(f.consumer(), 1) == (1, 0)

    assert f.effect_rows() == []
    [dead] = f.dead_letters("v-broken")
    assert dict(dead.headers)["dlq.reason"] in (b"invalid", b"undecodable")


def test_a_type_this_worker_has_no_handler_for_is_skipped_without_a_dead_letter(flow):
    f = flow()
    posted = load_example(POSTED) | {"id": str(uuid.uuid4()), "tenant": f.tenant, "subject": "v-posted"}
    f.send("v-posted", posted)
    f.send("v-closed", f.closed("v-closed"))
    consumer = f.consumer()

    assert f.drain(consumer, 2) == (2, 0)

    assert f.effect_rows() == [("effect", "v-closed")]
    assert posted["id"] not in f.processed_ids()
    assert f.dead_letters("v-posted") == []
    assert f.committed_total() == 2


def test_a_tombstone_reaches_its_topics_tombstone_handlers_in_order_and_one_without_a_subject_is_dead_lettered(
    flow,
):
    f = flow()
    f.send("c-erased", None)
    f.send("", None, key=f"{f.tenant}-no-subject")
    f.send("v-1", f.closed("v-1"))
    consumer = f.consumer(
        tombstone_handlers={f.topic: [f.tombstone_handler("forget"), f.tombstone_handler("forget-too")]}
    )

    assert f.drain(consumer, 3) == (3, 0)

    assert f.effect_rows() == [("forget", "c-erased"), ("forget-too", "c-erased"), ("effect", "v-1")]
    [dead] = f.backend.read(str(Topic.DEAD_LETTERS), key_prefix=f"{f.tenant}-no-subject".encode())
    assert dead.value is None
    assert dict(dead.headers)["dlq.reason"] == b"invalid"
    assert f.committed_total() == 3


def test_the_handlers_of_a_type_run_in_order_in_one_transaction_and_are_retried_together(flow):
    f = flow()
    calls: list = []
    failures = {"left": 1}

    def fail_once(event) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ValueError("a passing hiccup")

    handlers = {
        CLOSED: [f.handler("first", calls), f.handler("second", calls, fail=fail_once), f.handler("third", calls)]
    }
    f.send("v-1", f.closed("v-1"))
    consumer = f.consumer(handlers)

    assert f.drain(consumer, 1) == (1, 0)

    assert [name for name, _ in calls] == ["first", "second", "first", "second", "third"]
    assert f.effect_rows() == [("first", "v-1"), ("second", "v-1"), ("third", "v-1")], (
        "the first attempt's effect was rolled back with the failure"
    )
    assert f.dead_letters("v-1") == []


def test_a_handler_that_keeps_failing_is_retried_then_dead_lettered_and_its_partners_effects_undone(flow):
    f = flow()
    calls: list = []

    def broken_for_v_bug(event) -> None:
        if event.subject == "v-bug":
            raise ValueError("a bug in the handler")

    handlers = {CLOSED: [f.handler("first", calls), f.handler("broken", calls, fail=broken_for_v_bug)]}
    bug = f.closed("v-bug")
    f.send("v-bug", bug)
    f.send("v-ok", f.closed("v-ok"))
    consumer = f.consumer(handlers)

    assert f.drain(consumer, 2) == (2, 0)

    assert calls.count(("broken", "v-bug")) == 3, "max_attempts tries"
    assert f.effect_rows() == [("first", "v-ok"), ("broken", "v-ok")]
    assert bug["id"] not in f.processed_ids()
    [dead] = f.dead_letters("v-bug")
    headers = dict(dead.headers)
    assert (headers["dlq.reason"], headers["dlq.exception.class"]) == (b"handler_error", b"ValueError")
    assert f.committed_total() == 2


def test_a_commit_refused_mid_batch_rewinds_every_partition_so_no_message_is_skipped(flow):
    partitions = 3
    f = flow(partitions)
    subjects = [f"v-{n}" for n in range(12)]
    for subject in subjects:
        f.send(subject, f.closed(subject))
    consumer = f.consumer()
    f.backend.refuse_commits(consumer.consumer)

    # A poll that raised took messages it did not count, so wait for the effects rather than a count.
    _, raised = f.drain(consumer, 0, tolerate=(KafkaError,), until=lambda: len(f.effect_rows()) >= len(subjects))

    assert raised == 1
    assert sorted(subject for _, subject in f.effect_rows()) == sorted(subjects), "each once, none skipped"
    # The partition whose commit was refused stays behind until its next message: whatever a restart
    # reads again there finds its effect stored already.
    behind = len(subjects) - f.committed_total(partitions)
    assert behind >= 0
    consumer.consumer.close(autocommit=False)
    assert f.drain(f.consumer(), behind) == (behind, 0)
    assert sorted(subject for _, subject in f.effect_rows()) == sorted(subjects)
    assert f.committed_total(partitions) == len(subjects)


def test_a_database_outage_mid_batch_rewinds_without_dead_lettering(flow):
    f = flow()
    failures = {"left": 1}

    def database_away_at_v_1(event) -> None:
        if event.subject == "v-1" and failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is restarting"))

    subjects = [f"v-{n}" for n in range(3)]
    for subject in subjects:
        f.send(subject, f.closed(subject), key=f.key("one-entity"))
    consumer = f.consumer({CLOSED: [f.handler("effect", fail=database_away_at_v_1)]})

    _, raised = f.drain(consumer, 0, tolerate=(OperationalError,), until=lambda: len(f.effect_rows()) >= 3)

    assert raised == 1
    assert f.effect_rows() == [("effect", subject) for subject in subjects], "in order, none skipped, none twice"
    assert f.dead_letters("one-entity") == []
    assert f.committed_total() == 3


# --------------------------------------------------------------------------------------------------------
# Group membership


class _Heard(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    def on_partitions_revoked(self, revoked) -> None:
        self.calls.append(("revoked", sorted(tp.partition for tp in revoked)))

    def on_partitions_assigned(self, assigned) -> None:
        self.calls.append(("assigned", sorted(tp.partition for tp in assigned)))


def test_a_rebalance_listener_hears_the_first_assignment_inside_poll(backend: Backend):
    """A worker is ready once its listener has heard its partitions (shared/worker.py)."""
    topic = backend.topic(partitions=2)
    heard = _Heard()
    consumer = backend.consumer(f"contract-{uuid.uuid4().hex[:8]}", [topic], listener=heard)
    assert heard.calls == [], "nothing is assigned before the first poll joins the group"
    for _ in range(backend.rounds):
        consumer.poll(timeout_ms=backend.poll_ms)
        if heard.calls and heard.calls[-1] == ("assigned", [0, 1]):
            break
    # kafka-python's eager protocol revokes what the member held (nothing yet) before every join. A join
    # made before the consumer's metadata knows the new topic hands out nothing, and the next one all.
    assert heard.calls[0] == ("revoked", [])
    assert heard.calls[-1] == ("assigned", [0, 1])
    assert [what for what, _ in heard.calls] == ["revoked", "assigned"] * (len(heard.calls) // 2)
    assert consumer.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
