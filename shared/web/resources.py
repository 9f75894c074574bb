"""Small pieces the services' routes share: strict input schemas, paging, and answers for missing or
invalid objects."""

from __future__ import annotations

import copy
import functools
import re
from typing import ClassVar, NoReturn

import marshmallow as ma
from marshmallow import fields, validate
from marshmallow.schema import SchemaMeta
from webargs.flaskparser import abort  # flask-smorest's abort, imported where it is typed NoReturn

MAX_PAGE_SIZE = 100

# Characters no field of ours has a use for: C0 and C1 controls (NUL among them, which PostgreSQL cannot
# store in text at all) and lone surrogates (which no database encoding can hold). Free text keeps tab and
# line breaks.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FREE_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class NoControlCharacters(validate.Validator):
    """Refuses NUL and the other control characters; ``multiline`` allows tab and line breaks."""

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: str) -> str:
        pattern = _FREE_TEXT_CONTROLS if self.multiline else _CONTROLS
        if isinstance(value, str) and pattern.search(value):
            allowed = " other than tab and line breaks" if self.multiline else ""
            raise ma.ValidationError(f"Must not contain control characters{allowed}.")
        return value


class FreeText(fields.String):
    """Text a person writes in their own words (a description, a note): tabs and line breaks are allowed."""


class JsonBoolean(fields.Boolean):
    """``true`` or ``false`` only: not ``"yes"``, ``1`` or ``"on"``, which a form library might send."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


class JsonFloat(fields.Float):
    """A JSON number only: ``"12.5"`` is refused rather than read as a number."""

    def _validated(self, value) -> float:
        if value is True or value is False or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class JsonInteger(fields.Integer):
    """A whole JSON number only: ``"12"`` and ``12.5`` are refused."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("strict", True)
        super().__init__(**kwargs)


def _harden(field: fields.Field, json_types: bool) -> fields.Field:
    """A copy of ``field`` that refuses what a strict input must refuse; the original (often an event
    schema's, which must stay tolerant of what later producers add) is left as it was."""
    field = copy.copy(field)
    if isinstance(field, fields.String):
        # A field inherited from a strict schema has its check already.
        if not any(isinstance(check, NoControlCharacters) for check in field.validators):
            field.validators = [*field.validators, NoControlCharacters(multiline=isinstance(field, FreeText))]
    elif isinstance(field, fields.Nested):
        if not (isinstance(field.nested, type) and issubclass(field.nested, ma.Schema)):
            raise TypeError(f"strict input schemas nest schemas by class, not {field.nested!r}")
        field.nested = _strict_variant(field.nested, json_types)
        # The nested schema is built lazily from ``nested``; a copy must not share one built already.
        field._schema = None
    elif isinstance(field, fields.List):
        field.inner = _harden(field.inner, json_types)
    elif isinstance(field, fields.Mapping):
        if field.key_field is None or field.value_field is None:
            # Free-form members would let anything through, control characters and diagnoses alike.
            raise TypeError("strict input schemas take mappings only with declared keys and values")
        field.key_field = _harden(field.key_field, json_types)
        field.value_field = _harden(field.value_field, json_types)
    elif isinstance(field, fields.Raw):
        raise TypeError("strict input schemas take no free-form Raw fields")
    elif json_types:
        # The field's class is swapped for its JSON-strict subclass; the subclasses add no state.
        if type(field) is fields.Boolean:
            field.__class__ = JsonBoolean
        elif type(field) is fields.Float:
            field.__class__ = JsonFloat
        elif type(field) is fields.Integer:
            field.strict = True
    return field


class _StrictSchemaMeta(SchemaMeta):
    @classmethod
    def get_declared_fields(mcs, klass, cls_fields, inherited_fields, dict_cls=dict):
        declared = super().get_declared_fields(klass, cls_fields, inherited_fields, dict_cls)
        json_types = bool(getattr(klass, "json_types", False))
        return dict_cls((name, _harden(field, json_types)) for name, field in declared.items())


class StrictSchema(ma.Schema, metaclass=_StrictSchemaMeta):
    """Input schemas refuse what they do not know, at every depth: a client may not set what it was not
    given, and a nested object takes no extra members (a ``diagnosis`` beside a support need's ``code`` is
    refused, not quietly dropped). Every string refuses NUL and the other control characters, tab and line
    breaks too unless the field is :class:`FreeText`.

    Fields inherited from other schemas (the event payloads, which stay tolerant) are hardened in copies
    when the class is made, so a service's input schema can extend the payload it shares with its events.
    """

    json_types: ClassVar[bool] = False

    class Meta:
        unknown = ma.RAISE


class StrictBodySchema(StrictSchema):
    """A JSON request body: besides :class:`StrictSchema`'s rules, a boolean is ``true`` or ``false`` and a
    number is a JSON number, never a string that looks like one. (A query string's values are all strings,
    so query schemas stay :class:`StrictSchema`.)"""

    json_types: ClassVar[bool] = True


@functools.cache
def _strict_variant(schema: type[ma.Schema], json_types: bool) -> type[ma.Schema]:
    base = StrictBodySchema if json_types else StrictSchema
    if issubclass(schema, base):
        return schema
    # Named for the OpenAPI document, where the tolerant original may appear too (in answers).
    name = schema.__name__.removesuffix("Schema") + ("Input" if json_types else "Query") + "Schema"
    meta = type("Meta", (), {"unknown": ma.RAISE})
    return type(name, (base, schema), {"Meta": meta, "__module__": schema.__module__})


class PageQuerySchema(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class PageSchema(ma.Schema):
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


def page_bounds(query: dict) -> tuple[int, int]:
    """(offset, limit) of the requested page."""
    return (query["page"] - 1) * query["page_size"], query["page_size"]


def page_of(items: list, total: int, query: dict) -> dict:
    return {"items": items, "page": query["page"], "page_size": query["page_size"], "total": total}


def not_found() -> NoReturn:
    abort(404, message="Not found.")


def invalid(errors: dict) -> NoReturn:
    abort(422, errors=errors)


def conflict(message: str) -> NoReturn:
    abort(409, message=message)
