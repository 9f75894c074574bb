"""A live ranking index per tenant: a cache of the read models, kept fresh by their change sequence.

Any web or worker process may hold one per tenant it serves. It is never the source of truth: it is built
from the database (never from Kafka history), so a fresh or restarted process is ready as soon as it has
read one tenant's rows and fitted a text model on them, and any replica sees what every other replica wrote.

How it stays fresh
------------------
A :class:`TenantIndex` is immutable. It holds a fitted :class:`~services.matching.domain.TextModel`, a
*base* :class:`~services.matching.domain.VacancyIndex` and :class:`~services.matching.domain.CandidateIndex`
built when the model was fitted, and a *delta*: the vacancies and candidates that changed since. Each
request (or event) first asks the database for the rows numbered above the index's last change number
(:func:`services.matching.store.changes_since`, one indexed query per table, nothing when nothing changed)
and applies them: a changed row is masked out of the base and of the delta, and its new version is
transformed with the existing model into a small index of its own (a chunk; chunks of comparable size are
merged, so there are only a few); an erased or no longer matchable row is masked and dropped. Nothing is
refitted per event; a ranking merges the best of the base and of each chunk.

The vocabulary statistics (IDF) and the delta's size drift as rows change, so a refit rebuilds everything
from the database in a background thread when enough has changed (:class:`RefitPolicy`: a share of the rows,
an age, any erasure, a large delta) and the result is swapped in by the next request, after it caught up
with what changed meanwhile; requests do not wait for it. A small tenant (a few hundred rows) is refitted
in the caller instead: that takes tens of milliseconds, and a young tenant's model knows too few words.

Erasure: an erased candidate leaves the index at the next request (the removal is numbered like any change),
and the refit that follows drops their words from the model's vocabulary too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.matching import domain, metrics, store
from services.matching.concepts import Lexicon
from services.matching.domain import (
    CandidateIndex,
    CandidateProfile,
    Match,
    Reranker,
    TextModel,
    VacancyIndex,
    VacancyProfile,
)
from services.matching.reranker import RerankerCache, RerankerModel
from services.matching.settings import MatchingSettings
from shared.db import Database
from shared.registry import Registry

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


def _matchable_vacancy(vacancy: VacancyProfile | None) -> bool:
    return vacancy is not None and vacancy.status == "open"


def _matchable_candidate(candidate: CandidateProfile | None) -> bool:
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


class TenantIndex:
    """One tenant's rankable vacancies and candidates at change number :attr:`seq`; never modified.

    The delta is kept twice: as dictionaries (the newest profile of each changed row, for lookups and
    counts) and as a few small indexes ("chunks") built with the base's model, which the rankings use.
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
        vacancy_chunks: Iterable[VacancyIndex] = (),
        candidate_chunks: Iterable[CandidateIndex] = (),
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
        self.vacancy_chunks: tuple[VacancyIndex, ...] = tuple(vacancy_chunks)
        self.candidate_chunks: tuple[CandidateIndex, ...] = tuple(candidate_chunks)
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
            model = domain.fit_model(vacancies, candidates, lexicon=lexicon)
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
        """Build from a full read (:func:`services.matching.store.changes_since` with ``after=None``)."""
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
        # The newest version of each row in this batch that can be matched, to index as one new chunk.
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

        vacancy_chunks = [chunk.without(changed_vacancies) for chunk in self.vacancy_chunks]
        if new_vacancies:
            vacancy_chunks.append(VacancyIndex(new_vacancies.values(), model=self.model))
        candidate_chunks = [chunk.without(changed_candidates) for chunk in self.candidate_chunks]
        if new_candidates:
            candidate_chunks.append(CandidateIndex(new_candidates.values(), model=self.model))
        return TenantIndex(
            self.tenant,
            changes.upto,
            self.model,
            self.base_vacancies.without(changed_vacancies),
            self.base_candidates.without(changed_candidates),
            delta_vacancies=delta_vacancies,
            delta_candidates=delta_candidates,
            vacancy_chunks=_compacted(vacancy_chunks, lambda live: VacancyIndex(live, model=self.model)),
            candidate_chunks=_compacted(candidate_chunks, lambda live: CandidateIndex(live, model=self.model)),
            fitted_rows=self.fitted_rows,
            changed_since_fit=self.changed_since_fit + len(changes.vacancies) + len(changes.candidates) + removed,
            removals_since_fit=self.removals_since_fit + removed,
            fitted_at=self.fitted_at,
        )

    def _candidate_hashes(self, delta: Mapping[str, CandidateProfile]) -> dict[str, str]:
        ids = {c.id for c in self.base_candidates.candidates} | set(delta)
        return {store.entity_hash(self.tenant, candidate_id): candidate_id for candidate_id in ids}

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
        self,
        candidate: CandidateProfile,
        k: int | None = 10,
        *,
        weights: Mapping[str, float] | None = None,
        reranker: Reranker | None = None,
        min_score: float | None = None,
    ) -> list[Match]:
        """The best vacancies for a candidate, as :meth:`VacancyIndex.top_k` over everything indexed."""
        options: dict[str, Any] = {"weights": weights, "reranker": reranker, "min_score": min_score}
        groups = [part.top_k(candidate, k, **options) for part in (self.base_vacancies, *self.vacancy_chunks)]
        return domain.merge_ranked(groups, k, by="vacancy")

    def candidates_for(
        self,
        vacancy: VacancyProfile,
        k: int | None = 10,
        *,
        weights: Mapping[str, float] | None = None,
        require_share_consent: bool = True,
        reranker: Reranker | None = None,
        min_score: float | None = None,
    ) -> list[Match]:
        """The best candidates for a vacancy, as :meth:`CandidateIndex.rank` over everything indexed."""
        options: dict[str, Any] = {
            "weights": weights,
            "require_share_consent": require_share_consent,
            "reranker": reranker,
            "min_score": min_score,
        }
        groups = [part.rank(vacancy, k, **options) for part in (self.base_candidates, *self.candidate_chunks)]
        return domain.merge_ranked(groups, k, by="candidate")

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


