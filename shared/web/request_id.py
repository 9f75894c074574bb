"""Every request has an id: the caller's ``X-Request-Id`` when it is a sensible one (a proxy or a client
that logs its own), else a new one. The answer carries it back, and the audit log records it, so that a
question about one access can be traced to the request that made it."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

HEADER = "X-Request-Id"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def current_request_id() -> str:
    if "request_id" not in g:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
    return g.request_id


def init_request_ids(app: Flask) -> None:
    @app.after_request
    def _answer_with_request_id(response: Response) -> Response:
        response.headers.setdefault(HEADER, current_request_id())
        return response
