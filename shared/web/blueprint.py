"""The Blueprint every service's routes use: strict about what it parses, and converters for path ids."""

from __future__ import annotations

import json
import re
import typing

import flask
import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter

from shared.web.openapi import document_http_semantics


class StrictParser(FlaskParser):
    # Unknown query parameters are refused like unknown body fields: a misspelt filter (`?unraed=true`)
    # must not silently answer the unfiltered list.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE}

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        try:
            data = super()._raw_load_json(req)
        except RecursionError as exc:
            # A body nested thousands deep is malformed input, not a server error.
            raise json.JSONDecodeError("nested too deeply", "<request body>", 0) from exc
        # JSON's grammar lets "\ud800" through, but a lone surrogate is no character: it cannot be stored
        # or sent on, so such a body is as malformed as one that does not parse. Paired surrogates (an
        # escaped emoji) are fine: the parser joins them.
        if _SURROGATE_ESCAPE.search(req.get_data(cache=True)) and _has_lone_surrogate(data):
            raise json.JSONDecodeError("unpaired surrogate", "<request body>", 0)
        return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: typing.Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Last, so that it sees the responses and parameters the routes' own decorators documented.
        self._prepare_doc_cbks.append(document_http_semantics)

    def arguments(self, schema, *args, **kwargs):
        # webargs builds a fresh schema from a class on every request (its fields deep-copied, its nested
        # schemas built again): one instance, made here once, parses every request the same way.
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)


class IdConverter(BaseConverter):
    """Entity ids in paths: anything else (a NUL byte, a slash, 10,000 characters) is simply not found."""

    regex = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}"


class TenantConverter(BaseConverter):
    regex = r"[a-z][a-z0-9-]{1,62}"


URL_CONVERTERS = {"id": IdConverter, "tenant": TenantConverter}