@dataclass
class _Entry:
    lock: threading.Lock
    current: TenantIndex | None = None
    # A refit finished in the background, waiting for the next request to catch it up and swap it in.
    pending: TenantIndex | None = None
    refitting: bool = False
    failures: int = 0
    # After a failed refit, none is started before this time (the cache's clock).
    retry_at: float = 0.0


class IndexCache:
    """Every tenant's :class:`TenantIndex` in this process, refreshed on each use.

    ``db`` is used by background refits only; a request refreshes through its own session, so that what it
    ranks is what its transaction sees. Pass ``background=False`` to refit in the caller instead (tests,
    command-line tools).
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        policy: RefitPolicy | None = None,
        background: bool = True,
        lexicon_check_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.policy = policy or RefitPolicy()
        self.background = background and db is not None
        self.lexicon_check_s = lexicon_check_s
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._lexicon: Lexicon = domain.default_lexicon()
        self._esco_state: tuple[int, Any] = (0, None)
        self._lexicon_checked = -float("inf")

    def _entry(self, tenant: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(tenant)
            if entry is None:
                entry = self._entries[tenant] = _Entry(threading.Lock())
            return entry

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def peek(self, tenant: str) -> TenantIndex | None:
        """The tenant's index as it is, without asking the database; None before its first use."""
        entry = self._entries.get(tenant)
        return entry.current if entry else None

    # ---------------------------------------------------------------------------------------------- lexicon

    def lexicon(self, session: Session) -> Lexicon:
        """The shipped concepts plus whatever ESCO labels are loaded, re-read when a load changed them."""
        now = self.clock()
        if now - self._lexicon_checked < self.lexicon_check_s:
            return self._lexicon
        state = store.esco_state(session)
        self._lexicon_checked = now
        if state != self._esco_state:
            labels = store.all_esco_labels(session) if state[0] else []
            self._lexicon = domain.lexicon_with(labels) if labels else domain.default_lexicon()
            self._esco_state = state
            log.info("concept lexicon loaded", extra={"ctx": {"count": len(self._lexicon)}})
        return self._lexicon

    # ---------------------------------------------------------------------------------------------- reading

    def current(self, session: Session, tenant: str, *, upto: int | None = None) -> TenantIndex:
        """The tenant's index with every change up to ``upto`` (all committed ones when None) applied.

        A handler that has just written a row passes the number below its own: its own uncommitted row
        must never enter a cache that outlives its transaction.
        """
        entry = self._entry(tenant)
        with entry.lock:
            index = entry.pending if entry.pending is not None else entry.current
            lexicon = self.lexicon(session)
            if index is None:
                index = self._build(session, tenant, upto, lexicon, "initial")
            else:
                changes = store.changes_since(session, tenant, index.seq, upto)
                if changes.pruned_seq > index.seq:
                    # Removals this index never saw were pruned: only a full read is safe.
                    index = self._build(session, tenant, upto, lexicon, "initial")
                elif changes.upto > index.seq:
                    index = index.applied(changes)
            entry.current, entry.pending = index, None
            now = self.clock()
            stale_lexicon = index.model.lexicon is not lexicon
            due = stale_lexicon or index.refit_due(self.policy, now)
            start = due and not entry.refitting and now >= entry.retry_at
            if start:
                entry.refitting = True
        if start:
            in_caller = not self.background or index.is_small(self.policy)
            self._start_refit(tenant, entry, session if in_caller else None, upto)
        return entry.current if entry.current is not None else index

    def _build(self, session: Session, tenant: str, upto: int | None, lexicon: Lexicon, kind: str) -> TenantIndex:
        started = time.perf_counter()
        rows = store.changes_since(session, tenant, None, upto)
        index = TenantIndex.from_rows(tenant, rows, lexicon=lexicon)
        index.fitted_at = self.clock()
        elapsed = time.perf_counter() - started
        metrics.MATCHING_INDEX_BUILD.labels(kind).observe(elapsed)
        log.info(
            "matching index built",
            extra={
                "ctx": {
                    "tenant": tenant,
                    "reason": kind,
                    "count": index.fitted_rows,
                    "duration_ms": round(elapsed * 1000, 1),
                }
            },
        )
        return index

    # ---------------------------------------------------------------------------------------------- refits

    def _start_refit(self, tenant: str, entry: _Entry, session: Session | None, upto: int | None) -> None:
        if session is not None:
            # Refit now, in the caller's transaction.
            try:
                index = self._build(session, tenant, upto, self.lexicon(session), "refit")
                with entry.lock:
                    if entry.current is None or index.seq >= entry.current.seq:
                        entry.current = index
            finally:
                entry.refitting = False
            return
        thread = threading.Thread(target=self._refit, args=(tenant, entry), name=f"refit-{tenant}", daemon=True)
        thread.start()

    def _refit(self, tenant: str, entry: _Entry) -> None:
        assert self.db is not None
        try:
            with self.db.session() as session:
                lexicon = self.lexicon(session)
                rows = store.changes_since(session, tenant, None)
            # Fitted outside the transaction, so that a SQLite writer is not kept waiting for the fit.
            started = time.perf_counter()
            index = TenantIndex.from_rows(tenant, rows, lexicon=lexicon)
            index.fitted_at = self.clock()
            metrics.MATCHING_INDEX_BUILD.labels("refit").observe(time.perf_counter() - started)
            with entry.lock:
                entry.pending = index
                entry.failures = 0
        except Exception as exc:
            with entry.lock:
                entry.failures += 1
                entry.retry_at = self.clock() + min(300.0, 5.0 * 2 ** min(entry.failures, 6))
            # The current index keeps serving; the next due check tries again.
            log.warning("matching index refit failed", extra={"ctx": {"tenant": tenant, "error": type(exc).__name__}})
        finally:
            with entry.lock:
                entry.refitting = False

    def warm(self, tenants: Callable[[], Iterable[str]], stop: threading.Event | None = None) -> int:
        """Build the indexes of these tenants ahead of their first use; returns how many were built.

        Each is built like a background refit (rows read in a short transaction, fitted outside it) and left
        for the first request or event to catch up and take, so a fresh worker does not fit a large tenant
        inside the transaction of the first event it handles. Failing is harmless: the first use builds.
        """
        if self.db is None:
            return 0
        built = 0
        try:
            for tenant in tenants():
                if stop is not None and stop.is_set():
                    break
                with self.db.session() as session:
                    last, _ = store.change_counter(session, tenant)
                entry = self._entry(tenant)
                with entry.lock:
                    if last == 0 or entry.current is not None or entry.pending is not None or entry.refitting:
                        continue
                    entry.refitting = True
                self._refit(tenant, entry)
                built += 1
        except Exception as exc:
            log.warning("matching index warm-up stopped", extra={"ctx": {"error": type(exc).__name__}})
        return built

    def wait_for_refits(self, timeout: float = 30.0) -> None:
        """Block until no refit is running (tests and tools)."""
        deadline = time.monotonic() + timeout
        while any(entry.refitting for entry in list(self._entries.values())):
            if time.monotonic() > deadline:
                raise TimeoutError("refit still running")
            time.sleep(0.01)

    def forget(self, tenant: str | None = None) -> None:
        """Drop one tenant's index (or all): the next use rebuilds it from the database."""
        with self._lock:
            if tenant is None:
                self._entries.clear()
            else:
                self._entries.pop(tenant, None)


