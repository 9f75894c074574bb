"""Every tenant's live index in this process, caught up with the database on each use and refitted in the
background when enough has changed (see :mod:`services.matching.ranking.live_index`).

Indexes are built from a read transaction and fitted outside any, so that a build never holds the write
lock (on SQLite a writing transaction holds it for the whole database). They are kept under a memory
budget, least recently used dropped first; a request for a tenant whose index is not built waits for the
background build a bounded time, then is told to come back (:class:`IndexWarming`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from services.matching import metrics
from services.matching.ranking import normalisation, store
from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.index_memory import estimated_bytes
from services.matching.ranking.live_index import RefitPolicy, TenantIndex
from shared import heap
from shared.db import Database

log = logging.getLogger(__name__)

# Where a session keeps the indexes that include its transaction's own changes (see IndexCache.current).
_OWN_INDEXES = "matching_own_indexes"


class IndexWarming(Exception):
    """The tenant's index is being built in the background; ask again after ``retry_after_s``."""

    def __init__(self, tenant: str, retry_after_s: int) -> None:
        super().__init__(f"the matching index of {tenant} is being built")
        self.retry_after_s = retry_after_s


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
    # Set when a background build of a tenant with no index yet has ended, built or failed.
    settled: threading.Event = field(default_factory=threading.Event)
    # The estimated bytes of current and pending, and each one's by its fitted model (see _keep_within_budget).
    size: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class IndexCache:
    """Every tenant's :class:`TenantIndex` in this process, refreshed on each use.

    ``db`` is used by background builds only; a request refreshes through its own session, so that what it
    ranks is what its transaction sees. Pass ``background=False`` to build and refit in the caller instead
    (tests, command-line tools).

    ``memory_budget_bytes`` bounds the estimated size of the indexes kept (None: no bound); the least
    recently used go first, never the one in use. ``cold_wait_s`` is how long a caller waits for a tenant's
    first build before :class:`IndexWarming` is raised (None: as long as it takes, which a worker wants).
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        policy: RefitPolicy | None = None,
        background: bool = True,
        lexicon_check_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        memory_budget_bytes: int | None = None,
        cold_wait_s: float | None = None,
        size_of: Callable[[TenantIndex], int] = estimated_bytes,
    ) -> None:
        self.db = db
        self.memory_budget_bytes = memory_budget_bytes
        self.cold_wait_s = cold_wait_s
        self.size_of = size_of
        self.policy = policy or RefitPolicy()
        self.background = background and db is not None
        self.lexicon_check_s = lexicon_check_s
        self.clock = clock
        # Least recently used first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        # One background build at a time in a process. A request refused with 503 leaves its build running,
        # so traffic over more regions than the budget holds would otherwise fit several at once, each
        # at a build's peak, and the process keeps what they used: the 35-region benchmark saw a budget of
        # 384 MiB grow gunicorn workers to 1.1 GiB. Builds waiting for the slot hold no rows yet.
        self._build_slot = threading.Lock()
        self._warm_up: threading.Event | None = None
        self._lexicon: Lexicon = normalisation.default_lexicon()
        self._labels_state: tuple[tuple[int, Any], ...] = ()
        self._lexicon_checked = -float("inf")

    def _entry(self, tenant: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(tenant)
            if entry is None:
                entry = self._entries[tenant] = _Entry(threading.Lock())
            self._entries.move_to_end(tenant)
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
        """The shipped concepts plus whatever ESCO and CompetentNL labels are loaded, re-read when a load
        changed them."""
        now = self.clock()
        if now - self._lexicon_checked < self.lexicon_check_s:
            return self._lexicon
        state = store.concept_labels_state(session)
        self._lexicon_checked = now
        if state != self._labels_state:
            labels = store.all_concept_labels(session) if any(count for count, _ in state) else []
            self._lexicon = normalisation.lexicon_with(labels) if labels else normalisation.default_lexicon()
            self._labels_state = state
            log.info("concept lexicon loaded", extra={"ctx": {"count": len(self._lexicon)}})
        return self._lexicon

    # ---------------------------------------------------------------------------------------------- reading

    def current(self, session: Session, tenant: str, *, upto: int | None = None) -> TenantIndex:
        """The tenant's index with every change up to ``upto`` (all committed ones when None) applied.

        A handler that has just written a row passes the number below its own. When the transaction handles
        several events, changes the earlier ones wrote are applied too, but to a copy that lives and dies
        with the session: an uncommitted row must never enter a cache that outlives its transaction.
        """
        own_from = store.own_changes_from(session, tenant)
        if own_from is None or (upto is not None and upto < own_from):
            return self._shared(session, tenant, upto)
        local: dict[str, TenantIndex] = session.info.setdefault(_OWN_INDEXES, {})
        index = local.get(tenant)
        if index is None or index.seq < own_from - 1:
            # Once caught up to just below this transaction's first change, nothing committed can be missing
            # any more (the counter stays locked): the later events of the transaction skip the question.
            committed = self._shared(session, tenant, own_from - 1)
            if index is None or index.seq < committed.seq:
                index = committed
        changes = store.changes_since(session, tenant, index.seq, upto)
        if changes.pruned_seq > index.seq:
            index = self._build(session, tenant, upto, self.lexicon(session), "initial")
        elif changes.upto > index.seq:
            index = index.applied(changes)
            if index.refit_due(self.policy, self.clock()) and (not self.background or index.is_small(self.policy)):
                # As the process's index would be refitted in the caller; this one only for the transaction.
                index = self._build(session, tenant, upto, self.lexicon(session), "refit")
        local[tenant] = index
        return index

    def _shared(self, session: Session, tenant: str, upto: int | None) -> TenantIndex:
        """The process's index of the tenant, caught up to ``upto``, all of it committed."""
        entry = self._entry(tenant)
        self._await_first_build(tenant, entry)
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
        self._keep_within_budget(tenant, entry)
        return entry.current if entry.current is not None else index

    def await_first_build(self, tenant: str) -> None:
        """Wait, a bounded time, for the tenant's index to exist; raises :class:`IndexWarming` if it does
        not by then. A request calls it before its transaction begins, so that on SQLite the wait holds
        up no writer."""
        self._await_first_build(tenant, self._entry(tenant))

    def _await_first_build(self, tenant: str, entry: _Entry) -> None:
        """Start the tenant's first build in the background (unless one runs) and wait for it a while."""
        if not self.background or entry.current is not None or entry.pending is not None:
            return
        with entry.lock:
            if entry.current is not None or entry.pending is not None:
                return
            if not entry.refitting:
                entry.refitting = True
                entry.settled.clear()
                threading.Thread(target=self._refit, args=(tenant, entry), name=f"build-{tenant}", daemon=True).start()
            settled = entry.settled
        settled_in_time = settled.wait(self.cold_wait_s)
        built = entry.pending is not None or entry.current is not None
        if settled_in_time and (built or self.cold_wait_s is None):
            # Built; or failed where there is no one to refuse (a worker's event), and then the caller builds
            # in its own transaction, as it did before builds moved to the background.
            metrics.MATCHING_INDEX_COLD.labels("waited").inc()
            return
        metrics.MATCHING_INDEX_COLD.labels("refused").inc()
        # A build takes seconds (about 6 s per 10,000 vacancies on the reference machine): asking again after
        # as long as this request waited spreads the retries over the build without hammering it.
        raise IndexWarming(tenant, retry_after_s=max(1, math.ceil(self.cold_wait_s or 1)))

    # ---------------------------------------------------------------------------------------------- memory

    def _keep_within_budget(self, in_use: str, entry: _Entry, *, evict: bool = True) -> None:
        """Measure the tenant's indexes if they changed, then drop the least recently used of the others
        while the total is over the budget. One being built stays: its build would land nowhere."""
        # Measured once per fitted model, on the thread that built it: an estimate walks the index (about
        # 0.3 s for 5,000 vacancies), while catching up with changes makes a new index on the same model
        # several times a minute. What those changes add is bounded by the refit policy's delta, uncounted.
        sizes = {}
        for index in (entry.current, entry.pending):
            if index is not None:
                model = id(index.model)
                sizes[model] = entry.sizes[model] if model in entry.sizes else self.size_of(index)
        entry.sizes, entry.size = sizes, sum(sizes.values())
        with self._lock:
            total = sum(other.size for other in self._entries.values())
            dropped = 0
            if evict and self.memory_budget_bytes is not None:
                for tenant in list(self._entries):
                    if total <= self.memory_budget_bytes:
                        break
                    other = self._entries[tenant]
                    if tenant == in_use or other.refitting:
                        continue
                    del self._entries[tenant]
                    total -= other.size
                    dropped += 1
                    metrics.MATCHING_INDEX_EVICTIONS.inc()
                    log.info("matching index dropped", extra={"ctx": {"tenant": tenant, "reason": "memory budget"}})
        metrics.MATCHING_INDEX_BYTES.set(total)
        if dropped:
            # A request may still be ranking with a dropped index; its pages go back once it is done with
            # it and the next build or drop trims again.
            heap.give_back_freed_memory()

    def held_bytes(self) -> int:
        """The estimated bytes of the indexes kept, as last measured."""
        with self._lock:
            return sum(entry.size for entry in self._entries.values())

    def _build(self, session: Session, tenant: str, upto: int | None, lexicon: Lexicon, kind: str) -> TenantIndex:
        started = time.perf_counter()
        rows = store.changes_since(session, tenant, None, upto)
        index = TenantIndex.from_rows(tenant, rows, lexicon=lexicon)
        index.fitted_at = self.clock()
        elapsed = time.perf_counter() - started
        metrics.MATCHING_INDEX_BUILD.labels(kind).observe(elapsed)
        del rows
        heap.give_back_freed_memory()  # as after a background build, below
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

    def _refit(self, tenant: str, entry: _Entry, *, evict: bool = True) -> None:
        assert self.db is not None
        kind = "refit" if entry.current is not None else "initial"
        try:
            with self._build_slot:
                # A read transaction: on SQLite no write lock, so the consumer, check-ins and readiness go on.
                with self.db.read_session() as session:
                    lexicon = self.lexicon(session)
                    rows = store.changes_since(session, tenant, None)
                # Fitted outside any transaction: a PostgreSQL snapshot is not held open for the fit either.
                started = time.perf_counter()
                index = TenantIndex.from_rows(tenant, rows, lexicon=lexicon)
                index.fitted_at = self.clock()
                metrics.MATCHING_INDEX_BUILD.labels(kind).observe(time.perf_counter() - started)
                del rows
                # A build's working memory (the rows, the intermediate matrices) is several times the index
                # it leaves; without this the process would keep it resident as its new floor.
                heap.give_back_freed_memory()
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
                entry.settled.set()
        if entry.pending is not None:
            self._keep_within_budget(tenant, entry, evict=evict)

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
                with self.db.read_session() as session:
                    last, _ = store.change_counter(session, tenant)
                entry = self._entry(tenant)
                with entry.lock:
                    if last == 0 or entry.current is not None or entry.pending is not None or entry.refitting:
                        continue
                    entry.refitting = True
                self._refit(tenant, entry, evict=False)
                held = self.held_bytes()
                if self.memory_budget_bytes is not None and held > self.memory_budget_bytes:
                    # The budget is full, and the rest would only push out what was built: the first use of
                    # each builds it. This one stays if it is alone (a region larger than the budget is
                    # still served), and goes if it does not fit beside those built before it.
                    if held > entry.size:
                        self.forget(tenant)
                    else:
                        built += 1
                    break
                built += 1
        except Exception as exc:
            log.warning("matching index warm-up stopped", extra={"ctx": {"error": type(exc).__name__}})
        return built

    def start_warm_up(self, tenants: Callable[[], Iterable[str]]) -> None:
        """Warm these tenants' indexes in a thread of their own (once per process); see :meth:`warmed_up`."""
        with self._lock:
            if self._warm_up is not None:
                return
            done = self._warm_up = threading.Event()

        def run() -> None:
            try:
                self.warm(tenants)
            finally:
                done.set()

        threading.Thread(target=run, name="index-warm-up", daemon=True).start()

    def warmed_up(self) -> bool:
        """Whether the warm-up has ended (built what it could within the budget); true if none was asked."""
        return self._warm_up is None or self._warm_up.is_set()

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
