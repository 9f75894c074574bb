"""Ranking's tables: the read models of candidates and vacancies with their change sequence, proposals, the
ranking log, exposure counts, rerankers and ESCO and CompetentNL labels. Every query about a region takes the tenant.

Change sequence
---------------
Every write to the read models (a candidate or vacancy stored, changed or erased) takes the next number of
its tenant's change sequence and stores it with the row (``seq``); an erasure leaves a numbered removal
that names the row only by a hash. An in-memory index (:mod:`services.matching.ranking.live_index`) then
catches up by reading what is numbered above the last number it has seen, instead of everything.

The number is taken by incrementing a counter row, not from a database sequence, on purpose: the row
stays locked until the transaction ends, so transactions of one tenant commit in the order of their
numbers, and a reader that sees number ``n`` committed knows that every number below ``n`` is committed
too. A database sequence hands out numbers that may commit out of order, and a reader could then skip a
change for good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.matching.outbox import outbox
from services.matching.ranking.concepts import COMPETENTNL, ESCO, ConceptLabels
from services.matching.versioned_models import VersionedModels, versioned_models_table
from shared.db import UtcDateTime, affected_rows, utcnow
from shared.events import message_key

metadata = sa.MetaData()

# Read models: this service's own copies of what the candidate and vacancy events said.
candidates = sa.Table(
    "candidates",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("consent_matching", sa.Boolean, nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_matching_candidates_seq", "tenant", "seq"),
)

vacancies = sa.Table(
    "vacancies",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("employer_id", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_matching_vacancies_status", "tenant", "status"),
    sa.Index("ix_matching_vacancies_seq", "tenant", "seq"),
)

# One row per tenant: the last change number handed out, and up to which number removals were pruned.
changes = sa.Table(
    "matching_changes",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("pruned_seq", sa.BigInteger, nullable=False, server_default="0"),
)

# Erased rows, named by a hash of tenant and id so that the log itself forgets who it was; pruned after a
# while (an index older than the pruned part rebuilds from scratch).
removals = sa.Table(
    "matching_removals",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("entity_hash", sa.String(64), nullable=False),
    sa.Column("removed_at", UtcDateTime, nullable=False),
)

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("vacancy_id", sa.String(36), primary_key=True),
    sa.Column("candidate_id", sa.String(36), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # What the proposal was based on (see fingerprints.pair_fingerprint); NULL proposes the pair again when due.
    sa.Column("fingerprint", sa.String(64), nullable=True),
    # The explanation's components at the time: what a reranker learns from once the placement ends.
    sa.Column("components", sa.JSON, nullable=True),
    sa.Column("ranking_version", sa.String(120), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=True),
)

# Every ranking served or proposed: enough to say which model, weights and reranker produced which result,
# and no personal data: the subject is a fingerprint of its inputs, and candidates appear only as scores.
ranking_log = sa.Table(
    "ranking_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("served_at", UtcDateTime, nullable=False),
    sa.Column("direction", sa.String(30), nullable=False),
    sa.Column("subject_fingerprint", sa.String(64), nullable=False),
    sa.Column("ranking_version", sa.String(120), nullable=False),
    sa.Column("model_version", sa.String(40), nullable=False),
    sa.Column("weights_version", sa.String(20), nullable=False),
    sa.Column("weights", sa.JSON, nullable=False),
    sa.Column("reranker_version", sa.String(80), nullable=True),
    sa.Column("result_count", sa.Integer, nullable=False),
    sa.Column("results", sa.JSON, nullable=False),
    sa.Index("ix_ranking_log_tenant", "tenant", "served_at"),
)

# How often candidates were shown to employers or proposed to jobcoaches, per group; no one is named.
exposure_counts = sa.Table(
    "exposure_counts",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("ladder_step", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("target_group", sa.Boolean, primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Trained rerankers as coefficients in JSON (never pickles), numbered per tenant; a rolled-back one stays
# for the record and is never used again.
rerankers = VersionedModels(versioned_models_table("reranker_models", metadata))


def _labels_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("uri", sa.String(255), primary_key=True),
        sa.Column("language", sa.String(8), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("preferred_label", sa.String(500), nullable=False),
        sa.Column("alt_labels", sa.JSON, nullable=False),
        sa.Column("loaded_at", UtcDateTime, nullable=False),
    )


# ESCO and CompetentNL concepts as an operator loaded them, per installation (not per tenant): one row
# per URI and language, one table per source.
esco_labels = _labels_table("esco_labels")
competentnl_labels = _labels_table("competentnl_labels")
LABEL_TABLES: dict[str, sa.Table] = {ESCO: esco_labels, COMPETENTNL: competentnl_labels}


# Where a session notes, per tenant, the first change number its transaction took (see own_changes_from).
_OWN_CHANGES = "matching_own_changes_from"


def next_seq(session: Session, tenant: str, count: int = 1) -> int:
    """The tenant's next change number (the last of ``count`` next ones); the counter row stays locked until
    this transaction ends."""
    seq = _bump(session, tenant, count)
    session.info.setdefault(_OWN_CHANGES, {}).setdefault(tenant, seq - count + 1)
    return seq


def own_changes_from(session: Session, tenant: str) -> int | None:
    """The first change number of the tenant this session's transaction took, if any: every change below it
    is committed (the counter was locked from then on), and it and those above are this transaction's own,
    which nothing outliving the transaction may keep."""
    return session.info.get(_OWN_CHANGES, {}).get(tenant)


def _bump(session: Session, tenant: str, count: int) -> int:
    bump = changes.update().where(changes.c.tenant == tenant).values(seq=changes.c.seq + count).returning(changes.c.seq)
    seq = session.execute(bump).scalar()
    if seq is not None:
        return int(seq)
    try:
        with session.begin_nested():
            session.execute(changes.insert().values(tenant=tenant, seq=count, pruned_seq=0))
        return count
    except IntegrityError:
        # Another transaction created the tenant's row first; ours waited for it and can now count on.
        return int(session.execute(bump).scalar_one())


def _upsert(session: Session, table: sa.Table, tenant: str, entity_id: str, values: dict) -> int:
    seq = next_seq(session, tenant)
    where = (table.c.tenant == tenant, table.c.id == entity_id)
    updated = session.execute(table.update().where(*where).values(**values, updated_at=utcnow(), seq=seq))
    if not affected_rows(updated):
        session.execute(table.insert().values(tenant=tenant, id=entity_id, **values, updated_at=utcnow(), seq=seq))
    return seq


def _candidate_values(profile: dict) -> dict:
    return {
        "jobcoach_id": profile["jobcoach_id"],
        "consent_matching": bool(profile["consent"]["matching"]),
        "profile": profile,
    }


def _vacancy_values(profile: dict) -> dict:
    return {"employer_id": profile["employer_id"], "status": profile["status"], "profile": profile}


def upsert_candidate(session: Session, tenant: str, candidate_id: str, profile: dict) -> int:
    """Store what a candidate event said; returns the change number it got."""
    return _upsert(session, candidates, tenant, candidate_id, _candidate_values(profile))


def upsert_vacancy(session: Session, tenant: str, vacancy_id: str, profile: dict) -> int:
    """Store what a vacancy event said; returns the change number it got."""
    return _upsert(session, vacancies, tenant, vacancy_id, _vacancy_values(profile))


def insert_new(
    session: Session, tenant: str, new_vacancies: Sequence[tuple[str, dict]], new_candidates: Sequence[tuple[str, dict]]
) -> None:
    """Store many vacancies and candidates the tenant does not have yet, in statements of many rows: the
    rows and change numbers that :func:`upsert_vacancy` and :func:`upsert_candidate` would give them one by
    one, in this order. For a first load (a benchmark's regions), where one statement per row would take
    minutes; an id the tenant already has fails on its primary key."""
    count = len(new_vacancies) + len(new_candidates)
    if not count:
        return
    seq = next_seq(session, tenant, count) - count + 1
    now = utcnow()
    for table, entities, values in (
        (vacancies, new_vacancies, _vacancy_values),
        (candidates, new_candidates, _candidate_values),
    ):
        rows = []
        for entity_id, profile in entities:
            rows.append({"tenant": tenant, "id": entity_id, **values(profile), "updated_at": now, "seq": seq})
            seq += 1
        if rows:
            session.execute(table.insert(), rows)


def set_vacancy_status(session: Session, tenant: str, vacancy_id: str, status: str) -> int | None:
    row = get_vacancy(session, tenant, vacancy_id)
    if row is None:
        return None
    return upsert_vacancy(session, tenant, vacancy_id, {**row, "status": status})


def get_candidate(session: Session, tenant: str, candidate_id: str) -> dict | None:
    row = session.execute(
        sa.select(candidates.c.profile).where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
    ).first()
    return row.profile if row else None


def get_vacancy(session: Session, tenant: str, vacancy_id: str) -> dict | None:
    row = session.execute(
        sa.select(vacancies.c.profile).where(vacancies.c.tenant == tenant, vacancies.c.id == vacancy_id)
    ).first()
    return row.profile if row else None


def candidate_profiles(session: Session, tenant: str) -> list[dict]:
    """What every candidate event of the tenant said, consenting or not (for the anonymous insights)."""
    return list(session.execute(sa.select(candidates.c.profile).where(candidates.c.tenant == tenant)).scalars())


def open_vacancies(session: Session, tenant: str) -> list[tuple[str, dict]]:
    rows = session.execute(
        sa.select(vacancies.c.id, vacancies.c.profile).where(vacancies.c.tenant == tenant, vacancies.c.status == "open")
    ).all()
    return [(row.id, row.profile) for row in rows]


def proposal_fingerprints(
    session: Session, tenant: str, *, vacancy_id: str | None = None, candidate_id: str | None = None
) -> dict[tuple[str, str], str | None]:
    """(vacancy id, candidate id) -> fingerprint of the pairs proposed for one vacancy or one candidate."""
    query = sa.select(proposals.c.vacancy_id, proposals.c.candidate_id, proposals.c.fingerprint).where(
        proposals.c.tenant == tenant
    )
    if vacancy_id is not None:
        query = query.where(proposals.c.vacancy_id == vacancy_id)
    if candidate_id is not None:
        query = query.where(proposals.c.candidate_id == candidate_id)
    return {(row.vacancy_id, row.candidate_id): row.fingerprint for row in session.execute(query)}


def save_proposal(
    session: Session,
    tenant: str,
    vacancy_id: str,
    candidate_id: str,
    score: float,
    *,
    fingerprint: str | None = None,
    components: Mapping[str, float] | None = None,
    ranking_version: str | None = None,
) -> None:
    """Record a proposal of this pair, or that it was proposed again."""
    values = {
        "score": score,
        "fingerprint": fingerprint,
        "components": dict(components) if components is not None else None,
        "ranking_version": ranking_version,
        "updated_at": utcnow(),
    }
    where = (
        proposals.c.tenant == tenant,
        proposals.c.vacancy_id == vacancy_id,
        proposals.c.candidate_id == candidate_id,
    )
    if not affected_rows(session.execute(proposals.update().where(*where).values(**values))):
        session.execute(
            proposals.insert().values(
                tenant=tenant, vacancy_id=vacancy_id, candidate_id=candidate_id, created_at=utcnow(), **values
            )
        )


def proposal_count(session: Session, tenant: str) -> int:
    query = sa.select(sa.func.count()).select_from(proposals).where(proposals.c.tenant == tenant)
    return int(session.execute(query).scalar_one())


def proposal_components(session: Session, tenant: str) -> dict[tuple[str, str], dict]:
    """(vacancy id, candidate id) -> the components each pair was proposed with, where they were kept."""
    query = sa.select(proposals.c.vacancy_id, proposals.c.candidate_id, proposals.c.components).where(
        proposals.c.tenant == tenant, proposals.c.components.is_not(None)
    )
    return {(row.vacancy_id, row.candidate_id): row.components for row in session.execute(query)}


def forget_proposal_fingerprints(session: Session, tenant: str, vacancy_id: str) -> None:
    """A vacancy that closed: when it opens again its pairs are due to be proposed afresh."""
    session.execute(
        proposals.update()
        .where(proposals.c.tenant == tenant, proposals.c.vacancy_id == vacancy_id)
        .values(fingerprint=None)
    )


def entity_hash(tenant: str, entity_id: str) -> str:
    return hashlib.sha256(f"{tenant}/{entity_id}".encode()).hexdigest()


# Long enough for any index that is in use to have caught up; an older one rebuilds from scratch.
REMOVALS_KEPT = timedelta(days=2)


def lock_tenant_changes(session: Session, tenant: str) -> None:
    """Wait for, and hold until this transaction ends, the tenant's change counter, as next_seq would, without
    taking a number."""
    session.execute(sa.select(changes.c.seq).where(changes.c.tenant == tenant).with_for_update())


def erase_candidate(session: Session, tenant: str, candidate_id: str) -> None:
    # First the tenant's counter: a handler proposing this candidate (it ranked them from an index that still
    # held them) holds it until it commits, and only then are its proposal and event there to delete. After
    # this, such a handler waits, and its index then sees the removal.
    lock_tenant_changes(session, tenant)
    deleted = affected_rows(
        session.execute(candidates.delete().where(candidates.c.tenant == tenant, candidates.c.id == candidate_id))
    )
    session.execute(proposals.delete().where(proposals.c.tenant == tenant, proposals.c.candidate_id == candidate_id))
    # Match and out-of-sight events are keyed by the candidate: unsent ones about an erased person must not go
    # out, and sent ones are not kept.
    outbox.forget(session, [message_key(tenant, candidate_id)])
    if deleted:
        seq = next_seq(session, tenant)
        session.execute(
            removals.insert().values(
                tenant=tenant,
                seq=seq,
                kind="candidate",
                entity_hash=entity_hash(tenant, candidate_id),
                removed_at=utcnow(),
            )
        )
        prune_removals(session, tenant, utcnow() - REMOVALS_KEPT)


def prune_removals(session: Session, tenant: str, before: datetime) -> None:
    old = sa.select(sa.func.max(removals.c.seq)).where(removals.c.tenant == tenant, removals.c.removed_at < before)
    newest_old = session.execute(old).scalar()
    if newest_old is None:
        return
    session.execute(removals.delete().where(removals.c.tenant == tenant, removals.c.seq <= newest_old))
    session.execute(
        changes.update()
        .where(changes.c.tenant == tenant, changes.c.pruned_seq < newest_old)
        .values(pruned_seq=newest_old)
    )


# --------------------------------------------------------------------------------------------------------
# Reading for the in-memory index


@dataclass(frozen=True)
class Row:
    id: str
    profile: dict
    seq: int


@dataclass(frozen=True)
class Removal:
    kind: str
    entity_hash: str
    seq: int


@dataclass(frozen=True)
class Changes:
    """What changed in a tenant's read models in (``after``, ``upto``], in change order within each list."""

    after: int
    upto: int
    pruned_seq: int
    vacancies: list[Row]
    candidates: list[Row]
    removals: list[Removal]

    @property
    def empty(self) -> bool:
        return not (self.vacancies or self.candidates or self.removals)


def change_counter(session: Session, tenant: str) -> tuple[int, int]:
    """(last change number, pruned up to); (0, 0) for a tenant nothing was written for yet."""
    row = session.execute(sa.select(changes.c.seq, changes.c.pruned_seq).where(changes.c.tenant == tenant)).first()
    return (int(row.seq), int(row.pruned_seq)) if row else (0, 0)


def _rows(session: Session, table: sa.Table, tenant: str, *conditions: Any) -> list[Row]:
    query = sa.select(table.c.id, table.c.profile, table.c.seq).where(table.c.tenant == tenant, *conditions)
    return [Row(row.id, row.profile, int(row.seq)) for row in session.execute(query.order_by(table.c.seq))]


def changes_since(session: Session, tenant: str, after: int | None, upto: int | None = None) -> Changes:
    """The tenant's changes numbered above ``after`` (everything matchable when None) up to ``upto``.

    Without ``upto`` the counter is read first and bounds the rest, so that everything returned is known to
    be committed; a caller inside a writing transaction passes the number below its own.
    """
    last, pruned = change_counter(session, tenant)
    upto = last if upto is None else min(upto, last)
    if after is None:
        # A full read needs only what can be matched: open vacancies, candidates who consented.
        return Changes(
            -1,
            upto,
            pruned,
            _rows(session, vacancies, tenant, vacancies.c.status == "open", vacancies.c.seq <= upto),
            _rows(session, candidates, tenant, candidates.c.consent_matching.is_(True), candidates.c.seq <= upto),
            [],
        )
    if upto <= after:
        return Changes(after, after, pruned, [], [], [])
    window = (after, upto)
    removed = session.execute(
        sa.select(removals.c.kind, removals.c.entity_hash, removals.c.seq)
        .where(removals.c.tenant == tenant, removals.c.seq > window[0], removals.c.seq <= window[1])
        .order_by(removals.c.seq)
    )
    return Changes(
        after,
        upto,
        pruned,
        _rows(session, vacancies, tenant, vacancies.c.seq > window[0], vacancies.c.seq <= window[1]),
        _rows(session, candidates, tenant, candidates.c.seq > window[0], candidates.c.seq <= window[1]),
        [Removal(row.kind, row.entity_hash, int(row.seq)) for row in removed],
    )


# --------------------------------------------------------------------------------------------------------
# Ranking log and exposure


def log_ranking(session: Session, tenant: str, **fields: Any) -> None:
    session.execute(ranking_log.insert().values(tenant=tenant, served_at=utcnow(), **fields))


def purge_ranking_log(session: Session, served_before: datetime) -> int:
    """Forget rankings served before the cutoff, in every region: the log is kept for a stated time only."""
    return affected_rows(session.execute(ranking_log.delete().where(ranking_log.c.served_at < served_before)))


def ranking_log_rows(session: Session, tenant: str, limit: int = 100) -> list[dict]:
    query = (
        sa.select(ranking_log)
        .where(ranking_log.c.tenant == tenant)
        .order_by(ranking_log.c.served_at.desc(), ranking_log.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def add_exposures(session: Session, tenant: str, kind: str, counts: Mapping[tuple[int, bool], int]) -> None:
    """Add to the counts of candidates shown or proposed, per (ladder step, in the target-group register)."""
    for (step, target_group), count in sorted(counts.items()):
        if count <= 0:
            continue
        where = (
            exposure_counts.c.tenant == tenant,
            exposure_counts.c.ladder_step == step,
            exposure_counts.c.target_group.is_(target_group),
            exposure_counts.c.kind == kind,
        )
        bump = exposure_counts.update().where(*where).values(count=exposure_counts.c.count + count, updated_at=utcnow())
        if affected_rows(session.execute(bump)):
            continue
        try:
            with session.begin_nested():
                session.execute(
                    exposure_counts.insert().values(
                        tenant=tenant,
                        ladder_step=step,
                        target_group=target_group,
                        kind=kind,
                        count=count,
                        updated_at=utcnow(),
                    )
                )
        except IntegrityError:
            # Another process added the group's row between our update and our insert.
            session.execute(bump)


def exposures(session: Session, tenant: str) -> dict[tuple[int, bool, str], int]:
    query = sa.select(
        exposure_counts.c.ladder_step,
        exposure_counts.c.target_group,
        exposure_counts.c.kind,
        # Labelled: a row's own ``count`` is the tuple method, not the column.
        exposure_counts.c.count.label("times"),
    ).where(exposure_counts.c.tenant == tenant)
    return {(row.ladder_step, bool(row.target_group), row.kind): int(row.times) for row in session.execute(query)}


# --------------------------------------------------------------------------------------------------------
# Loaded concepts (ESCO, CompetentNL)


def save_concept_labels(session: Session, rows: Iterable[ConceptLabels], batch_size: int = 1_000) -> int:
    """Store loaded concepts, replacing what an earlier load said about the same URI and language."""
    count = 0
    batch: dict[tuple[str, str, str], dict] = {}
    now = utcnow()

    def flush() -> None:
        for source, language in {(source, language) for source, _, language in batch}:
            table = LABEL_TABLES[source]
            uris = [uri for src, uri, lang in batch if (src, lang) == (source, language)]
            session.execute(table.delete().where(table.c.language == language, table.c.uri.in_(uris)))
        for source, table in LABEL_TABLES.items():
            values = [row for (src, _, _), row in batch.items() if src == source]
            if values:
                session.execute(table.insert(), values)
        batch.clear()

    for row in rows:
        key = (row.source, row.uri[:255], row.language[:8])
        batch[key] = {
            "uri": key[1],
            "language": key[2],
            "kind": row.kind,
            "preferred_label": row.preferred_label[:500],
            "alt_labels": list(row.alt_labels),
            "loaded_at": now,
        }
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return count


def concept_labels_state(session: Session) -> tuple[tuple[int, datetime | None], ...]:
    """(rows, last load) per source: cheap enough to ask before deciding to read them all."""
    state = []
    for table in LABEL_TABLES.values():
        row = session.execute(sa.select(sa.func.count(), sa.func.max(table.c.loaded_at))).first()
        state.append((int(row[0]), row[1]) if row else (0, None))
    return tuple(state)


def all_concept_labels(session: Session) -> list[ConceptLabels]:
    labels: list[ConceptLabels] = []
    for source, table in LABEL_TABLES.items():
        query = sa.select(table).order_by(table.c.uri, table.c.language)
        labels.extend(
            ConceptLabels(source, row.uri, row.kind, row.language, row.preferred_label, tuple(row.alt_labels or ()))
            for row in session.execute(query)
        )
    return labels
