"""Event handlers of the candidate service, listed by event type in the worker's handler table
(:data:`services.candidate.worker.HANDLERS`).

The candidate service owns the ladder step and the consent history, so the facts other services learn
about a candidate come here as events, never as writes to this database. Each handler is safe to run
twice on the same fact: the consumer skips an event id it has handled, and an entry is recorded once per
cause (the placement, the introduction) even when the cause comes again under a new event id. An event
about a candidate who is not here (erased, or never registered in this region) changes nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.candidate import commands, domain, metrics, store
from services.candidate.domain import PROFILE_FIELDS
from shared.events import Event, EventType, InvalidEvent

# What the history table holds in its ``recorded_by`` and ``ref`` columns.
RECORDED_BY_LENGTH = 100


def _recorded_by(event: Event, who: str | None) -> str:
    who = who or event.data["jobcoach_id"]
    # Checked here rather than left to the database: SQLite would store a longer one, PostgreSQL would refuse
    # it on every retry; either way the event belongs in dead-letters.
    if not who or len(who) > RECORDED_BY_LENGTH:
        raise InvalidEvent(f"{event.type}: who recorded it is empty or longer than {RECORDED_BY_LENGTH} characters")
    return who


def on_placement_ended(session: Session, event: Event) -> None:
    """Raise the ladder step to ``ladder_step_after`` when that is higher, and tell the others."""
    tenant, data, placement_id = event.tenant, event.data, event.subject
    # Locked: a PATCH of the same candidate waits rather than overwriting the new step with the old one.
    candidate = store.get_candidate(session, tenant, data["candidate_id"], for_update=True)
    if candidate is None or store.history_recorded(session, tenant, candidate["id"], domain.LADDER, placement_id):
        return
    step = domain.rise_to(candidate["ladder_step"], data["ladder_step_after"])
    if step is None:
        return
    profile = {name: candidate[name] for name in PROFILE_FIELDS} | {"ladder_step": step}
    raised = store.update_candidate(session, tenant, candidate["id"], candidate["display_name"], profile)
    assert raised is not None, "read and locked above, in this transaction"
    details = domain.ladder_entry(
        domain.PLACEMENT_ENDED,
        candidate,
        raised,
        placement_id=placement_id,
        outcome=data["outcome"],
        end_date=data["end_date"].isoformat(),
    )
    assert details is not None, "rise_to() only answers a higher step, so the step changed"
    store.add_history(
        session,
        tenant,
        candidate["id"],
        domain.LADDER,
        recorded_by=_recorded_by(event, None),
        recorded_at=event.time,
        details=details,
        ref=placement_id,
    )
    commands.emit_profile(session, tenant, raised, EventType.CANDIDATE_UPDATED)
    metrics.LADDER_RISES.labels(tenant).inc()


def on_introduction_answered(session: Session, event: Event) -> None:
    """Record the candidate's answer to an employer's interest in their consent history."""
    tenant, data, introduction_id = event.tenant, event.data, event.subject
    accepted = event.type == EventType.INTRODUCTION_ACCEPTED
    kind = domain.INTRODUCTION_ACCEPTED if accepted else domain.INTRODUCTION_DECLINED
    # Locked, so that an erasure running at the same moment either comes first (and this finds nobody) or
    # waits and erases this entry too.
    candidate = store.get_candidate(session, tenant, data["candidate_id"], for_update=True)
    if candidate is None or store.history_recorded(session, tenant, candidate["id"], kind, introduction_id):
        return
    store.add_history(
        session,
        tenant,
        candidate["id"],
        kind,
        recorded_by=_recorded_by(event, data["recorded_by"]),
        recorded_at=data["recorded_at"] or event.time,
        details={
            "introduction_id": introduction_id,
            "vacancy_id": data["vacancy_id"],
            "employer_id": data["employer_id"],
            "vacancy_title": data["vacancy_title"],
        },
        ref=introduction_id,
    )
