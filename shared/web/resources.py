"""Small pieces the services' routes share: paging, and answers for missing or invalid objects."""

from __future__ import annotations

from typing import NoReturn

import marshmallow as ma
from flask_smorest import abort
from marshmallow import fields, validate

MAX_PAGE_SIZE = 100


class StrictSchema(ma.Schema):
    """Input schemas reject fields they do not know: a client may not set what it was not given."""

    class Meta:
        unknown = ma.RAISE


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
