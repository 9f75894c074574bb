"""Matching web processes warm their indexes before they are ready, keep them under a memory budget, and
answer 503 with Retry-After, never a long wait, for a region whose index is still being built."""

from __future__ import annotations

import copy
import threading
import uuid

import pytest

from services.matching import worker
from services.matching.app import create_app
from services.matching.context import MatchingContext
from services.matching.ranking import index_cache
from services.matching.ranking.engine import MatchingEngine, RerankerCache
from services.matching.ranking.index_cache import IndexCache
from shared.events import EventType, decode_event, encode_event, load_example, new_event
from tests.integration.conftest import bearer


def _payload(event_type: str, **fields) -> dict:
    data = copy.deepcopy(load_example(event_type)["data"])
    data.update(fields)
    return data


@pytest.fixture
def matching(service):
    return service("matching")


@pytest.fixture
def feed(matching, registry):
    """Events handled as the worker handles them, into the matching database."""
    table = worker.handler_table(MatchingEngine(registry.settings, IndexCache(matching.db, background=False)))

    def deliver(tenant: str, event_type: str, **fields) -> str:
        subject = str(uuid.uuid4())
        document = new_event(
            event_type, tenant=tenant, subject=subject, data=_payload(event_type, **fields), source="test"
        )
        event = decode_event(encode_event(document))
        with matching.db.session() as session:
            for handler in table[event.type]:
                handler(session, event)
        return subject

    return deliver


