"""Werkbrug's event contracts: the CloudEvents envelope and one schema per event type and version.

Every message on every topic is a CloudEvents 1.0 JSON document in structured mode with the extension
attribute ``tenant``. Payload schemas live here and only here; producers build events with
:func:`new_event` and consumers read them with :func:`decode_message`. A breaking change to a payload gets
a new type suffix (``.v2``) next to the old schema, never an edit of it.

The Kafka binding (structured mode) is kept here too: every message carries ``content-type:
application/cloudevents+json`` (:data:`KAFKA_HEADERS`), and extension attributes a reader does not know
(``traceparent``, ``tracestate``, ``origintime``, anything a router adds) are accepted and kept on
:attr:`Event.extensions`, while the envelope's own attributes and the payloads stay strict.

The ``cloudevents`` SDK (2.2) is not used. Its Kafka binding is one header on the way out, and on the way in
``from_structured`` neither checks that header nor knows our required attributes (``tenant``, ``subject``,
``time``, ``datacontenttype``) or payload schemas, so every message would still pass the validation below
after a second parse; it would also add its ``partitionkey`` extension from the message key and two
dependencies (python-dateutil, deprecation) for a regular expression on attribute names.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from shared.events import compiled
from shared.topics import Topic
from shared.vocabulary import (
    MAX_HOURS_PER_WEEK,
    SUPPORT_CODES,
    SUPPORT_LEVELS,
    VACANCY_KIND_RUNG,
    VACANCY_STATUSES,
)

EXAMPLES_DIR = Path(__file__).with_name("examples")
PLACEMENT_OUTCOMES = ("retained", "moved_to_paid_work", "step_up", "ended_by_candidate", "ended_by_employer")
# Every alert type any inbox holds; the events that report alerts name one of these.
ALERT_TYPES = (
    "match_proposed",
    "placement_at_risk",
    "checkin_overdue",
    "placement_at_risk_escalated",
    "checkin_overdue_escalated",
    "out_of_sight",
    "employer_interest",
    "caseload_over_limit",
)
TENANT_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"

# The CloudEvents Kafka binding, structured mode: the whole event is the message value, and this header
# says so. A message without it is read as structured too: older producers sent none, and the compacted
# candidate-events topic keeps their messages for good.
CONTENT_TYPE_HEADER = "content-type"
CLOUDEVENTS_JSON = "application/cloudevents+json"
KAFKA_HEADERS: list[tuple[str, bytes]] = [(CONTENT_TYPE_HEADER, CLOUDEVENTS_JSON.encode("ascii"))]
# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits.
EXTENSION_NAME = re.compile(r"[a-z0-9]+")
# An extension's value in the JSON format: a string, a whole number or a boolean (the spec's type system has
# no maps, lists or fractions).
ExtensionValue = str | int | bool


class EventError(Exception):
    """A message that cannot be handled, whatever the number of attempts: it belongs in dead-letters."""

    reason = "invalid"


class UndecodableEvent(EventError):
    reason = "undecodable"


class UnknownEventType(EventError):
    reason = "unknown_type"


class InvalidEvent(EventError):
    reason = "invalid"


class _Payload(ma.Schema):
    class Meta:
        # A producer that adds a field must not break a consumer that does not know it yet.
        unknown = ma.EXCLUDE


class SupportNeedSchema(_Payload):
    code = fields.String(required=True, validate=validate.OneOf(SUPPORT_CODES))
    level = fields.String(required=True, validate=validate.OneOf(SUPPORT_LEVELS))


class CandidateLocationSchema(_Payload):
    postcode = fields.String(required=True, validate=validate.Regexp(r"^[1-9][0-9]{3}$"))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    max_travel_km = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 500))


class VacancyLocationSchema(_Payload):
    postcode = fields.String(required=True, validate=validate.Regexp(r"^[1-9][0-9]{3}$"))
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))


class ConsentSchema(_Payload):
    matching = fields.Boolean(required=True)
    share_with_employers = fields.Boolean(required=True)


_hours = validate.Range(0, MAX_HOURS_PER_WEEK)


def _whole(**kwargs) -> fields.Integer:
    """A whole number that refuses 2.5 instead of quietly storing 2."""
    return fields.Integer(strict=True, **kwargs)


_phrases = fields.List(
    fields.String(validate=validate.Length(min=1, max=200)), load_default=list, validate=validate.Length(max=50)
)


class HoursRangeMixin:
    @ma.validates_schema
    def _hours_ordered(self, data, **_kwargs):
        low, high = data.get("hours_min"), data.get("hours_max")
        if low is not None and high is not None and low > high:
            raise ma.ValidationError("must be at least hours_min", "hours_max")


class CandidateFieldsSchema(HoursRangeMixin, _Payload):
    """A candidate's facts as both the API and the events carry them: no name, no contact, no diagnosis."""

    talents = _phrases
    preferences = _phrases
    support_needs = fields.List(fields.Nested(SupportNeedSchema), load_default=list, validate=validate.Length(max=12))
    hours_min = _whole(required=True, validate=_hours)
    hours_max = _whole(required=True, validate=_hours)
    ladder_step = _whole(required=True, validate=validate.Range(1, 6))
    location = fields.Nested(CandidateLocationSchema, required=True)
    consent = fields.Nested(ConsentSchema, required=True)
    target_group_register = fields.Boolean(load_default=False)

    @ma.validates_schema
    def _one_level_per_need(self, data, **_kwargs):
        # A schema-level check runs only once every need passed its own validation. A PATCH loads with
        # partial=True, which reaches the nested needs too, so a need may lack its code here (the merged
        # profile is then validated in full and refused).
        codes = [need["code"] for need in data.get("support_needs", []) if "code" in need]
        if len(codes) != len(set(codes)):
            raise ma.ValidationError("each support code may appear once", "support_needs")


