"""The live index: incremental updates rank exactly as a rebuild would; fingerprints and versions."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from services.matching.ranking import rank, rules, scoring, store
from services.matching.ranking.candidate_index import CandidateIndex
from services.matching.ranking.fingerprints import candidate_fingerprint, pair_fingerprint, vacancy_fingerprint
from services.matching.ranking.live_index import RefitPolicy, TenantIndex
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile
from services.matching.ranking.rank import rank_candidates_for_vacancy
from services.matching.ranking.scoring import Ranking, weights_version
from services.matching.ranking.text_model import fit_model
from services.matching.ranking.vocabulary import SUPPORT_CODES, VACANCY_KIND_RUNG

TENANT = "noord-limburg"
PHRASES = ["planten verzorgen", "orderpicken", "koffie zetten", "schoonmaken", "kassawerk", "inpakken", "cleaning"]


def candidate_payload(rng: random.Random) -> dict:
    low = rng.choice([0, 8, 12, 16, 24])
    needs = rng.sample(list(SUPPORT_CODES), rng.randint(0, 3))
    return {
        "jobcoach_id": "jc-1",
        "talents": rng.sample(PHRASES, rng.randint(0, 3)),
        "preferences": rng.sample(PHRASES, rng.randint(0, 1)),
        "support_needs": [{"code": code, "level": rng.choice(["essential", "preferred"])} for code in needs],
        "hours_min": low,
        "hours_max": low + rng.choice([0, 8, 16]),
        "ladder_step": rng.randint(1, 6),
        "location": {"postcode": "5912", "lat": 51.2 + rng.random() * 0.4, "lon": 5.9 + rng.random() * 0.4}
        | {"max_travel_km": rng.choice([None, 10, 30])},
        "consent": {"matching": rng.random() < 0.9, "share_with_employers": rng.random() < 0.7},
        "target_group_register": rng.random() < 0.5,
    }


def vacancy_payload(rng: random.Random) -> dict:
    low = rng.choice([0, 8, 16, 24])
    return {
        "employer_id": "emp-1",
        "title": rng.choice(["Medewerker groen", "Magazijnmedewerker", "Hulp in de keuken", "Schoonmaker"]),
        "description": rng.choice(["", "Je werkt in een klein team. Wij leren je alles."]),
        "tasks": rng.sample(PHRASES, rng.randint(0, 2)),
        "skills": rng.sample(PHRASES, rng.randint(0, 2)),
        "supports_offered": rng.sample(list(SUPPORT_CODES), rng.randint(0, 8)),
        "hours_min": low,
        "hours_max": low + rng.choice([0, 8, 16]),
        "kind": rng.choice(list(VACANCY_KIND_RUNG)),
        "positions": rng.choice([0, 1, 2]),
        "location": {"postcode": "5911", "lat": 51.2 + rng.random() * 0.4, "lon": 5.9 + rng.random() * 0.4},
        "status": rng.choice(["open", "open", "open", "filled"]),
    }


class Tenant:
    """A tenant's read models as the store would number them, for feeding an index without a database."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seq = 0
        self.vacancies: dict[str, store.Row] = {}
        self.candidates: dict[str, store.Row] = {}
        self.pending: list[tuple[str, object]] = []

    def write(self, kind: str, entity_id: str, payload: dict) -> None:
        self.seq += 1
        row = store.Row(entity_id, payload, self.seq)
        (self.vacancies if kind == "vacancy" else self.candidates)[entity_id] = row
        self.pending.append((kind, row))

    def erase(self, candidate_id: str) -> None:
        self.seq += 1
        del self.candidates[candidate_id]
        self.pending.append(("removal", store.Removal("candidate", store.entity_hash(TENANT, candidate_id), self.seq)))

    def full(self) -> store.Changes:
        self.pending.clear()
        return store.Changes(
            -1,
            self.seq,
            0,
            sorted((r for r in self.vacancies.values() if r.profile["status"] == "open"), key=lambda r: r.seq),
            sorted((r for r in self.candidates.values() if r.profile["consent"]["matching"]), key=lambda r: r.seq),
            [],
        )

    def changes(self, after: int) -> store.Changes:
        changes = store.Changes(
            after,
            self.seq,
            0,
            [row for kind, row in self.pending if kind == "vacancy"],
            [row for kind, row in self.pending if kind == "candidate"],
            [row for kind, row in self.pending if kind == "removal"],
        )
        self.pending.clear()
        return changes


def profiles(index: TenantIndex, rows: dict[str, store.Row], kind):
    return [kind.from_payload(row.profile, id=row.id, tenant=TENANT) for row in rows.values()]


