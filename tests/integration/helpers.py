"""What the API tests share: a problem+json answer, "nothing changed" checked table by table, events handed
to matching's handlers, and a service's app served over real HTTP for the workspace to reach."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from services.matching import worker as matching_worker
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from shared.events import decode_event, encode_event, new_event
from shared.ratelimit import TABLE_NAME as RATE_LIMITS
from shared.web.problems import PROBLEM_JSON


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    return body


def snapshot(svc) -> dict[str, list[tuple]]:
    """Every row of every table the service owns, so that "nothing changed" means exactly that; except the
    rate-limit counters, which every request moves, refused ones included."""
    with svc.db.session() as session:
        return {
            table.name: [tuple(row) for row in session.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in svc.store.metadata.sorted_tables
            if table.name != RATE_LIMITS
        }


def outbox_rows(svc, key: str | None = None) -> list:
    table = svc.store.outbox.table
    query = sa.select(table).order_by(table.c.id)
    if key is not None:
        query = query.where(table.c.message_key == key)
    with svc.db.session() as session:
        return session.execute(query).all()


@contextlib.contextmanager
def served(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on a free port, as the workspace reaches a service: its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def feed_matching(matching, tenant: str, type_name: str, data: dict) -> str:
    """Hand matching an event as its worker would (through the wire format and its handler table): the
    event's subject, a new id."""
    table = matching_worker.handler_table(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))
    subject = str(uuid.uuid4())
    event = decode_event(encode_event(new_event(type_name, tenant=tenant, subject=subject, data=data, source="t")))
    with matching.db.session() as session:
        for handler in table[type_name]:
            handler(session, event)
    return subject