class CandidateProfilePayload(CandidateFieldsSchema):
    """What the matching and notification services may know of a candidate."""

    jobcoach_id = fields.String(required=True, validate=validate.Length(min=1, max=100))


class CandidateErasedPayload(_Payload):
    jobcoach_id = fields.String(required=True)


class VacancyFieldsSchema(HoursRangeMixin, _Payload):
    """A vacancy's facts as both the API and the events carry them."""

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=10_000))
    tasks = _phrases
    skills = _phrases
    supports_offered = fields.List(
        fields.String(validate=validate.OneOf(SUPPORT_CODES)), load_default=list, validate=validate.Length(max=12)
    )
    hours_min = _whole(required=True, validate=_hours)
    hours_max = _whole(required=True, validate=_hours)
    kind = fields.String(required=True, validate=validate.OneOf(VACANCY_KIND_RUNG))
    positions = _whole(required=True, validate=validate.Range(0, 10_000))
    location = fields.Nested(VacancyLocationSchema, required=True)
    banenafspraak = fields.Boolean(load_default=False)


class VacancyPayload(VacancyFieldsSchema):
    employer_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    status = fields.String(required=True, validate=validate.OneOf(VACANCY_STATUSES))


class VacancyClosedPayload(_Payload):
    employer_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("filled", "closed")))


class MatchProposedPayload(_Payload):
    candidate_id = fields.String(required=True)
    vacancy_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    vacancy_title = fields.String(required=True)
    score = fields.Float(required=True, validate=validate.Range(0, 1))
    # No longer sent: it named the candidate's talents and support needs, facts that may travel only where a
    # tombstone erases them (match-events has none). Matching's API shows it. Kept optional so that earlier
    # messages still decode.
    explanation = fields.Dict(load_default=None, allow_none=True)
    ranking_version = fields.String(required=True)


