"""The OpenAPI document every service serves, true to what the routes answer, and its page at ``/docs``.

flask-smorest writes the operations from the routes' schemas; this module adds what the shared web layer
does to every route: the RFC 9457 problem answers (with the real schema and an example each) for every
status a route can give, the bearer scheme, ``Idempotency-Key`` on POST, ``ETag`` and ``If-Match`` where a
route uses them, and the rate-limit headers. The page runs a vendored Swagger UI (see
``static/swagger-ui/VENDORED.md``): no CDN.
"""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

import marshmallow as ma
from flask import Flask, send_from_directory
from flask_smorest import Api
from marshmallow import fields
from werkzeug.exceptions import HTTPException

from shared.registry import ROLES
from shared.web.problems import PROBLEM_JSON, problem_from_http_exception

SWAGGER_UI_VERSION = "5.35.0"
SWAGGER_UI_ASSETS = Path(__file__).with_name("static") / "swagger-ui"
DOCS_PATH = "/docs"
DOCS_ASSETS_PATH = "/docs/assets/"

ROLES_EXTENSION = "x-werkbrug-roles"


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem: what went wrong, and for invalid input, which field and why."""

    type = fields.String(required=True, metadata={"description": "A URI naming the kind of problem."})
    title = fields.String(required=True, metadata={"description": "The HTTP status phrase."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "What happened, for a person to read."})
    instance = fields.String(
        metadata={
            "description": "A reference to this occurrence. Not sent for now: the request's path would echo ids "
            "that a refusal must not confirm."
        }
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Per field (or header), the messages; on 422 only."},
    )


def _example(status: int, detail: str, type_: str = "about:blank", **extra) -> dict:
    return {"type": type_, "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}


_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed per window for this API key.", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left in the current window.", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": {"type": "integer"}},
    "RateLimit-Policy": {"description": "The limit and its window, e.g. `120;w=60`.", "schema": {"type": "string"}},
}

# Every error status a route of ours can answer, with what it means here and an example body.
PROBLEMS: dict[int, tuple[str, dict]] = {
    400: (
        "Malformed request: the body is not JSON, or If-Match is not a list of entity-tags.",
        _example(400, "The request body is not valid JSON.", "https://werkbrug.nl/problems/malformed-request"),
    ),
    401: ("No valid API key.", _example(401, "A valid API key is required (Authorization: Bearer <key>).")),
    403: ("The key's role may not do this.", _example(403, "The employer role may not do this.")),
    404: ("Not there, or not yours (another region's objects are answered the same).", _example(404, "Not found.")),
    409: (
        "A conflict with the current state, or a request with the same Idempotency-Key is still running.",
        _example(
            409,
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            "https://werkbrug.nl/problems/request-in-progress",
        ),
    ),
    412: (
        "If-Match named an ETag the resource no longer has: nothing was changed.",
        _example(412, "The resource changed since that ETag was read; read it again before changing it."),
    ),
    413: ("The body is larger than 256 KiB.", _example(413, "The data value transmitted exceeds the capacity limit.")),
    422: (
        "Invalid fields or unknown query parameters (listed in `errors`), or an Idempotency-Key reused for "
        "another request.",
        _example(
            422,
            "The request body has invalid fields.",
            "https://werkbrug.nl/problems/validation-error",
            errors={"hours_max": ["must be at least hours_min"]},
        ),
    ),
    428: (
        "This region requires If-Match on changes.",
        _example(428, "This region requires If-Match with the resource's ETag on every change."),
    ),
    429: (
        "Too many requests for this API key; retry after `Retry-After` seconds.",
        _example(429, "Too many requests for this API key (120 per 1 minute)."),
    ),
    503: (
        "The database is briefly unavailable (a failover, no pooled connection free), or what the answer needs "
        "is still being prepared (a region's matching index): nothing was changed; retry after `Retry-After` "
        "seconds.",
        _example(503, "The service's database is briefly unavailable; nothing was changed. Try again shortly."),
    ),
}

IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": (
        "Makes a retry safe: within 24 hours the same key with the same request answers the first answer "
        "again (with `Idempotent-Replayed: true`); with another request, 422; while the first still runs, "
        "409. Scoped to the API key."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"},
    "example": "5f0c7a2e-2b1d-4c55-9b59-1d0b8f3e4a10",
}

IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": (
        "The ETag read with the resource: the change is made only if the resource is still at that version "
        "(412 otherwise). Required (428 without it) where the region asks for it."
    ),
    "schema": {"type": "string"},
    "example": '"3f1c0b9e8d7a6c5b4a39"',
}

ETAG_HEADER = {"description": "The resource's version, for If-Match.", "schema": {"type": "string"}}


class ProblemApi(Api):
    """flask-smorest answering RFC 9457 problem+json instead of its own error body, and documenting it."""

    # No catch-all "default" response: every status a route can answer is listed, so that clients (and
    # the schema tests) can rely on the list.
    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException):
        return problem_from_http_exception(error)

    def _register_responses(self):
        for status, (description, example) in PROBLEMS.items():
            response: dict[str, Any] = {
                "description": description,
                "content": {PROBLEM_JSON: {"schema": ProblemSchema, "example": example}},
                "headers": dict(_RATE_LIMIT_HEADERS),
            }
            if status in (409, 429, 503):
                response["headers"]["Retry-After"] = {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"},
                }
            self.spec.components.response(HTTPStatus(status).name, response, lazy=True)


def mark_etag(view):
    """Document that a view's answers carry ``ETag`` and, for PATCH and DELETE, that it honours
    ``If-Match``. Put it above ``authorize``."""
    view._apidoc = {**getattr(view, "_apidoc", {}), "werkbrug_etag": True}
    return view


def mark_if_match(view):
    """Document that a POST that changes an existing resource (a placement's check-in or end) honours
    ``If-Match`` like a PATCH does. Put it above ``authorize``, with :func:`mark_etag`."""
    view._apidoc = {**getattr(view, "_apidoc", {}), "werkbrug_if_match": True}
    return view


def _add_response(responses: dict, status: int) -> None:
    if status not in responses and str(status) not in responses:
        responses[status] = HTTPStatus(status).name


def document_http_semantics(doc: dict, doc_info: dict, *, method: str, **kwargs) -> dict:
    """A flask-smorest doc callback: the shared layer's statuses, headers and parameters of one operation."""
    roles = doc_info.get("werkbrug_roles")
    responses = doc.setdefault("responses", {})
    parameters = doc.setdefault("parameters", [])
    arguments = doc_info.get("arguments", {}).get("parameters", [])
    locations = {argument.get("in") for argument in arguments if isinstance(argument, dict)}
    if "requestBody" in doc or "json" in locations:
        for status in (400, 413, 422):
            _add_response(responses, status)
    if "query" in locations:
        _add_response(responses, 422)
    if roles is not None:
        doc[ROLES_EXTENSION] = list(roles)
        # 422 everywhere: unknown query parameters are refused on every route.
        for status in (401, 404, 422, 429, 503):
            _add_response(responses, status)
        if set(ROLES) - set(roles):
            _add_response(responses, 403)
        if method == "post":
            parameters.append(dict(IDEMPOTENCY_KEY_PARAMETER))
            _add_response(responses, 409)
            _add_response(responses, 422)
    etagged = doc_info.get("werkbrug_etag", False)
    if etagged and (method in ("patch", "put", "delete") or doc_info.get("werkbrug_if_match")):
        parameters.append(dict(IF_MATCH_PARAMETER))
        for status in (400, 412, 428):
            _add_response(responses, status)
    for status in doc_info.get("success_status_codes", []):
        response = responses.get(status) or responses.get(str(status))
        if not isinstance(response, dict):
            continue
        headers = response.setdefault("headers", {})
        if roles is not None:
            headers.update(_RATE_LIMIT_HEADERS)
        if etagged and status != 204:
            headers["ETag"] = ETAG_HEADER
        if method == "post" and roles is not None:
            headers["Idempotent-Replayed"] = {
                "description": "`true` when this is the stored answer to an earlier request with the same key.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        if status == 201:
            headers["Location"] = {"description": "Where the new resource is.", "schema": {"type": "string"}}
    if not parameters:
        doc.pop("parameters")
    return doc


def _converter_schema(converter) -> dict:
    return {"type": "string", "pattern": f"^{converter.regex}$"}


def openapi_config(title: str, description: str) -> dict:
    return {
        "API_TITLE": title,
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": DOCS_PATH,
        "OPENAPI_SWAGGER_UI_URL": DOCS_ASSETS_PATH,
        # No badge fetched from the public validator: the page makes no request outside this service.
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
        "API_SPEC_OPTIONS": {
            "info": {"description": description},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
    }


def init_openapi(app: Flask, converters) -> ProblemApi:
    """The API (whose blueprints the caller registers) and the documentation page's assets. Path
    converters are documented by their patterns, so that generated clients and tests send ids that fit."""
    api = ProblemApi(app)
    for converter in converters:
        api.register_converter(converter, _converter_schema)

    @app.get(f"{DOCS_ASSETS_PATH}<path:filename>")
    def docs_assets(filename: str):
        return send_from_directory(SWAGGER_UI_ASSETS, filename, max_age=86400)

    return api
