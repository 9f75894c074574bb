"""The compiled loaders agree with marshmallow: whatever they accept, marshmallow accepts and loads alike.

Every example event and thousands of altered copies of it (each member deleted, replaced by values of
every JSON kind and edge, or joined by an unknown member, at every depth) go through both. A compiled
loader may give up on a document (marshmallow then decides), but it may never accept one marshmallow
refuses, nor load one differently.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
import pytest
from marshmallow import fields, validate

from shared.events import (
    EVENT_TYPES,
    EnvelopeSchema,
    _payload_schema,
    compiled,
    decode_event,
    encode_event,
    load_example,
)

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    7,
    41,
    2**31,
    2**60,
    1.5,
    -0.5,
    91.0,
    math.nan,
    math.inf,
    "",
    "x",
    "x" * 201,
    "1234",
    "0123",
    "12",
    "true",
    "schoonmaak",
    "nl.werkbrug.vacancy.posted",
    "application/json",
    "1.0",
    "2026-01-01",
    "2026-01-01T09:30:00Z",
    "2026-01-01T09:30:00",
    "2026-01-01T09:30:00+02:00",
    str(uuid.UUID(int=7)),
    uuid.UUID(int=9).hex,
    [],
    ["x"],
    [""],
    [1],
    [None],
    [{"code": "job_coach", "level": "high"}],
    {},
    {"a": 1},
    {"postcode": "1234"},
]


def _variants(document: Any) -> Iterator[Any]:
    """Copies of ``document`` with one change each, at every depth."""
    if isinstance(document, dict):
        yield {**document, "unknownmember": "x"}
        for key in document:
            yield {name: value for name, value in document.items() if name != key}
            for odd in ODD_VALUES:
                yield {**document, key: copy.deepcopy(odd)}
            for inner in _variants(document[key]):
                yield {**document, key: inner}
    elif isinstance(document, list):
        for index in range(len(document)):
            yield document[:index] + document[index + 1 :]
            for odd in ODD_VALUES:
                yield [*document[:index], copy.deepcopy(odd), *document[index + 1 :]]
            for inner in _variants(document[index]):
                yield [*document[:index], inner, *document[index + 1 :]]
        yield [*document, *document[:1]]


def _agree(schema: ma.Schema, document: Any) -> bool:
    """Check one document; True when the compiled loader accepted it."""
    loader = compiled.compile_loader(schema)
    assert loader is not None
    try:
        fast = loader(copy.deepcopy(document))
    except compiled.NotSure:
        return False
    # Accepted by the compiled loader: marshmallow must accept it too, and load the same.
    assert schema.load(copy.deepcopy(document)) == fast, document
    return True


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_payload_schema_is_compiled_and_agrees_with_marshmallow_on_altered_examples(event_type):
    schema = _payload_schema(event_type)
    example = load_example(event_type)["data"]
    assert _agree(schema, example), "the example itself must take the fast way"
    accepted = refused = 0
    for variant in _variants(example):
        if _agree(schema, variant):
            accepted += 1
        else:
            refused += 1
    # Both ways are exercised: altered documents that still pass, and ones left to marshmallow.
    assert accepted and refused


def test_the_envelope_schema_is_compiled_and_agrees_with_marshmallow():
    schema = EnvelopeSchema()
    example = load_example("nl.werkbrug.vacancy.posted")
    envelope = {name: value for name, value in example.items() if name in EnvelopeSchema().fields}
    assert _agree(schema, envelope)
    accepted = sum(_agree(schema, variant) for variant in _variants(envelope))
    assert accepted


def test_a_refused_document_gets_marshmallows_own_messages():
    example = copy.deepcopy(load_example("nl.werkbrug.vacancy.posted"))
    example["data"]["hours_min"], example["data"]["hours_max"] = 30, 10
    with pytest.raises(ma.ValidationError) as refused:
        compiled.load(_payload_schema("nl.werkbrug.vacancy.posted"), example["data"])
    assert refused.value.messages == {"hours_max": ["must be at least hours_min"]}
    assert compiled.validate(_payload_schema("nl.werkbrug.vacancy.posted"), example["data"]) == {
        "hours_max": ["must be at least hours_min"]
    }


def test_decoding_by_the_compiled_loaders_gives_the_event_marshmallow_gives():
    example = load_example("nl.werkbrug.candidate.registered")
    fast = decode_event(encode_event(example))
    original = compiled._loader_for
    compiled._loader_for.cache_clear()
    try:
        compiled._loader_for = lambda _schema: None  # type: ignore[assignment]
        slow = decode_event(encode_event(example))
    finally:
        compiled._loader_for = original
    assert fast == slow


def test_schemas_with_features_it_does_not_follow_are_left_to_marshmallow():
    class Renamed(ma.Schema):
        name = fields.String(data_key="Name")

    class Preloaded(ma.Schema):
        name = fields.String()

        @ma.pre_load
        def _trim(self, data, **_kwargs):
            return data

    class Including(ma.Schema):
        class Meta:
            unknown = ma.INCLUDE

        name = fields.String()

    class Email(ma.Schema):
        address = fields.Email()

    for schema in (Renamed(), Preloaded(), Including()):
        assert compiled.compile_loader(schema) is None
    # A field kind without a fast check of its own is loaded by the field itself, validators included.
    email = Email()
    assert compiled.load(email, {"address": "a@example.org"}) == {"address": "a@example.org"}
    with pytest.raises(ma.ValidationError):
        compiled.load(email, {"address": "not an address"})


def test_a_validator_that_answers_false_is_left_to_marshmallow():
    # marshmallow 3 refused a value when a plain function validator returned False; whatever the installed
    # version does, the compiled loader gives up and the answer is marshmallow's.
    class Picky(ma.Schema):
        count = fields.Integer(validate=[validate.Range(0, 10), lambda value: value != 3])

    loader = compiled.compile_loader(Picky())
    assert loader is not None
    assert loader({"count": 4}) == {"count": 4}
    with pytest.raises(compiled.NotSure):
        loader({"count": 3})
    try:
        expected: Any = Picky().load({"count": 3})
    except ma.ValidationError as refused:
        expected = refused.messages
    try:
        answer: Any = compiled.load(Picky(), {"count": 3})
    except ma.ValidationError as refused:
        answer = refused.messages
    assert answer == expected