class PlacementStartedPayload(_Payload):
    candidate_id = fields.String(required=True)
    vacancy_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    start_date = fields.Date(required=True)
    agreed_hours = _whole(required=True, validate=_hours)
    # No longer sent: the supports tell of the candidate's needs, and placement-events has no tombstone.
    supports_agreed = fields.List(fields.String(validate=validate.OneOf(SUPPORT_CODES)), load_default=list)


class PlacementCheckedInPayload(_Payload):
    """That a check-in happened and the risk it left. What the check-in said (wellbeing, hours, absence,
    signals) is health-related and stays in matching, which erases it: placement-events has no tombstone.
    Those fields are no longer sent and optional, so that earlier messages still decode."""

    candidate_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    date = fields.Date(required=True)
    wellbeing = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 5))
    hours_worked = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 168))
    absence_days = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 7))
    signals = fields.List(fields.String(validate=validate.Length(max=60)), load_default=list)
    # Added after the first version; optional so that earlier messages still decode.
    vacancy_id = fields.String(load_default=None, allow_none=True)
    risk_score = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 1))
    model_version = fields.String(load_default=None, allow_none=True)


class PlacementAtRiskPayload(_Payload):
    candidate_id = fields.String(required=True)
    vacancy_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    score = fields.Float(required=True, validate=validate.Range(0, 1))
    # No longer sent: the reasons name the check-ins' signals. Matching's API shows them; optional so that
    # earlier messages still decode.
    reasons = fields.List(fields.Dict(), load_default=list)
    episode = fields.Integer(required=True, validate=validate.Range(min=1))
    model_version = fields.String(required=True)
    threshold = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 1))


class PlacementCheckinOverduePayload(_Payload):
    candidate_id = fields.String(required=True)
    vacancy_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    last_checkin = fields.Date(required=True, allow_none=True)
    due_since = fields.Date(required=True)
    episode = fields.Integer(required=True, validate=validate.Range(min=1))
    cadence_days = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))


class PlacementEndedPayload(_Payload):
    candidate_id = fields.String(required=True)
    vacancy_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    end_date = fields.Date(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(PLACEMENT_OUTCOMES))
    # Set by matching when the outcome moves the person up the Participatieladder, so that the candidate
    # service, which owns the step, can raise it without knowing the vacancy.
    ladder_step_after = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(1, 6))


class AlertAcknowledgedPayload(_Payload):
    """Told by the notification service so that bundled insights can report time to acknowledge, and the
    caseload can count an acknowledgement as contact."""

    alert_type = fields.String(required=True, validate=validate.OneOf(ALERT_TYPES))
    # Operators' alerts (caseload over limit) are about a jobcoach and no candidate.
    candidate_id = fields.String(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    acknowledged_at = fields.AwareDateTime(required=True)
    # Added in round 2; optional so that earlier messages still decode.
    alert_id = fields.String(load_default=None, allow_none=True)
    jobcoach_id = fields.String(load_default=None, allow_none=True)


class AlertRaisedPayload(_Payload):
    """An alert was put in an inbox: the caseload counts open alerts from these and the acknowledgements."""

    alert_type = fields.String(required=True, validate=validate.OneOf(ALERT_TYPES))
    # Operators' alerts (escalations, caseload over limit) may be about a jobcoach and no candidate.
    candidate_id = fields.String(load_default=None, allow_none=True)
    jobcoach_id = fields.String(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class JobcoachChannelsChangedPayload(_Payload):
    """A jobcoach's work e-mail, the one way an employer may reach them after an accepted introduction.
    It is a professional's work address, never a candidate's: candidates' contact details never travel."""

    jobcoach_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    work_email = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=320))


