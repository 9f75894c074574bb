"""What ranking needs besides the read models, one per process: each tenant's settings, its live index and
its reranker, and from them the :class:`~services.matching.ranking.scoring.Ranking` a request or an event
ranks with."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from services.matching.ranking import rules, store
from services.matching.ranking.index_cache import IndexCache
from services.matching.ranking.live_index import RefitPolicy, TenantIndex
from services.matching.ranking.reranker import RerankerModel
from services.matching.ranking.scoring import Ranking
from services.matching.settings import MatchingSettings
from shared.cache import TTLCache
from shared.db import Database
from shared.registry import Registry

log = logging.getLogger(__name__)


class RerankerCache:
    """Each tenant's reranker in use, re-read at most every ``ttl_s`` seconds (like tenant settings), so a
    training or a rollback reaches every process within seconds."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self._models: TTLCache[str, RerankerModel | None] = TTLCache(ttl_s)

    def get(self, session: Session, tenant: str) -> RerankerModel | None:
        return self._models.get(tenant, lambda: _reranker_in_use(session, tenant))


def _reranker_in_use(session: Session, tenant: str) -> RerankerModel | None:
    stored = store.rerankers.active(session, tenant)
    return RerankerModel.from_dict(stored) if stored else None


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
    def for_process(
        cls,
        db: Database,
        registry: Registry,
        *,
        policy: RefitPolicy | None = None,
        memory_budget_bytes: int | None = None,
        cold_wait_s: float | None = None,
    ) -> MatchingEngine:
        """The engine of a web or worker process; see :class:`IndexCache` for the budget and the wait."""
        cache = IndexCache(db, policy=policy, memory_budget_bytes=memory_budget_bytes, cold_wait_s=cold_wait_s)
        return cls(registry.settings, cache, RerankerCache())

    @classmethod
    def with_fixed_settings(
        cls, threshold: float = rules.DEFAULT_PROPOSAL_THRESHOLD, weights: Mapping[str, float] | None = None
    ) -> MatchingEngine:
        """The same settings for every tenant and refits in the caller: for tests and tools."""
        fixed = MatchingSettings(match_threshold=threshold, score_weights=dict(weights or rules.DEFAULT_WEIGHTS))
        return cls(lambda _tenant: fixed, IndexCache(background=False))

    def settings(self, tenant: str) -> MatchingSettings:
        return self._settings(tenant)

    def weights(self, tenant: str) -> dict[str, float]:
        """The tenant's score weights; the defaults if what is stored cannot be used (and a warning)."""
        try:
            return rules.resolve_weights(self.settings(tenant).score_weights)
        except (ValueError, TypeError):
            log.warning("unusable score weights, defaults used", extra={"ctx": {"tenant": tenant}})
            return dict(rules.DEFAULT_WEIGHTS)

    def threshold(self, tenant: str) -> float:
        return float(self.settings(tenant).match_threshold)

    def await_index(self, tenant: str) -> None:
        """Outside any transaction: wait a bounded time for the tenant's index (see ``IndexCache``)."""
        self.cache.await_first_build(tenant)

    def index(self, session: Session, tenant: str, *, upto: int | None = None) -> TenantIndex:
        return self.cache.current(session, tenant, upto=upto)

    def reranker(self, session: Session, tenant: str) -> RerankerModel | None:
        return self.rerankers.get(session, tenant)

    def list_ranking(self, session: Session, tenant: str, *, require_share_consent: bool) -> Ranking:
        """How a list a person asked for is ranked: the tenant's weights and reranker, every allowed match."""
        return Ranking(
            weights=self.weights(tenant),
            reranker=self.reranker(session, tenant),
            require_share_consent=require_share_consent,
        )

    def proposal_ranking(self, session: Session, tenant: str) -> Ranking:
        """How proposals are ranked: as a jobcoach's list, down to the tenant's threshold."""
        return Ranking(
            weights=self.weights(tenant),
            reranker=self.reranker(session, tenant),
            min_score=self.threshold(tenant),
            require_share_consent=False,
        )
