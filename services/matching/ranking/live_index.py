"""A live ranking index per tenant: a cache of the read models, kept fresh by their change sequence.

Any web or worker process may hold one per tenant it serves. It is never the source of truth: it is built
from the database (never from Kafka history), so a fresh or restarted process is ready as soon as it has
read one tenant's rows and fitted a text model on them, and any replica sees what every other replica wrote.

How it stays fresh
------------------
A :class:`TenantIndex` is immutable. It holds a fitted :class:`~.text_model.TextModel`, a *base*
:class:`~.vacancy_index.VacancyIndex` and :class:`~.candidate_index.CandidateIndex` built when the model
was fitted, and a *delta*: the vacancies and candidates that changed since. Each request (or event) first
asks the database for the rows numbered above the index's last change number
(:func:`services.matching.ranking.store.changes_since`, one indexed query per table, nothing when nothing changed)
and applies them: a changed row is masked out of the base and of the delta, and its new version is
transformed with the existing model into a small index of its own (a chunk; chunks of comparable size are
merged, so there are only a few); an erased or no longer matchable row is masked and dropped. Nothing is
refitted per event; a ranking merges the best of the base and of each chunk.

A side's new chunk is built when that side is next ranked, not when its changes are applied: a vacancy
event ranks candidates only, so a worker handling a run of vacancy events (one transaction catches up once
per event) indexes the vacancies they wrote once, as one chunk, when something next ranks vacancies.

The vocabulary statistics (IDF) and the delta's size drift as rows change, so a refit rebuilds everything
from the database in a background thread when enough has changed (:class:`RefitPolicy`: a share of the rows,
an age, any erasure, a large delta) and the result is swapped in by the next request, after it caught up
with what changed meanwhile; requests do not wait for it. A small tenant (a few hundred rows) is refitted
in the caller instead: that takes tens of milliseconds, and a young tenant's model knows too few words.

Erasure: an erased candidate leaves the index at the next request (the removal is numbered like any change),
and the refit that follows drops their words from the model's vocabulary too.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from services.matching.ranking import rows, store, text_model
from services.matching.ranking.candidate_index import CandidateIndex
from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.scoring import DEFAULT_RANKING, Ranking
from services.matching.ranking.text_model import TextModel
from services.matching.ranking.vacancy_index import VacancyIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitPolicy:
    """When a tenant's index is rebuilt with a freshly fitted model, in the background."""

    # Refit once this share of the rows the model was fitted on has changed since.
    changed_share: float = 0.2
    # Refit at least this often while anything changes at all, so the statistics never lag for long.
    max_age_s: float = 600.0
    # Never refit more often than this: a burst of events is one refit, not one per event.
    min_interval_s: float = 5.0
    # A delta this large costs every ranking; fold it into the base.
    max_delta_rows: int = 2_000
    # A tenant this small is refitted right away, in the caller, whenever a refit is due: it takes tens of
    # milliseconds, and a young tenant's model, fitted on a handful of rows, knows too few words to wait.
    sync_rows: int = 500


def _vacancy(row: store.Row, tenant: str) -> VacancyProfile | None:
    try:
        return VacancyProfile.from_payload(row.profile, id=row.id, tenant=tenant)
    except (ValueError, TypeError, KeyError):
        # A row the domain refuses can never be matched; one bad row must not stop the tenant's ranking.
        log.warning("unrankable vacancy row skipped", extra={"ctx": {"tenant": tenant}})
        return None


def _candidate(row: store.Row, tenant: str) -> CandidateProfile | None:
    try:
        return CandidateProfile.from_payload(row.profile, id=row.id, tenant=tenant)
    except (ValueError, TypeError, KeyError):
        log.warning("unrankable candidate row skipped", extra={"ctx": {"tenant": tenant}})
        return None


def _matchable_vacancy(vacancy: VacancyProfile | None) -> TypeGuard[VacancyProfile]:
    return vacancy is not None and vacancy.status == "open"


def _matchable_candidate(candidate: CandidateProfile | None) -> TypeGuard[CandidateProfile]:
    return candidate is not None and candidate.consent_matching


def _compacted(chunks: list[Any], rebuild: Callable[[list[Any]], Any]) -> list[Any]:
    """Size-tiered: merge the newest chunk into the one before while they are of comparable size.

    Chunk sizes then fall geometrically, so there are about log2(delta) of them, each row is re-transformed
    about log2(delta) times in all, and one change costs a small chunk, not a rebuild of the whole delta.
    """
    chunks = [chunk for chunk in chunks if len(chunk)]
    while len(chunks) >= 2 and 2 * chunks[-1].size >= chunks[-2].size:
        newer, older = chunks.pop(), chunks.pop()
        chunks.append(rebuild(older.live() + newer.live()))
    return chunks