def assert_same_rankings(live: TenantIndex, rebuilt: TenantIndex, tenant: Tenant) -> None:
    people = profiles(live, tenant.candidates, CandidateProfile)
    jobs = profiles(live, tenant.vacancies, VacancyProfile)
    weights = {"talent": 0.6, "supports": 0.1, "hours": 0.1, "ladder": 0.1, "distance": 0.1}
    for person in people:
        assert live.vacancies_for(person, 8, Ranking(weights=weights)) == rebuilt.vacancies_for(
            person, 8, Ranking(weights=weights)
        )
        assert live.vacancies_for(person, None) == rebuilt.vacancies_for(person, None)
    for job in jobs:
        for share in (True, False):
            assert live.candidates_for(job, 5, Ranking(require_share_consent=share)) == rebuilt.candidates_for(
                job, 5, Ranking(require_share_consent=share)
            )
    assert live.matchable_vacancies() == rebuilt.matchable_vacancies()
    assert live.candidate_groups() == rebuilt.candidate_groups()


def test_incremental_updates_rank_exactly_like_a_rebuild_with_the_same_model():
    tenant = Tenant(seed=11)
    for number in range(60):
        tenant.write("vacancy", f"v-{number:03d}", vacancy_payload(tenant.rng))
    for number in range(30):
        tenant.write("candidate", f"c-{number:03d}", candidate_payload(tenant.rng))
    live = TenantIndex.from_rows(TENANT, tenant.full())

    for round_ in range(3):
        for number in tenant.rng.sample(range(60), 10):  # changed, reopened, filled
            tenant.write("vacancy", f"v-{number:03d}", vacancy_payload(tenant.rng))
        for number in range(5):  # new ones
            tenant.write("vacancy", f"v-new-{round_}-{number}", vacancy_payload(tenant.rng))
        for number in tenant.rng.sample(range(30), 6):  # changed, consent withdrawn or given
            if f"c-{number:03d}" in tenant.candidates:
                tenant.write("candidate", f"c-{number:03d}", candidate_payload(tenant.rng))
        tenant.write("candidate", f"c-new-{round_}", candidate_payload(tenant.rng))
        tenant.erase(sorted(tenant.candidates)[round_])
        live = live.applied(tenant.changes(live.seq))

        rebuilt = TenantIndex.from_rows(TENANT, tenant.full(), model=live.model)
        assert live.seq == rebuilt.seq == tenant.seq
        assert live.delta_vacancies and live.delta_candidates, "the updates went to the delta, not a rebuild"
        assert_same_rankings(live, rebuilt, tenant)


def _twenty_vacancies_and_a_candidate(seed: int) -> tuple[Tenant, TenantIndex]:
    tenant = Tenant(seed=seed)
    for number in range(20):
        tenant.write("vacancy", f"v-{number:03d}", vacancy_payload(tenant.rng))
    tenant.write("candidate", "c-000", candidate_payload(tenant.rng))
    return tenant, TenantIndex.from_rows(TENANT, tenant.full())


def test_one_change_at_a_time_keeps_the_delta_in_a_few_chunks_and_ranks_like_a_rebuild():
    tenant, live = _twenty_vacancies_and_a_candidate(seed=15)
    for number in range(200):
        # As requests between changes do: the vacancies are ranked after each one.
        tenant.write("vacancy", f"v-{tenant.rng.randrange(260):03d}", vacancy_payload(tenant.rng))
        live = live.applied(tenant.changes(live.seq))
        assert len(live.vacancy_chunks) <= 9, f"after {number + 1} changes"
    rebuilt = TenantIndex.from_rows(TENANT, tenant.full(), model=live.model)
    assert_same_rankings(live, rebuilt, tenant)


def test_changes_applied_one_at_a_time_are_indexed_once_when_their_side_is_next_ranked():
    tenant, live = _twenty_vacancies_and_a_candidate(seed=16)
    for _ in range(40):
        # As a worker handling a run of vacancy events: each catches up, then ranks candidates only.
        tenant.write("vacancy", f"v-{tenant.rng.randrange(60):03d}", vacancy_payload(tenant.rng))
        live = live.applied(tenant.changes(live.seq))
        assert live.candidate_chunks == ()
    assert len(live.vacancy_chunks) == 1, "the run's vacancies became one chunk, not one each"
    rebuilt = TenantIndex.from_rows(TENANT, tenant.full(), model=live.model)
    assert_same_rankings(live, rebuilt, tenant)


