"""Demo data for a local run: one region, its keys, a few candidates and vacancies.

Candidates and vacancies go in through the services' own commands, so they reach the outbox and flow
through Kafka like any others once the workers run.
"""

from __future__ import annotations

from services.candidate import handlers as candidate_handlers
from services.candidate import store as candidate_store
from services.candidate.schemas import CandidateCreateSchema
from services.vacancy import handlers as vacancy_handlers
from services.vacancy.schemas import VacancyCreateSchema
from shared.config import load_settings
from shared.db import Database
from shared.registry import Registry

DEMO_LABEL = "demo"
DEMO_EMPLOYER = "emp-demo"
DEMO_JOBCOACH = "jc-demo"

DEMO_CANDIDATES = [
    {
        "display_name": "Tulp",
        "talents": ["planten verzorgen", "buiten werken", "nauwkeurig werken"],
        "preferences": ["groenonderhoud", "vaste structuur"],
        "support_needs": [
            {"code": "quiet_workplace", "level": "essential"},
            {"code": "work_buddy", "level": "preferred"},
        ],
        "hours_min": 12,
        "hours_max": 24,
        "ladder_step": 3,
        "location": {"postcode": "5912", "lat": 51.37, "lon": 6.17, "max_travel_km": 20},
        "consent": {"matching": True, "share_with_employers": True},
        "target_group_register": True,
    },
    {
        "display_name": "Eik",
        "talents": ["orderpicking", "inpakken", "heftruck rijden"],
        "preferences": ["magazijn", "logistiek"],
        "support_needs": [{"code": "step_by_step_instructions", "level": "essential"}],
        "hours_min": 20,
        "hours_max": 32,
        "ladder_step": 4,
        "location": {"postcode": "5928", "lat": 51.39, "lon": 6.10, "max_travel_km": 25},
        "consent": {"matching": True, "share_with_employers": False},
        "target_group_register": False,
    },
    {
        "display_name": "Merel",
        "talents": ["koffie zetten", "gastvrij", "afwassen"],
        "preferences": ["horeca", "lunchroom"],
        "support_needs": [
            {"code": "fixed_supervisor", "level": "essential"},
            {"code": "reduced_hours", "level": "preferred"},
        ],
        "hours_min": 8,
        "hours_max": 16,
        "ladder_step": 2,
        "location": {"postcode": "5911", "max_travel_km": 10},
        "consent": {"matching": True, "share_with_employers": True},
        "target_group_register": True,
    },
]

DEMO_VACANCIES = [
    {
        "title": "Medewerker magazijn (orderpicker)",
        "description": "Orders verzamelen en inpakken in een rustig distributiecentrum.",
        "tasks": ["orderpicking", "inpakken van bestellingen"],
        "skills": ["orderpicken", "nauwkeurig werken"],
        "supports_offered": ["step_by_step_instructions", "fixed_supervisor", "work_buddy"],
        "hours_min": 16,
        "hours_max": 32,
        "kind": "sheltered",
        "positions": 2,
        "location": {"postcode": "5928", "lat": 51.39, "lon": 6.11},
    },
]


def seed_demo(registry: Registry, tenant: str) -> dict[str, str]:
    """Create the tenant and fresh demo keys (older demo keys are revoked); seed data once."""
    registry.create_tenant(tenant)
    registry.revoke_labelled_keys(tenant, DEMO_LABEL)
    keys = {
        "EMPLOYER_KEY": registry.create_key(tenant, "employer", DEMO_EMPLOYER, DEMO_LABEL),
        "JOBCOACH_KEY": registry.create_key(tenant, "jobcoach", DEMO_JOBCOACH, DEMO_LABEL),
        "OPERATOR_KEY": registry.create_key(tenant, "operator", None, DEMO_LABEL),
    }
    candidates_db = Database(load_settings("candidate").database_url)
    with candidates_db.session() as session:
        if candidate_store.count_candidates(session, tenant) == 0:
            for candidate in DEMO_CANDIDATES:
                candidate_handlers.register_candidate(
                    session, tenant, DEMO_JOBCOACH, CandidateCreateSchema().load(candidate)
                )
            seed_vacancies = True
        else:
            seed_vacancies = False
    if seed_vacancies:
        vacancies_db = Database(load_settings("vacancy").database_url)
        with vacancies_db.session() as session:
            for vacancy in DEMO_VACANCIES:
                vacancy_handlers.post_vacancy(session, tenant, DEMO_EMPLOYER, VacancyCreateSchema().load(vacancy))
    return keys