class CandidateOutOfSightPayload(_Payload):
    """No contact with a candidate for the region's ``contact_days``: once per gap (``episode``)."""

    candidate_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    last_contact = fields.Date(required=True)
    contact_days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    episode = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class CaseloadOverLimitPayload(_Payload):
    """A jobcoach's caseload passed the region's ``caseload_limit``; a new episode only after it fell back."""

    jobcoach_id = fields.String(required=True)
    caseload = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    caseload_limit = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    episode = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class IntroductionPayload(_Payload):
    """An employer's interest in an anonymous profile, and the candidate's answer through their jobcoach.
    The subject is the introduction's id; the employer never learns the candidate id from the API."""

    candidate_id = fields.String(required=True)
    vacancy_id = fields.String(required=True)
    jobcoach_id = fields.String(required=True)
    employer_id = fields.String(required=True)
    vacancy_title = fields.String(load_default=None, allow_none=True)
    # Who recorded the answer and when: the consent history shows both.
    recorded_by = fields.String(load_default=None, allow_none=True)
    recorded_at = fields.AwareDateTime(load_default=None, allow_none=True)


class EventType(enum.StrEnum):
    """Every event type, named once; equal to its wire name, so it can stand wherever a type string did."""

    CANDIDATE_REGISTERED = "nl.werkbrug.candidate.registered"
    CANDIDATE_UPDATED = "nl.werkbrug.candidate.updated"
    CANDIDATE_ERASED = "nl.werkbrug.candidate.erased"
    VACANCY_POSTED = "nl.werkbrug.vacancy.posted"
    VACANCY_UPDATED = "nl.werkbrug.vacancy.updated"
    VACANCY_CLOSED = "nl.werkbrug.vacancy.closed"
    MATCH_PROPOSED = "nl.werkbrug.match.proposed"
    PLACEMENT_STARTED = "nl.werkbrug.placement.started"
    PLACEMENT_CHECKED_IN = "nl.werkbrug.placement.checked_in"
    PLACEMENT_AT_RISK = "nl.werkbrug.placement.at_risk"
    PLACEMENT_CHECKIN_OVERDUE = "nl.werkbrug.placement.checkin_overdue"
    PLACEMENT_ENDED = "nl.werkbrug.placement.ended"
    ALERT_ACKNOWLEDGED = "nl.werkbrug.alert.acknowledged"
    ALERT_RAISED = "nl.werkbrug.alert.raised"
    JOBCOACH_CHANNELS_CHANGED = "nl.werkbrug.jobcoach.channels_changed"
    CANDIDATE_OUT_OF_SIGHT = "nl.werkbrug.candidate.out_of_sight"
    CASELOAD_OVER_LIMIT = "nl.werkbrug.caseload.over_limit"
    INTRODUCTION_REQUESTED = "nl.werkbrug.introduction.requested"
    INTRODUCTION_ACCEPTED = "nl.werkbrug.introduction.accepted"
    INTRODUCTION_DECLINED = "nl.werkbrug.introduction.declined"


@dataclass(frozen=True)
class EventContract:
    """Where an event type travels and the schema its payload must pass."""

    event_type: EventType
    topic: Topic
    schema: type[ma.Schema]


def _contracts(*entries: tuple[EventType, Topic, type[ma.Schema]]) -> dict[str, EventContract]:
    return {str(name): EventContract(name, topic, schema) for name, topic, schema in entries}