def test_an_erased_candidate_leaves_the_index_and_its_removal_names_no_one():
    tenant = Tenant(seed=12)
    tenant.write("vacancy", "v-1", vacancy_payload(tenant.rng) | {"status": "open", "positions": 1})
    consenting = {"consent": {"matching": True, "share_with_employers": True}}
    tenant.write("candidate", "c-erased", candidate_payload(tenant.rng) | consenting)
    live = TenantIndex.from_rows(TENANT, tenant.full())
    assert live.candidate("c-erased") is not None

    tenant.erase("c-erased")
    changes = tenant.changes(live.seq)
    live = live.applied(changes)

    assert live.candidate("c-erased") is None
    assert "c-erased" not in json.dumps([dataclasses.asdict(removal) for removal in changes.removals])
    assert live.removals_since_fit == 1


def test_applying_nothing_new_returns_the_same_index():
    tenant = Tenant(seed=13)
    tenant.write("vacancy", "v-1", vacancy_payload(tenant.rng))
    live = TenantIndex.from_rows(TENANT, tenant.full())
    assert live.applied(store.Changes(live.seq, live.seq, 0, [], [], [])) is live


def test_an_empty_tenant_has_an_index_that_answers_with_nothing():
    empty = TenantIndex.from_rows(TENANT, store.Changes(-1, 0, 0, [], [], []))
    person = CandidateProfile.from_payload(candidate_payload(random.Random(1)), id="c-1", tenant=TENANT)
    job = VacancyProfile.from_payload(vacancy_payload(random.Random(1)), id="v-1", tenant=TENANT)
    assert empty.vacancies_for(person) == []
    assert empty.candidates_for(job) == []
    assert empty.matchable_vacancies() == 0


@pytest.mark.parametrize(
    ("fitted_rows", "changed", "removals", "age", "due"),
    [
        (10_000, 0, 0, 10_000, False),  # nothing changed: never
        (10_000, 100, 0, 60, False),  # 1 % changed, young
        (10_000, 2_000, 0, 60, True),  # 20 % changed
        (10_000, 100, 0, 700, True),  # old
        (10_000, 1, 1, 60, True),  # an erasure: its words must leave the vocabulary
        (10_000, 2_000, 0, 1, False),  # a large tenant is not refitted more than once per interval
        (10, 3, 0, 1, True),  # a small one is, right away
    ],
)
def test_refits_are_due_when_enough_changed_after_a_while_or_after_an_erasure(fitted_rows, changed, removals, age, due):
    index = TenantIndex.from_rows(TENANT, store.Changes(-1, 0, 0, [], [], []))
    index.fitted_rows, index.changed_since_fit, index.removals_since_fit = fitted_rows, changed, removals
    policy = RefitPolicy(changed_share=0.2, max_age_s=600, min_interval_s=5, max_delta_rows=10_000, sync_rows=100)
    assert index.refit_due(policy, now=index.fitted_at + age) is due


def test_the_candidate_index_ranks_like_the_one_off_call_and_mirrors_the_vacancy_index():
    rng = random.Random(14)
    people = [CandidateProfile.from_payload(candidate_payload(rng), id=f"c-{i}", tenant=TENANT) for i in range(40)]
    jobs = [VacancyProfile.from_payload(vacancy_payload(rng), id=f"v-{i}", tenant=TENANT) for i in range(20)]
    model = fit_model(jobs, people)
    index = CandidateIndex(people, model=model)
    for job in jobs:
        assert index.rank(job, None, Ranking(require_share_consent=False)) == rank_candidates_for_vacancy(
            job, people, top_k=None, model=model, ranking=Ranking(require_share_consent=False)
        )
        above = index.rank(job, None, Ranking(min_score=0.6))
        assert all(match.score >= 0.6 for match in above)
        assert above == [m for m in index.rank(job, None) if m.score >= 0.6]


# ---------------------------------------------------------------------------------------------- fingerprints


def gardener(**changes) -> CandidateProfile:
    base = CandidateProfile(
        id="c-4b2e9d71",
        tenant=TENANT,
        jobcoach_id="jc-0042",
        talents=("Planten verzorgen", "nauwkeurig werken"),
        preferences=("buiten werken",),
        essential_needs=frozenset({"quiet_workplace"}),
        preferred_needs=frozenset({"work_buddy"}),
        hours_min=12,
        hours_max=24,
        ladder_step=3,
        lat=51.37,
        lon=6.17,
        max_travel_km=15,
        consent_matching=True,
        consent_share=True,
    )
    return dataclasses.replace(base, **changes)


def park_job(**changes) -> VacancyProfile:
    base = VacancyProfile(
        id="v-7f3a1e2c",
        tenant=TENANT,
        employer_id="emp-017",
        title="Medewerker groenonderhoud",
        description="Je helpt ons team met het onderhoud van parken.",
        tasks=("planten verzorgen",),
        skills=("groenonderhoud",),
        supports_offered=frozenset({"quiet_workplace"}),
        hours_min=16,
        hours_max=24,
        kind="work_experience",
        positions=2,
        lat=51.37,
        lon=6.16,
    )
    return dataclasses.replace(base, **changes)


