"""RFC 9457 problem details for every error a web process answers."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
VALIDATION_PROBLEM = "https://werkbrug.nl/problems/validation-error"
MALFORMED_PROBLEM = "https://werkbrug.nl/problems/malformed-request"


def problem(status: int, detail: str | None = None, *, type_: str = "about:blank", **extra) -> Response:
    body = {"type": type_, "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def _field_errors(messages) -> dict:
    """webargs nests errors under the request location ("json", "query"); clients want the fields."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "headers", "path", "view_args"}:
        flattened: dict = {}
        for location_errors in messages.values():
            if isinstance(location_errors, dict):
                flattened.update(location_errors)
            else:
                flattened.setdefault("_body", location_errors)
        return flattened
    return messages if isinstance(messages, dict) else {"_body": messages}


def problem_from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    headers = data.get("headers") or {}
    if status == 422 and messages is not None:
        response = problem(
            422, "The request body has invalid fields.", type_=VALIDATION_PROBLEM, errors=_field_errors(messages)
        )
    elif status == 400 and messages is not None:
        response = problem(400, "The request body is not valid JSON.", type_=MALFORMED_PROBLEM)
    elif status == 429:
        response = problem(429, f"Too many requests for this API key ({error.description}); retry after Retry-After.")
    else:
        detail = data.get("message") or (error.description if status < 500 else None)
        response = problem(status, detail)
    for name, value in headers.items():
        response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="werkbrug"'
    return response
