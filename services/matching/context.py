"""What matching's routes reach: the common service context and the process's ranking engine, built once
by ``create_app`` (or handed in by a test) and read through :func:`context`."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.matching import config
from services.matching.ranking.engine import MatchingEngine
from shared.web.app import ServiceContext, current_context


@dataclass
class MatchingContext(ServiceContext):
    # Each web process keeps its own live indexes: gunicorn builds the app after forking each worker.
    engine: MatchingEngine = field(kw_only=True)

    @classmethod
    def around(cls, base: ServiceContext, *, engine: MatchingEngine | None = None) -> MatchingContext:
        """Matching's context on the settings, databases and clock of ``base``; with the process's own
        engine unless one is given."""
        if engine is None:
            engine = MatchingEngine.for_process(
                base.db,
                base.registry,
                policy=config.refit_policy(base.settings),
                memory_budget_bytes=config.index_memory_budget_bytes(base.settings),
                cold_wait_s=config.cold_wait_seconds(base.settings),
            )
        return cls(base.settings, base.db, base.registry, clock=base.clock, engine=engine)


def context() -> MatchingContext:
    """The context of the matching app serving this request."""
    found = current_context()
    if not isinstance(found, MatchingContext):
        raise TypeError("the matching routes need the app that services.matching.app.create_app builds")
    return found