def test_fingerprints_contain_no_id_and_no_text_and_ignore_who_it_is():
    person, job = gardener(), park_job()
    prints = [candidate_fingerprint(person), vacancy_fingerprint(job), pair_fingerprint(person, job)]
    for value in prints:
        assert len(value) == 64 and set(value) <= set("0123456789abcdef")
        for secret in ("4b2e9d71", "7f3a1e2c", "jc-0042", "emp-017", "planten", "groen", "noord"):
            assert secret not in value
    assert candidate_fingerprint(gardener(id="c-other", jobcoach_id="jc-9")) == candidate_fingerprint(person)
    assert vacancy_fingerprint(park_job(id="v-other", employer_id="emp-9")) == vacancy_fingerprint(job)
    assert candidate_fingerprint(gardener(talents=("planten verzorgen!", "Nauwkeurig werken"))) == prints[0]


@pytest.mark.parametrize(
    "change",
    [
        {"skills": ("groenonderhoud", "snoeien")},
        {"tasks": ()},
        {"title": "Hovenier"},
        {"supports_offered": frozenset({"quiet_workplace", "work_buddy"})},
        {"hours_min": 20},
        {"kind": "supported_paid"},
        {"lat": 51.5, "lon": 6.0},
    ],
)
def test_a_material_vacancy_change_makes_a_new_pair_fingerprint(change):
    assert pair_fingerprint(gardener(), park_job(**change)) != pair_fingerprint(gardener(), park_job())


@pytest.mark.parametrize(
    "change",
    [
        {"description": "Je helpt ons vaste team met het onderhoud van parken en plantsoenen."},
        {"positions": 5},
        {"employer_id": "emp-018"},
    ],
)
def test_a_reworded_description_or_more_positions_is_not_material(change):
    assert pair_fingerprint(gardener(), park_job(**change)) == pair_fingerprint(gardener(), park_job())


def test_the_logged_fingerprint_covers_everything_scored_including_the_description():
    reworded = park_job(description="Je helpt ons vaste team met het onderhoud van parken en plantsoenen.")
    assert vacancy_fingerprint(reworded) != vacancy_fingerprint(park_job())
    assert vacancy_fingerprint(park_job(status="filled")) != vacancy_fingerprint(park_job())
    assert candidate_fingerprint(gardener(consent_share=False)) != candidate_fingerprint(gardener())


@pytest.mark.parametrize(
    ("change", "material"),
    [
        ({"talents": ("planten verzorgen",)}, True),
        ({"preferences": ()}, True),
        ({"essential_needs": frozenset()}, True),
        ({"preferred_needs": frozenset({"work_buddy", "fixed_routine"})}, True),
        ({"hours_max": 32}, True),
        ({"ladder_step": 4}, True),
        ({"lat": 51.0, "lon": 6.0}, True),
        ({"max_travel_km": 25}, True),
        ({"consent_share": False}, False),
        ({"jobcoach_id": "jc-0043"}, False),
        ({"target_group_register": True}, False),
    ],
)
def test_which_candidate_changes_are_material(change, material):
    changed = pair_fingerprint(gardener(**change), park_job()) != pair_fingerprint(gardener(), park_job())
    assert changed is material


# ---------------------------------------------------------------------------------------------- versions


def test_the_weights_version_names_the_weights_whatever_their_order():
    assert weights_version(None) == weights_version(dict(rules.DEFAULT_WEIGHTS))
    reordered = dict(reversed(list(rules.DEFAULT_WEIGHTS.items())))
    assert weights_version(reordered) == weights_version(None)
    assert weights_version({"talent": 0.9}) != weights_version(None)
    assert weights_version(None).startswith("w-")


def test_every_match_carries_its_weights_and_ranking_versions():
    weights = {"talent": 0.7, "supports": 0.1, "hours": 0.1, "ladder": 0.05, "distance": 0.05}
    [match] = rank.rank_vacancies_for_candidate(gardener(), [park_job()], ranking=Ranking(weights=weights))
    assert match.explanation["weights_version"] == weights_version(weights)
    assert match.explanation["ranking_version"] == scoring.RANKING_VERSION
    [mirror] = rank_candidates_for_vacancy(park_job(), [gardener()], ranking=Ranking(weights=weights))
    assert mirror.explanation["weights_version"] == weights_version(weights)


def test_the_model_version_changes_with_what_it_learned():
    jobs = [park_job()]
    assert fit_model(jobs, []).version == fit_model(jobs, []).version
    assert fit_model(jobs, []).version != fit_model(jobs, [gardener()]).version