EVENT_TYPES: dict[str, EventContract] = _contracts(
    (EventType.CANDIDATE_REGISTERED, Topic.CANDIDATE_EVENTS, CandidateProfilePayload),
    (EventType.CANDIDATE_UPDATED, Topic.CANDIDATE_EVENTS, CandidateProfilePayload),
    (EventType.CANDIDATE_ERASED, Topic.CANDIDATE_EVENTS, CandidateErasedPayload),
    (EventType.VACANCY_POSTED, Topic.VACANCY_EVENTS, VacancyPayload),
    (EventType.VACANCY_UPDATED, Topic.VACANCY_EVENTS, VacancyPayload),
    (EventType.VACANCY_CLOSED, Topic.VACANCY_EVENTS, VacancyClosedPayload),
    (EventType.MATCH_PROPOSED, Topic.MATCH_EVENTS, MatchProposedPayload),
    (EventType.PLACEMENT_STARTED, Topic.PLACEMENT_EVENTS, PlacementStartedPayload),
    (EventType.PLACEMENT_CHECKED_IN, Topic.PLACEMENT_EVENTS, PlacementCheckedInPayload),
    (EventType.PLACEMENT_AT_RISK, Topic.PLACEMENT_EVENTS, PlacementAtRiskPayload),
    (EventType.PLACEMENT_CHECKIN_OVERDUE, Topic.PLACEMENT_EVENTS, PlacementCheckinOverduePayload),
    (EventType.PLACEMENT_ENDED, Topic.PLACEMENT_EVENTS, PlacementEndedPayload),
    (EventType.ALERT_ACKNOWLEDGED, Topic.ALERT_EVENTS, AlertAcknowledgedPayload),
    (EventType.ALERT_RAISED, Topic.ALERT_EVENTS, AlertRaisedPayload),
    (EventType.JOBCOACH_CHANNELS_CHANGED, Topic.ALERT_EVENTS, JobcoachChannelsChangedPayload),
    (EventType.CANDIDATE_OUT_OF_SIGHT, Topic.MATCH_EVENTS, CandidateOutOfSightPayload),
    (EventType.CASELOAD_OVER_LIMIT, Topic.MATCH_EVENTS, CaseloadOverLimitPayload),
    (EventType.INTRODUCTION_REQUESTED, Topic.MATCH_EVENTS, IntroductionPayload),
    (EventType.INTRODUCTION_ACCEPTED, Topic.MATCH_EVENTS, IntroductionPayload),
    (EventType.INTRODUCTION_DECLINED, Topic.MATCH_EVENTS, IntroductionPayload),
)


class EnvelopeSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    specversion = fields.String(required=True, validate=validate.Equal("1.0"))
    id = fields.UUID(required=True)
    source = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.Length(min=1, max=200))
    time = fields.AwareDateTime(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    tenant = fields.String(required=True, validate=validate.Regexp(TENANT_PATTERN))
    datacontenttype = fields.String(required=True, validate=validate.Equal("application/json"))
    # Optional in CloudEvents 1.0; no producer of ours sets it, but a reader must not refuse it.
    dataschema = fields.String(validate=validate.Length(min=1, max=2000))
    data = fields.Dict(required=True)


ENVELOPE_ATTRIBUTES = frozenset(EnvelopeSchema().fields)


def split_extensions(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, ExtensionValue], dict]:
    """The envelope's own attributes, the extension attributes, and what breaks the rules for the latter.

    An unknown member is an extension when its name is a CloudEvents attribute name and its value one the
    JSON format allows; a null one counts as absent. Anything else (``Data``, ``data_base64``, a list) is
    not a valid CloudEvent and is named in the errors."""
    envelope: dict[str, Any] = {}
    extensions: dict[str, ExtensionValue] = {}
    errors: dict[str, list[str]] = {}
    for name, value in document.items():
        if name in ENVELOPE_ATTRIBUTES:
            envelope[name] = value
        elif not isinstance(name, str) or not EXTENSION_NAME.fullmatch(name):
            errors[str(name)] = ["not a CloudEvents attribute name (lower-case letters and digits)"]
        elif value is None:
            continue
        elif isinstance(value, bool | str) or (isinstance(value, int) and -(2**31) <= value < 2**31):
            extensions[name] = value
        else:
            errors[name] = ["an extension attribute is a string, a 32-bit integer or a boolean"]
    return envelope, extensions, errors


