"""The matching service's side of the event stream, shared by both subdomains: the outbox its events leave
through and the ids of the events its worker has handled. Each subdomain writes its events here in the
transaction of the change they announce."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.consumer import processed_events_table
from shared.events import EventType, new_event
from shared.outbox import Outbox, outbox_table

SOURCE = "matching"

metadata = sa.MetaData()

processed_events = processed_events_table(metadata)
outbox = Outbox(outbox_table(metadata))


def emit(session: Session, event_type: EventType, *, tenant: str, subject: str, data: dict) -> None:
    """Add one of this service's events to the outbox, in the caller's transaction."""
    outbox.add(session, new_event(event_type, tenant=tenant, subject=subject, data=data, source=SOURCE))
