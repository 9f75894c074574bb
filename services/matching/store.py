"""The matching database as a whole: the tables of its subdomains and of the event stream, as Alembic
compares them with the migrations, and where those migrations live.

Each subdomain states its tables on a metadata of its own; this module puts them side by side, so that the
schema is one list read from three places rather than tables added to a shared metadata on import.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from services.matching import outbox as event_stream
from services.matching.caseload import store as caseload_store
from services.matching.introductions import store as introductions_store
from services.matching.placements import store as placements_store
from services.matching.ranking import store as ranking_store
from shared.audit import audit_table
from shared.idempotency import idempotency_table
from shared.ratelimit import rate_limit_table

MIGRATIONS = Path(__file__).with_name("migrations")


def _side_by_side(*parts: sa.MetaData) -> sa.MetaData:
    combined = sa.MetaData()
    for part in parts:
        for table in part.tables.values():
            table.to_metadata(combined)
    return combined


def _web_layer() -> sa.MetaData:
    # The web layer's own tables (shared.web): stored answers to Idempotency-Key requests, rate-limit counters,
    # and the audit log.
    web = sa.MetaData()
    idempotency_table(web)
    rate_limit_table(web)
    audit_table(web)
    return web


metadata = _side_by_side(
    event_stream.metadata,
    ranking_store.metadata,
    placements_store.metadata,
    introductions_store.metadata,
    caseload_store.metadata,
    _web_layer(),
)

# What every service's store names, for the worker and for tools that work across services.
outbox = event_stream.outbox
processed_events = event_stream.processed_events
audit_log = metadata.tables["audit_log"]