class MatchingEngine:
    """What ranking needs besides the read models: the tenant's settings, its live index, its reranker.

    One per process (web app or worker); every handler and route that computes a score goes through it,
    so that each tenant's weights and threshold apply everywhere.
    """

    def __init__(
        self,
        settings: Callable[[str], MatchingSettings],
        cache: IndexCache,
        rerankers: RerankerCache | None = None,
    ) -> None:
        self._settings = settings
        self.cache = cache
        self.rerankers = rerankers or RerankerCache()

    @classmethod
    def for_process(cls, db: Database, registry: Registry, *, policy: RefitPolicy | None = None) -> MatchingEngine:
        return cls(registry.settings, IndexCache(db, policy=policy), RerankerCache())

    @classmethod
    def with_fixed_settings(
        cls, threshold: float = domain.DEFAULT_PROPOSAL_THRESHOLD, weights: Mapping[str, float] | None = None
    ) -> MatchingEngine:
        """The same settings for every tenant and refits in the caller: for tests and tools."""
        fixed = MatchingSettings(match_threshold=threshold, score_weights=dict(weights or domain.DEFAULT_WEIGHTS))
        return cls(lambda _tenant: fixed, IndexCache(background=False))

    def settings(self, tenant: str) -> MatchingSettings:
        return self._settings(tenant)

    def weights(self, tenant: str) -> dict[str, float]:
        """The tenant's score weights; the defaults if what is stored cannot be used (and a warning)."""
        try:
            return domain.resolve_weights(self.settings(tenant).score_weights)
        except (ValueError, TypeError):
            log.warning("unusable score weights, defaults used", extra={"ctx": {"tenant": tenant}})
            return dict(domain.DEFAULT_WEIGHTS)

    def threshold(self, tenant: str) -> float:
        return float(self.settings(tenant).match_threshold)

    def index(self, session: Session, tenant: str, *, upto: int | None = None) -> TenantIndex:
        return self.cache.current(session, tenant, upto=upto)

    def reranker(self, session: Session, tenant: str) -> RerankerModel | None:
        return self.rerankers.get(session, tenant)
