"""Every event type has a schema, a topic and an example message that its own schema accepts."""

from __future__ import annotations

import json

import pytest

from shared.events import (
    EVENT_TYPES,
    EXAMPLES_DIR,
    InvalidEvent,
    UndecodableEvent,
    UnknownEventType,
    decode_event,
    encode_event,
    load_example,
    message_key,
    new_event,
)
from shared.topics import TOPIC_SPECS, Topic

CONTRACT_TYPES = {
    "nl.werkbrug.candidate.registered",
    "nl.werkbrug.candidate.updated",
    "nl.werkbrug.candidate.erased",
    "nl.werkbrug.vacancy.posted",
    "nl.werkbrug.vacancy.updated",
    "nl.werkbrug.vacancy.closed",
    "nl.werkbrug.match.proposed",
    "nl.werkbrug.placement.started",
    "nl.werkbrug.placement.checked_in",
    "nl.werkbrug.placement.at_risk",
    "nl.werkbrug.placement.checkin_overdue",
    "nl.werkbrug.placement.ended",
}


def test_every_type_of_the_design_has_a_schema():
    assert set(EVENT_TYPES) >= CONTRACT_TYPES


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_every_example_message_is_valid_against_its_schema(type_name):
    example = load_example(type_name)
    event = decode_event(json.dumps(example).encode())
    assert event.type == type_name
    assert event.tenant == example["tenant"]
    assert event.topic == EVENT_TYPES[type_name].topic


def test_there_is_no_example_without_a_type():
    names = {path.name.removesuffix(".json") for path in EXAMPLES_DIR.glob("*.json")}
    assert names == set(EVENT_TYPES)


# The one address that travels: a jobcoach's work e-mail, so that an employer can reach the jobcoach after
# an accepted introduction. It is a professional's, and its event names no candidate.
PROFESSIONAL_CONTACT_TYPES = {"nl.werkbrug.jobcoach.channels_changed"}


@pytest.mark.parametrize("type_name", sorted(set(EVENT_TYPES) - PROFESSIONAL_CONTACT_TYPES))
def test_examples_carry_no_names_or_contact_details(type_name):
    text = json.dumps(load_example(type_name)).lower()
    for forbidden in ("display_name", "email", "phone", "address", "bsn", "diagnos"):
        assert forbidden not in text


@pytest.mark.parametrize("type_name", sorted(PROFESSIONAL_CONTACT_TYPES))
def test_the_professional_contact_event_names_no_candidate(type_name):
    data = load_example(type_name)["data"]
    assert set(data) == {"jobcoach_id", "work_email"}
    assert "candidate" not in json.dumps(load_example(type_name))


def test_a_new_event_round_trips_through_the_wire_format():
    data = load_example("nl.werkbrug.vacancy.posted")["data"]
    document = new_event("nl.werkbrug.vacancy.posted", tenant="achterhoek", subject="v-1", data=data, source="vacancy")
    event = decode_event(encode_event(document))
    assert event.id == document["id"]
    assert event.key == "achterhoek/v-1" == message_key("achterhoek", "v-1")
    assert event.data["skills"] == data["skills"]
    assert event.time.tzinfo is not None


def test_a_producer_cannot_build_an_event_its_consumers_would_reject():
    with pytest.raises(InvalidEvent):
        new_event("nl.werkbrug.vacancy.closed", tenant="achterhoek", subject="v", data={"status": "x"}, source="t")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (None, UndecodableEvent),
        (b"\x00\xff", UndecodableEvent),
        (b"not json", UndecodableEvent),
        (b'"a string"', UndecodableEvent),
        (b"{}", InvalidEvent),
    ],
)
def test_undecodable_messages_raise_an_error_naming_why(raw, error):
    with pytest.raises(error):
        decode_event(raw)


def _example_with(**changes) -> bytes:
    document = load_example("nl.werkbrug.vacancy.closed")
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"type": "nl.werkbrug.vacancy.exploded"}, UnknownEventType),
        ({"type": "nl.werkbrug.vacancy.closed.v9"}, UnknownEventType),
        ({"specversion": "0.3"}, InvalidEvent),
        ({"id": "not-a-uuid"}, InvalidEvent),
        ({"tenant": "Not A Slug"}, InvalidEvent),
        ({"time": "yesterday"}, InvalidEvent),
        ({"time": "2026-11-23T10:00:00"}, InvalidEvent),
        ({"data": {"employer_id": "e", "status": "burning"}}, InvalidEvent),
        ({"Surprise": 1}, InvalidEvent),
        ({"sur_prise": 1}, InvalidEvent),
        ({"surprise": [1]}, InvalidEvent),
        ({"surprise": 2**31}, InvalidEvent),
        ({"datacontenttype": "text/plain"}, InvalidEvent),
    ],
)
def test_envelopes_and_payloads_that_break_the_contract_are_refused(changes, error):
    with pytest.raises(error):
        decode_event(_example_with(**changes))


def test_unknown_extension_attributes_are_kept_and_the_payload_still_checked():
    event = decode_event(_example_with(surprise=1, traceparent="00-abc", dataschema="https://example.org/s"))

    assert event.extensions == {"surprise": 1, "traceparent": "00-abc"}
    with pytest.raises(InvalidEvent):
        decode_event(_example_with(surprise=1, data={"employer_id": "e", "status": "burning"}))


def test_consumers_tolerate_a_field_added_to_a_payload():
    document = load_example("nl.werkbrug.vacancy.closed")
    document["data"]["reason_code"] = "filled_elsewhere"
    assert decode_event(json.dumps(document).encode()).data == {"employer_id": "emp-017", "status": "closed"}


def test_every_topic_is_named_once_and_candidate_events_are_compacted():
    assert {spec.topic for spec in TOPIC_SPECS} == set(Topic)
    [candidates] = [spec for spec in TOPIC_SPECS if spec.topic is Topic.CANDIDATE_EVENTS]
    assert candidates.config["cleanup.policy"] == "compact"