class _Chunks:
    """One side's changed rows as a few small indexes built with the base's model, plus the rows changed since
    the last one was built, which wait until the side is next ranked (see the module's notes). Immutable but
    for that one step, which a lock guards: requests on several threads rank the same index."""

    def __init__(
        self,
        build: Callable[[Iterable[Any]], Any],
        chunks: Iterable[Any] = (),
        waiting: Mapping[str, Any] | None = None,
    ) -> None:
        self._build = build
        self._chunks = tuple(chunks)
        self._waiting = dict(waiting or {})
        self._lock = threading.Lock()

    def built(self) -> tuple[Any, ...]:
        """The chunks, the waiting rows indexed first."""
        if self._waiting:
            with self._lock:
                if self._waiting:
                    self._chunks = tuple(_compacted([*self._chunks, self._build(self._waiting.values())], self._build))
                    self._waiting = {}
        return self._chunks

    def applied(self, changed: set[str], new: Mapping[str, Any]) -> _Chunks:
        """These chunks without the changed rows, and ``new`` (their matchable new versions) waiting."""
        with self._lock:
            # Both at once: another thread may be moving the waiting rows into a chunk.
            chunks, waiting = self._chunks, self._waiting
        waiting = {key: row for key, row in waiting.items() if key not in changed}
        waiting.update(new)
        return _Chunks(self._build, [chunk.without(changed) for chunk in chunks], waiting)


