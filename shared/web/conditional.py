"""Optimistic concurrency: ``ETag`` from a row's stored version, ``If-Match`` on PATCH and DELETE.

The tag is a hash of the resource kind, its id and its version counter, so every replica gives the same
tag for the same stored row. A view checks ``If-Match`` against the tag of the row it read, then updates
with ``... WHERE version = :read_version``: of two requests carrying the same tag, only one can match
that row, and the other is answered 412 with nothing changed.
"""

from __future__ import annotations

import hashlib
import re

from flask import current_app
from flask import request as flask_request
from webargs.flaskparser import abort  # flask-smorest's abort, imported where it is typed NoReturn

from shared.web.settings import WebSettings

IF_MATCH = "If-Match"
STALE_DETAIL = "The resource changed since that ETag was read; read it again before changing it."
# One entity-tag (RFC 9110 section 8.8.3): optionally weak, then a quoted string of etagc characters.
_ENTITY_TAG = re.compile(r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"')


def etag(kind: str, entity_id: str, version: object) -> str:
    digest = hashlib.sha256(f"{kind}:{entity_id}:{version}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def etag_header(kind: str, resource: dict) -> dict[str, str]:
    """The ``ETag`` header of a resource dict carrying its ``id`` and stored ``version``."""
    return {"ETag": etag(kind, resource["id"], resource["version"])}


def expected_version(kind: str, current: dict, tenant: str) -> int | None:
    """Check If-Match against the stored ``current`` row: the version a conditional change must still
    find (the store then raises :class:`shared.db.StaleVersion`, answered 412), or None without one."""
    return current["version"] if precondition(etag(kind, current["id"], current["version"]), tenant) else None


def parse_if_match(header: str) -> list[str]:
    """The entity-tags of an If-Match value, or ``["*"]``; a malformed value is refused with 400."""
    value = header.strip()
    if value == "*":
        return ["*"]
    tags = [part.strip() for part in value.split(",")] if value else [""]
    if any(not _ENTITY_TAG.fullmatch(tag) for tag in tags):
        abort(400, message='If-Match takes "*" or a list of quoted entity-tags, as sent in ETag.')
    return tags


def _required(tenant: str) -> bool:
    return bool(current_app.extensions["werkbrug"].registry.settings(tenant, WebSettings).require_if_match)


def precondition(current_tag: str, tenant: str) -> bool:
    """Check the request's If-Match against the tag of the stored row. True when the request named a tag
    (the caller then updates only where the version is still the one read); 412, 428 or 400 otherwise."""
    header = flask_request.headers.get(IF_MATCH)
    if header is None:
        if _required(tenant):
            abort(428, message="This region requires If-Match with the resource's ETag on every change.")
        return False
    tags = parse_if_match(header)
    if tags == ["*"]:
        return False
    # Strong comparison: a weak tag never matches (RFC 9110 section 13.1.1).
    if current_tag not in tags:
        abort(412, message=STALE_DETAIL)
    return True
