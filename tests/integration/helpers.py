"""Assertions the API tests share: a problem+json answer, and "nothing changed" checked table by table."""

from __future__ import annotations

import sqlalchemy as sa

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