class TenantIndex:
    """One tenant's rankable vacancies and candidates at change number :attr:`seq`; never modified.

    The delta is kept twice: as dictionaries (the newest profile of each changed row, for lookups and
    counts) and as a few small indexes ("chunks") built with the base's model, which the rankings use; a
    side's newest changes are indexed when that side is next ranked (:class:`_Chunks`).
    """

    def __init__(
        self,
        tenant: str,
        seq: int,
        model: TextModel,
        base_vacancies: VacancyIndex,
        base_candidates: CandidateIndex,
        *,
        delta_vacancies: Mapping[str, VacancyProfile] | None = None,
        delta_candidates: Mapping[str, CandidateProfile] | None = None,
        vacancy_chunks: _Chunks | None = None,
        candidate_chunks: _Chunks | None = None,
        fitted_rows: int = 0,
        changed_since_fit: int = 0,
        removals_since_fit: int = 0,
        fitted_at: float | None = None,
    ) -> None:
        self.tenant = tenant
        self.seq = seq
        self.model = model
        self.base_vacancies = base_vacancies
        self.base_candidates = base_candidates
        self.delta_vacancies: dict[str, VacancyProfile] = dict(delta_vacancies or {})
        self.delta_candidates: dict[str, CandidateProfile] = dict(delta_candidates or {})
        self._vacancy_chunks = vacancy_chunks or _Chunks(functools.partial(VacancyIndex, model=model))
        self._candidate_chunks = candidate_chunks or _Chunks(functools.partial(CandidateIndex, model=model))
        self.fitted_rows = fitted_rows
        self.changed_since_fit = changed_since_fit
        self.removals_since_fit = removals_since_fit
        self.fitted_at = time.monotonic() if fitted_at is None else fitted_at

    # ---------------------------------------------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        tenant: str,
        seq: int,
        vacancies: Iterable[VacancyProfile],
        candidates: Iterable[CandidateProfile],
        *,
        lexicon: Lexicon | None = None,
        model: TextModel | None = None,
    ) -> TenantIndex:
        """Fit a model on these profiles (unless one is given) and index them."""
        vacancies = [v for v in vacancies if _matchable_vacancy(v)]
        candidates = [c for c in candidates if _matchable_candidate(c)]
        if model is None:
            model = text_model.fit_model(vacancies, candidates, lexicon=lexicon)
        return cls(
            tenant,
            seq,
            model,
            VacancyIndex(vacancies, model=model),
            CandidateIndex(candidates, model=model),
            fitted_rows=len(vacancies) + len(candidates),
        )

    @classmethod
    def from_rows(
        cls, tenant: str, changes: store.Changes, *, lexicon: Lexicon | None = None, model: TextModel | None = None
    ) -> TenantIndex:
        """Build from a full read (:func:`services.matching.ranking.store.changes_since` with ``after=None``)."""
        return cls.build(
            tenant,
            changes.upto,
            filter(None, (_vacancy(row, tenant) for row in changes.vacancies)),
            filter(None, (_candidate(row, tenant) for row in changes.candidates)),
            lexicon=lexicon,
            model=model,
        )

    def applied(self, changes: store.Changes) -> TenantIndex:
        """This index with the changes applied, transformed with the same model; this one is unchanged."""
        if changes.upto <= self.seq:
            return self
        delta_vacancies = dict(self.delta_vacancies)
        delta_candidates = dict(self.delta_candidates)
        # The newest version of each row in this batch that can be matched, to be indexed when its side is next
        # ranked (see _Chunks).
        new_vacancies: dict[str, VacancyProfile] = {}
        new_candidates: dict[str, CandidateProfile] = {}
        changed_vacancies: set[str] = set()
        changed_candidates: set[str] = set()
        for row in changes.vacancies:
            changed_vacancies.add(row.id)
            vacancy = _vacancy(row, self.tenant)
            if _matchable_vacancy(vacancy):
                delta_vacancies[row.id] = new_vacancies[row.id] = vacancy
            else:
                delta_vacancies.pop(row.id, None)
                new_vacancies.pop(row.id, None)
        for row in changes.candidates:
            changed_candidates.add(row.id)
            candidate = _candidate(row, self.tenant)
            if _matchable_candidate(candidate):
                delta_candidates[row.id] = new_candidates[row.id] = candidate
            else:
                delta_candidates.pop(row.id, None)
                new_candidates.pop(row.id, None)
        removed = 0
        if changes.removals:
            by_hash = self._candidate_hashes(delta_candidates)
            for removal in changes.removals:
                candidate_id = by_hash.get(removal.entity_hash)
                if removal.kind == "candidate" and candidate_id is not None:
                    removed += 1
                    changed_candidates.add(candidate_id)
                    delta_candidates.pop(candidate_id, None)
                    new_candidates.pop(candidate_id, None)

        return TenantIndex(
            self.tenant,
            changes.upto,
            self.model,
            self.base_vacancies.without(changed_vacancies),
            self.base_candidates.without(changed_candidates),
            delta_vacancies=delta_vacancies,
            delta_candidates=delta_candidates,
            vacancy_chunks=self._vacancy_chunks.applied(changed_vacancies, new_vacancies),
            candidate_chunks=self._candidate_chunks.applied(changed_candidates, new_candidates),
            fitted_rows=self.fitted_rows,
            changed_since_fit=self.changed_since_fit + len(changes.vacancies) + len(changes.candidates) + removed,
            removals_since_fit=self.removals_since_fit + removed,
            fitted_at=self.fitted_at,
        )

    def _candidate_hashes(self, delta: Mapping[str, CandidateProfile]) -> dict[str, str]:
        ids = {c.id for c in self.base_candidates.candidates} | set(delta)
        return {store.entity_hash(self.tenant, candidate_id): candidate_id for candidate_id in ids}

    @property
    def vacancy_chunks(self) -> tuple[VacancyIndex, ...]:
        """The delta's vacancies as a few small indexes."""
        return self._vacancy_chunks.built()

    @property
    def candidate_chunks(self) -> tuple[CandidateIndex, ...]:
        """The delta's candidates as a few small indexes."""
        return self._candidate_chunks.built()

    # ---------------------------------------------------------------------------------------------- reading

    def vacancy(self, vacancy_id: str) -> VacancyProfile | None:
        return self.delta_vacancies.get(vacancy_id) or self.base_vacancies.get(vacancy_id)

    def candidate(self, candidate_id: str) -> CandidateProfile | None:
        return self.delta_candidates.get(candidate_id) or self.base_candidates.get(candidate_id)

    def matchable_vacancies(self) -> int:
        """Open vacancies with a position left."""
        delta = sum(1 for v in self.delta_vacancies.values() if v.status == "open" and v.positions > 0)
        return self.base_vacancies.matchable_count() + delta

    def candidate_count(self) -> int:
        return len(self.base_candidates) + len(self.delta_candidates)

    def candidate_groups(self) -> Counter[tuple[int, bool]]:
        """Candidates who consented to matching, per (ladder step, in the target-group register)."""
        people = [*self.base_candidates.live(), *self.delta_candidates.values()]
        return Counter((candidate.ladder_step, candidate.target_group_register) for candidate in people)

    def vacancies_for(
        self, candidate: CandidateProfile, k: int | None = 10, ranking: Ranking = DEFAULT_RANKING
    ) -> list[Match]:
        """The best vacancies for a candidate, as :meth:`VacancyIndex.top_k` over everything indexed."""
        groups = [part.top_k(candidate, k, ranking) for part in (self.base_vacancies, *self.vacancy_chunks)]
        return rows.merge_ranked(groups, k, by="vacancy")

    def candidates_for(
        self, vacancy: VacancyProfile, k: int | None = 10, ranking: Ranking = DEFAULT_RANKING
    ) -> list[Match]:
        """The best candidates for a vacancy, as :meth:`CandidateIndex.rank` over everything indexed."""
        groups = [part.rank(vacancy, k, ranking) for part in (self.base_candidates, *self.candidate_chunks)]
        return rows.merge_ranked(groups, k, by="candidate")

    # ---------------------------------------------------------------------------------------------- refitting

    def is_small(self, policy: RefitPolicy) -> bool:
        return self.fitted_rows + self.changed_since_fit < policy.sync_rows

    def refit_due(self, policy: RefitPolicy, now: float | None = None) -> bool:
        age = (time.monotonic() if now is None else now) - self.fitted_at
        if self.changed_since_fit == 0 or (age < policy.min_interval_s and not self.is_small(policy)):
            return False
        return (
            self.removals_since_fit > 0
            or self.changed_since_fit >= policy.changed_share * max(self.fitted_rows, 1)
            or len(self.delta_vacancies) + len(self.delta_candidates) > policy.max_delta_rows
            or age >= policy.max_age_s
        )
