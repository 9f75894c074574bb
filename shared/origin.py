"""When an event chain began: the time of the request or decision that set it off, carried from event to event.

An event written from a web request or a scheduled decision carries nothing extra: its own ``time`` is when
its chain began. An event written while a consumer handles another event carries that event's origin as
the CloudEvents extension attribute ``origintime`` (RFC 3339, UTC): the handled event's own ``origintime``,
or its ``time`` when it has none. So a match proposed for a posted vacancy, and the alert raised for that
match, both name the moment the vacancy's event was written by its ``POST``, and a latency measured from it
includes every outbox, relay, broker and worker on the way.

It travels the way the trace context of :mod:`shared.tracing` does: :func:`stamp` in the outbox, and
:func:`following` around a consumer's handling. An event without the attribute (all written before it
existed) still decodes; its chain begins at its own ``time``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import datetime

from shared.events import Event, rfc3339

ORIGINTIME = "origintime"

_current: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("werkbrug_origin", default=None)


def of(event: Event) -> datetime:
    """When the chain ``event`` belongs to began: its ``origintime``, or its own ``time`` when it has none
    or one that is not an RFC 3339 time with an offset."""
    return _parse(event.extensions.get(ORIGINTIME)) or event.time


def current() -> datetime | None:
    """The origin of the event being handled, if any; None in a web request or a scheduled decision."""
    return _current.get()


def stamp(document: dict) -> dict:
    """An event document carrying the current origin; one that names an origin already keeps it."""
    moment = current()
    if moment is None or ORIGINTIME in document:
        return document
    return {**document, ORIGINTIME: rfc3339(moment)}


@contextlib.contextmanager
def following(event: Event) -> Iterator[datetime]:
    """Run the handling of ``event``, so that the events written meanwhile carry on its origin."""
    moment = of(event)
    token = _current.set(moment)
    try:
        yield moment
    finally:
        _current.reset(token)


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A time without an offset names no instant: it is ignored, as the envelope's ``time`` would be refused.
    return moment if moment.tzinfo is not None else None