def _regions(registry, feed, count: int) -> list[str]:
    regions = [f"region-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for region in regions:
        registry.create_tenant(region)
        feed(region, EventType.VACANCY_POSTED, employer_id="emp-1")
    return regions


class GatedBuilds:
    """Holds every index fit until released, so that a test sees the moment a build is under way."""

    def __init__(self, monkeypatch) -> None:
        self.gate = threading.Event()
        original = index_cache.TenantIndex.from_rows

        def gated(*args, **kwargs):
            self.gate.wait(60)
            return original(*args, **kwargs)

        monkeypatch.setattr(index_cache.TenantIndex, "from_rows", gated)


def _app_with(matching, registry, cache: IndexCache):
    engine = MatchingEngine(registry.settings, cache, RerankerCache(ttl_s=0))
    context = MatchingContext.around(matching.context, engine=engine)
    return create_app(context).test_client()


def test_least_recently_used_indexes_go_first_when_the_budget_is_exceeded(matching, registry, feed):
    first, second, third, fourth = _regions(registry, feed, 4)
    # Each index counts 100 bytes: two fit under 250, a third pushes the least recently used out.
    cache = IndexCache(matching.db, memory_budget_bytes=250, size_of=lambda _index: 100)

    def use(region: str) -> None:
        with matching.db.session() as session:
            cache.current(session, region)

    use(first)
    use(second)
    use(first)
    use(third)
    assert cache.tenants() == sorted([first, third]), "the second was the least recently used"
    assert cache.held_bytes() == 200
    use(fourth)
    assert cache.tenants() == sorted([third, fourth])
    use(second)
    assert cache.peek(second) is not None, "an evicted region is built again on its next use"


def test_warm_up_stops_at_the_budget_and_leaves_the_rest_to_their_first_use(matching, registry, feed):
    regions = _regions(registry, feed, 3)
    cache = IndexCache(matching.db, memory_budget_bytes=250, size_of=lambda _index: 100)
    assert cache.warm(lambda: regions) == 2
    assert cache.tenants() == sorted(regions[:2])
    assert cache.held_bytes() == 200

    larger_than_the_budget = IndexCache(matching.db, memory_budget_bytes=50, size_of=lambda _index: 100)
    assert larger_than_the_budget.warm(lambda: regions) == 1, "a region larger than the budget is still served"
    assert larger_than_the_budget.tenants() == [regions[0]]


def test_a_region_whose_index_is_being_built_gets_503_with_retry_after_then_its_matches(
    matching, registry, feed, keys, tenant, monkeypatch
):
    vacancy_id = feed(tenant, EventType.VACANCY_POSTED, employer_id="emp-1")
    gated = GatedBuilds(monkeypatch)
    cache = IndexCache(matching.db, cold_wait_s=0.0)
    client = _app_with(matching, registry, cache)
    path = f"/v1/tenants/{tenant}/vacancies/{vacancy_id}/matches"

    warming = client.get(path, headers=bearer(keys["employer"]))
    assert warming.status_code == 503
    assert warming.headers["Content-Type"] == "application/problem+json"
    assert int(warming.headers["Retry-After"]) >= 1
    assert warming.get_json()["status"] == 503

    documented = client.get("/openapi.json").get_json()
    responses = documented["paths"]["/v1/tenants/{tenant}/vacancies/{vacancy_id}/matches"]["get"]["responses"]
    assert "503" in responses
    assert "Retry-After" in documented["components"]["responses"]["SERVICE_UNAVAILABLE"]["headers"]

    gated.gate.set()
    cache.wait_for_refits()
    assert client.get(path, headers=bearer(keys["employer"])).status_code == 200


def test_the_web_process_is_ready_only_once_its_indexes_are_warm(matching, registry, feed, tenant, monkeypatch):
    registry.create_tenant(tenant)
    feed(tenant, EventType.VACANCY_POSTED, employer_id="emp-1")
    gated = GatedBuilds(monkeypatch)
    cache = IndexCache(matching.db)
    client = _app_with(matching, registry, cache)

    cold = client.get("/readyz")
    assert cold.status_code == 503
    assert cold.get_json()["checks"]["indexes"] == "not yet"

    gated.gate.set()
    cache.wait_for_refits()
    while not cache.warmed_up():
        threading.Event().wait(0.05)
    warm = client.get("/readyz")
    assert warm.status_code == 200
    assert cache.peek(tenant) is not None or cache.tenants() == [tenant]


def test_an_index_build_holds_no_write_lock_while_it_reads(matching, registry, feed, tenant, monkeypatch):
    """On SQLite a writing transaction locks the whole database: a writer must get through while a build
    is in the middle of reading its rows."""
    registry.create_tenant(tenant)
    feed(tenant, EventType.VACANCY_POSTED, employer_id="emp-1")
    reading, release = threading.Event(), threading.Event()
    original = index_cache.store.changes_since

    def held_in_the_read(session, *args, **kwargs):
        if threading.current_thread().name == "index-build":
            reading.set()
            release.wait(60)
        return original(session, *args, **kwargs)

    monkeypatch.setattr(index_cache.store, "changes_since", held_in_the_read)
    cache = IndexCache(matching.db)
    building = threading.Thread(target=cache.warm, args=(lambda: [tenant],), name="index-build")
    building.start()
    try:
        assert reading.wait(60), "the build never started reading"
        # A held write lock would make this wait out SQLite's busy timeout and fail with "database is locked".
        feed(tenant, EventType.VACANCY_POSTED, employer_id="emp-2")
    finally:
        release.set()
        building.join(timeout=60)
    assert cache.tenants() == [tenant]


def test_a_process_fits_one_background_build_at_a_time(matching, registry, feed, monkeypatch):
    regions = _regions(registry, feed, 3)
    running, most = [0], [0]
    counting = threading.Lock()
    release = threading.Event()
    original = index_cache.TenantIndex.from_rows

    def counted(*args, **kwargs):
        with counting:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(60)
        try:
            return original(*args, **kwargs)
        finally:
            with counting:
                running[0] -= 1

    monkeypatch.setattr(index_cache.TenantIndex, "from_rows", counted)
    cache = IndexCache(matching.db, cold_wait_s=0.0)
    # Each request is refused at once and leaves its region's build behind, as traffic over many cold
    # regions does.
    for region in regions:
        with pytest.raises(index_cache.IndexWarming):
            cache.await_first_build(region)
    release.set()
    cache.wait_for_refits()
    assert most[0] == 1
    for region in regions:
        cache.await_first_build(region)  # each was built in turn: none is refused now
