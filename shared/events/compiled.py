"""A quicker way through a marshmallow schema for the documents that pass it.

A consumer loads every message it takes through the envelope's schema and its payload's, and marshmallow
spends most of that time on bookkeeping around each field (an error store, hooks looked up, keyword
arguments passed down) rather than on the checks themselves. :func:`compile_loader` reads a schema's fields
once and returns a plain function that does only the checks: the type of the common fields (strings, whole
numbers, numbers, booleans, lists, dicts, nested schemas) tested directly, every validator called as
marshmallow calls it, any other field handed to its own ``deserialize``, and the schema's own
``@validates_schema`` methods run on the result.

The function is only ever surer than marshmallow, never looser: whenever a value is anything but plainly
valid (a wrong type, a failing validator, a missing required field, an unknown member where the schema
raises, a string where a number may be coerced), it raises :class:`NotSure` and :func:`load` asks
marshmallow itself, which then accepts the document or refuses it with its own messages. A schema with
features this module does not follow (hooks other than ``validates_schema``, ``data_key``, ``INCLUDE``) is
not compiled at all and always goes to marshmallow. ``tests/unit/test_compiled_loader.py`` compares both on
every example event and on thousands of altered ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA


class NotSure(Exception):
    """The document may be invalid, or valid in a way only marshmallow decides: ask marshmallow."""


Loader = Callable[[Any], Any]
_MISSING = ma.missing


def load(schema: ma.Schema, document: Any) -> dict[str, Any]:
    """``schema.load(document)``, through the compiled loader when the document plainly passes."""
    loader = _loader_for(schema)
    if loader is not None:
        try:
            return loader(document)
        except NotSure:
            pass
    return schema.load(document)


def validate(schema: ma.Schema, document: Any) -> dict[str, Any]:
    """``schema.validate(document)``: its errors, empty when the document passes."""
    loader = _loader_for(schema)
    if loader is not None:
        try:
            loader(document)
            return {}
        except NotSure:
            pass
    return schema.validate(document)


@functools.cache
def _loader_for(schema: ma.Schema) -> Loader | None:
    # Schemas are built once per type and kept (see shared.events), so caching by instance is bounded.
    return compile_loader(schema)


def compile_loader(schema: ma.Schema) -> Loader | None:
    """A function loading what ``schema`` plainly accepts and raising :class:`NotSure` otherwise; None when
    the schema uses something the function could not follow faithfully."""
    hooks = schema._hooks
    if hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES] or schema.many or schema.partial:
        return None
    if schema.unknown not in (ma.EXCLUDE, ma.RAISE):
        return None
    schema_validators = []
    for name, pass_collection, options in hooks[VALIDATES_SCHEMA]:
        if pass_collection or options.get("pass_original"):
            return None
        schema_validators.append(getattr(schema, name))
    plan: list[tuple[str, Loader, bool, Any]] = []
    for name, field in schema.load_fields.items():
        if field.data_key is not None or (field.attribute is not None and field.attribute != name):
            return None
        load_field = _field_loader(field)
        if load_field is None:
            return None
        plan.append((name, load_field, field.required, field.load_default))
    known = frozenset(name for name, *_ in plan)
    raise_on_unknown = schema.unknown == ma.RAISE

    def load_document(document: Any) -> dict[str, Any]:
        if type(document) is not dict:
            raise NotSure
        if raise_on_unknown and not known.issuperset(document):
            raise NotSure
        result: dict[str, Any] = {}
        for name, load_field, required, default in plan:
            value = document.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    raise NotSure
                if default is _MISSING:
                    continue
                result[name] = default() if callable(default) else default
            else:
                result[name] = load_field(value)
        for validator in schema_validators:
            try:
                validator(result, partial=None, many=False, unknown=schema.unknown)
            except ma.ValidationError:
                raise NotSure from None
        return result

    return load_document


def _field_loader(field: fields.Field) -> Loader | None:
    """One field's value to its loaded form, or :class:`NotSure`; None when the field cannot be compiled."""
    if field.pre_load or field.post_load:
        return None
    convert = _converter(field)
    if convert is None:
        return None
    validators = tuple(field.validators)
    allow_none = field.allow_none

    def load_value(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise NotSure
        output = convert(value)
        for validator in validators:
            try:
                if validator(output) is False:
                    raise NotSure
            except ma.ValidationError:
                raise NotSure from None
        return output

    return load_value


def _converter(field: fields.Field) -> Loader | None:
    """The type check and conversion of one field, before its validators."""
    kind = type(field)
    if kind is fields.String:
        return _exactly(str)
    if kind is fields.Boolean:
        return _exactly(bool)
    if kind in (fields.Integer, fields.Float):
        assert isinstance(field, fields.Number)
        if field.as_string:
            return None
        # An int is loaded as itself, strict or not; a float or a numeric string is marshmallow's to judge.
        return _exactly(int) if kind is fields.Integer else _float
    if kind is fields.List:
        assert isinstance(field, fields.List)
        inner = _field_loader(field.inner)
        if inner is None:
            return None

        def load_list(value: Any) -> list:
            if type(value) is not list:
                raise NotSure
            return [inner(item) for item in value]

        return load_list
    if kind is fields.Nested:
        assert isinstance(field, fields.Nested)
        if field.many or field.unknown is not None or field.only or field.exclude:
            return None
        nested = field.schema
        return compile_loader(nested) if not (nested.only or nested.exclude) else None
    if kind is fields.Dict:
        assert isinstance(field, fields.Dict)
        if field.key_field is not None or field.value_field is not None:
            return None

        def load_dict(value: Any) -> dict:
            if type(value) is not dict:
                raise NotSure
            return dict(value)

        return load_dict
    # Any other kind (UUID, dates, times) is loaded by the field itself: still without the schema's
    # bookkeeping, and exactly as marshmallow would load it.
    deserialize = field._deserialize

    def load_other(value: Any) -> Any:
        try:
            return deserialize(value, None, None)
        except ma.ValidationError:
            raise NotSure from None

    return load_other


def _exactly(kind: type) -> Loader:
    def check(value: Any) -> Any:
        # type() and not isinstance(): True is an int to isinstance, and marshmallow refuses it as a number.
        if type(value) is not kind:
            raise NotSure
        return value

    return check


def _float(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise NotSure
        return value
    if kind is int and -(2**53) <= value <= 2**53:
        return float(value)
    raise NotSure
