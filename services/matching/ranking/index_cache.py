"""Every tenant's live index in this process, caught up with the database on each use and refitted in the
background when enough has changed (see :mod:`services.matching.ranking.live_index`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.matching import metrics
from services.matching.ranking import normalisation, store
from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.live_index import RefitPolicy, TenantIndex
from shared.db import Database

log = logging.getLogger(__name__)


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
        self._lexicon: Lexicon = normalisation.default_lexicon()
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
            self._lexicon = normalisation.lexicon_with(labels) if labels else normalisation.default_lexicon()
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
