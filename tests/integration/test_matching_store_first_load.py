"""A first load of many vacancies and candidates stores what one upsert per row would have stored."""

from __future__ import annotations

import sqlalchemy as sa

from bench.matching_speed import tenant_payloads
from services.matching.ranking import store


def _rows(session, table: sa.Table, tenant: str) -> list[tuple]:
    columns = [column for column in table.c if column.name not in ("tenant", "updated_at")]
    query = sa.select(*columns).where(table.c.tenant == tenant).order_by(table.c.seq)
    return [tuple(row) for row in session.execute(query)]


def test_first_load_gives_the_rows_and_change_numbers_of_upserts_one_by_one(service, registry):
    matching = service("matching")
    vacancies, candidates = tenant_payloads(30, 12, seed=7)
    for tenant in ("one-by-one", "first-load"):
        registry.create_tenant(tenant)
    with matching.db.session() as session:
        for vacancy_id, payload in vacancies:
            store.upsert_vacancy(session, "one-by-one", vacancy_id, payload)
        for candidate_id, payload in candidates:
            store.upsert_candidate(session, "one-by-one", candidate_id, payload)
        store.insert_new(session, "first-load", vacancies, candidates)

    with matching.db.session() as session:
        for table in (store.vacancies, store.candidates):
            assert _rows(session, table, "first-load") == _rows(session, table, "one-by-one")
        assert len(_rows(session, store.vacancies, "first-load")) == 30
        assert store.change_counter(session, "first-load") == store.change_counter(session, "one-by-one")
        # Later changes number on from the load, as they would after the upserts.
        assert store.upsert_vacancy(session, "first-load", *vacancies[0]) == 43
        loaded = store.changes_since(session, "first-load", None)
        assert sorted(row.id for row in loaded.vacancies) == sorted(vacancy_id for vacancy_id, _ in vacancies)
