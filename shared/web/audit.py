"""The audit log on the web side: a decorator that records who read or changed which candidate after a
successful answer, and the operators' ``GET /v1/tenants/{tenant}/audit``.

A route says what it does and where the candidate ids are (the path, the answer, the request body); the
decorator, placed just below ``authorize``, writes one row per candidate in the view's unit of work when
there is one open (an ``Idempotency-Key`` POST), else in its own. Refused requests (4xx) changed and
showed nothing, so they are not recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, make_response, request
from flask.views import MethodView
from marshmallow import fields, validate

from shared import audit
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.idempotency import transaction
from shared.web.request_id import current_request_id
from shared.web.resources import PageQuerySchema, PageSchema, page_bounds, page_of

# Where a route's candidate ids are, given the path's arguments and the answer's JSON body.
CandidateIds = Callable[[dict, Any], Iterable[str]]


def from_path(name: str = "candidate_id") -> CandidateIds:
    return lambda path, answer: [path[name]]


def from_answer(name: str = "candidate_id") -> CandidateIds:
    """A member of the answer; ``placement.candidate_id`` reaches into a nested object."""

    def ids(path: dict, answer: Any) -> list[str]:
        for part in name.split("."):
            answer = answer.get(part) if isinstance(answer, dict) else None
        return [answer] if isinstance(answer, str) and answer else []

    return ids


def from_items(name: str = "candidate_id") -> CandidateIds:
    """A page's items: a list shows each candidate in it."""

    def ids(path: dict, answer: Any) -> list[str]:
        items = answer.get("items", []) if isinstance(answer, dict) else []
        return [item[name] for item in items if isinstance(item, dict) and item.get(name)]

    return ids


class Auditor:
    """The decorators of one service's routes, writing to that service's audit table."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def __call__(self, action: str, candidates: CandidateIds | None = None):
        if action not in audit.ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        find = candidates or from_path()

        def decorator(view):
            @functools.wraps(view)
            def wrapper(*args, **kwargs):
                response = make_response(view(*args, **kwargs))
                if 200 <= response.status_code < 300:
                    answer = response.get_json(silent=True) if response.is_json else None
                    self.record(kwargs["tenant"], action, [i for i in find(kwargs, answer) if isinstance(i, str)])
                return response

            return wrapper

        return decorator

    def record(self, tenant: str, action: str, candidate_ids: list[str]) -> None:
        if not candidate_ids:
            return
        context = current_app.extensions["werkbrug"]
        principal = current_principal()
        with transaction(context.db) as session:
            audit.record(
                session,
                self.table,
                tenant,
                audit.Actor(principal.role, principal.subject),
                action,
                candidate_ids,
                context.clock(),
                current_request_id(),
            )


class AuditQuerySchema(PageQuerySchema):
    candidate_id = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,35}$"),
        metadata={"description": "only what was done with this candidate"},
    )
    since = fields.AwareDateTime(metadata={"description": "only from this moment on (with its UTC offset)"})


class AuditEntrySchema(ma.Schema):
    at = fields.AwareDateTime(metadata={"description": "when (UTC)"})
    actor_role = fields.String(metadata={"description": "the API key's role"})
    actor_subject = fields.String(
        allow_none=True, metadata={"description": "the API key's employer or jobcoach id; null for operators"}
    )
    action = fields.String(validate=validate.OneOf(audit.ACTIONS))
    candidate_id = fields.String()
    request_id = fields.String(metadata={"description": "the request's X-Request-Id"})


class AuditPageSchema(PageSchema):
    items = fields.List(fields.Nested(AuditEntrySchema))


def audit_blueprint(table: sa.Table) -> Blueprint:
    """``GET /v1/tenants/{tenant}/audit`` over ``table``, for the region's operators."""
    blp = Blueprint("audit", __name__, url_prefix="/v1/tenants/<tenant:tenant>/audit", description="Audit log")

    @blp.route("")
    class AuditLog(MethodView):
        @authorize("operator")
        @blp.arguments(AuditQuerySchema, location="query")
        @blp.response(200, AuditPageSchema)
        def get(self, query, tenant):
            """Who read or changed which candidate in this service, oldest first; pseudonymous ids only"""
            offset, limit = page_bounds(query)
            with current_app.extensions["werkbrug"].db.session() as session:
                items, total = audit.entries(
                    session,
                    table,
                    tenant,
                    candidate_id=query.get("candidate_id"),
                    since=query.get("since"),
                    offset=offset,
                    limit=limit,
                )
            return page_of(items, total, query)

    return blp


def request_candidate(name: str = "candidate_id") -> CandidateIds:
    """The request body's candidate id (a placement's, say), for a write whose answer does not name it."""

    def ids(path: dict, answer: Any) -> list[str]:
        body = request.get_json(silent=True)
        return [body[name]] if isinstance(body, dict) and isinstance(body.get(name), str) else []

    return ids
