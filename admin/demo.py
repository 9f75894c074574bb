"""Demo data for a local run: one region, its keys, a few candidates and vacancies.

The tenant and its keys go into the registry; the candidates and vacancies go in through the services'
public APIs with those keys, as a jobcoach and an employer would post them, so that they reach each
service's outbox and flow through Kafka like any others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from shared.errors import Refused
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


def seed_registry(registry: Registry, tenant: str) -> dict[str, str]:
    """Create the tenant and fresh demo keys; older demo keys are revoked."""
    registry.create_tenant(tenant)
    registry.revoke_labelled_keys(tenant, DEMO_LABEL)
    return {
        "EMPLOYER_KEY": registry.create_key(tenant, "employer", DEMO_EMPLOYER, DEMO_LABEL),
        "JOBCOACH_KEY": registry.create_key(tenant, "jobcoach", DEMO_JOBCOACH, DEMO_LABEL),
        "OPERATOR_KEY": registry.create_key(tenant, "operator", None, DEMO_LABEL),
    }


@dataclass(frozen=True)
class ServiceUrls:
    candidate: str
    vacancy: str


def post_demo_data(urls: ServiceUrls, tenant: str, jobcoach_key: str, employer_key: str, wait_s: float) -> str:
    """Post the demo candidates, then the demo vacancies, once both services answer; nothing when the demo
    employer has vacancies already (the data of an earlier run). Returns what it did, in a sentence."""
    _wait_until_ready((urls.candidate, urls.vacancy), wait_s)
    vacancies = f"{urls.vacancy}/v1/tenants/{tenant}/vacancies"
    existing = _call("GET", vacancies, employer_key, params={"page_size": 1})
    if existing["total"]:
        return f"demo data already in {tenant}"
    # Candidates first, so that each vacancy is matched against them as soon as it is posted.
    for candidate in DEMO_CANDIDATES:
        _call("POST", f"{urls.candidate}/v1/tenants/{tenant}/candidates", jobcoach_key, json=candidate)
    for vacancy in DEMO_VACANCIES:
        _call("POST", vacancies, employer_key, json=vacancy)
    return f"demo data posted to {tenant}: candidates {len(DEMO_CANDIDATES)}, vacancies {len(DEMO_VACANCIES)}"


def _wait_until_ready(base_urls: tuple[str, ...], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    pending = list(base_urls)
    while pending:
        try:
            if requests.get(f"{pending[0]}/readyz", timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            raise Refused(f"{pending[0]} did not answer within {wait_s:g} s; no demo data posted")
        time.sleep(0.5)


def _call(method: str, url: str, key: str, **kwargs) -> dict:
    response = requests.request(method, url, headers={"Authorization": f"Bearer {key}"}, timeout=10, **kwargs)
    if not response.ok:
        raise Refused(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
    return response.json()