@dataclass(frozen=True)
class Event:
    """A decoded, validated event; ``data`` holds the payload as its schema loaded it."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str
    tenant: str
    data: dict[str, Any]
    # Extension attributes besides ``tenant``, as they came: passed on, never checked beyond their form.
    extensions: Mapping[str, ExtensionValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return message_key(self.tenant, self.subject)

    @property
    def topic(self) -> Topic:
        return EVENT_TYPES[self.type].topic


def message_key(tenant: str, subject: str) -> str:
    """Kafka key of an entity's events, so that one entity's events stay in order on one partition."""
    return f"{tenant}/{subject}"


@functools.cache
def _envelope_schema() -> EnvelopeSchema:
    # Built once, like the payload schemas below: a consumer decodes every message it takes.
    return EnvelopeSchema()


@functools.cache
def _payload_schema(type_name: str) -> ma.Schema:
    # Built once per type: a schema holds no state between validations, and building one deep-copies
    # all its fields, a cost every published event would otherwise pay.
    return EVENT_TYPES[type_name].schema()


def new_event(type_name: str, *, tenant: str, subject: str, data: dict[str, Any], source: str) -> dict:
    """Build a CloudEvents document, refusing a payload its own schema would reject downstream."""
    errors = compiled.validate(_payload_schema(type_name), data)
    if errors:
        raise InvalidEvent(f"{type_name} payload invalid: {errors}")
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type_name,
        "time": rfc3339(datetime.now(UTC)),
        "subject": subject,
        "tenant": tenant,
        "datacontenttype": "application/json",
        "data": json.loads(json.dumps(data, default=str)),
    }


def rfc3339(moment: datetime) -> str:
    """A CloudEvents timestamp: RFC 3339 in UTC, to the millisecond, as every event's ``time`` is written."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_event(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_type_of(headers: Iterable[tuple[str, bytes]] | None) -> str | None:
    """The media type a message's ``content-type`` header names (lower case, parameters dropped), if any."""
    for name, value in headers or ():
        if name.lower() == CONTENT_TYPE_HEADER:
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return None


def decode_message(raw: bytes | None, headers: Iterable[tuple[str, bytes]] | None = None) -> Event:
    """Decode one Kafka message by the CloudEvents binding: structured mode, with or without its header.

    A ``content-type`` other than ``application/cloudevents+json`` means another content mode (binary, with
    ``ce_`` headers, or batched), which no producer of ours uses: such a message cannot be handled."""
    content_type = content_type_of(headers)
    if content_type is not None and content_type != CLOUDEVENTS_JSON:
        raise UndecodableEvent(f"content type {content_type[:100]!r} is not structured-mode CloudEvents JSON")
    return decode_event(raw)


def decode_event(raw: bytes | None) -> Event:
    """Decode and validate one message; raise an :class:`EventError` naming why it cannot be handled."""
    if raw is None:
        raise UndecodableEvent("message has no value")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableEvent(f"not a JSON document: {exc}") from exc
    if not isinstance(document, dict):
        raise UndecodableEvent("not a JSON object")
    attributes, extensions, errors = split_extensions(document)
    try:
        envelope = compiled.load(_envelope_schema(), attributes)
    except ma.ValidationError as exc:
        raise InvalidEvent(f"not a valid CloudEvents envelope: {errors | exc.normalized_messages()}") from exc
    if errors:
        raise InvalidEvent(f"not a valid CloudEvents envelope: {errors}")
    event_type = EVENT_TYPES.get(envelope["type"])
    if event_type is None:
        raise UnknownEventType(f"unknown event type {envelope['type']!r}")
    try:
        data = compiled.load(_payload_schema(envelope["type"]), envelope["data"])
    except ma.ValidationError as exc:
        raise InvalidEvent(f"{envelope['type']} payload invalid: {exc.messages}") from exc
    return Event(
        id=str(envelope["id"]),
        type=envelope["type"],
        source=envelope["source"],
        time=envelope["time"],
        subject=envelope["subject"],
        tenant=envelope["tenant"],
        data=data,
        extensions=extensions,
    )


def example_path(type_name: str) -> Path:
    return EXAMPLES_DIR / f"{type_name}.json"


def load_example(type_name: str) -> dict:
    return json.loads(example_path(type_name).read_text(encoding="utf-8"))
