"""Schemathesis against every service's own OpenAPI document: no 5xx, and every status, content type,
header and body as documented, for a few hundred generated requests per service (``make bench`` runs more).
"""

from __future__ import annotations

import os

import pytest

from shared.devstack.conformance import run_conformance
from tests.integration.conftest import bearer
from tests.integration.test_candidate_api import candidate_body
from tests.integration.test_vacancy_api import vacancy_body

CASES = int(os.environ.get("SCHEMATHESIS_CASES", "300"))


def seed(svc, name: str, tenant: str, keys: dict) -> dict[str, list[str]]:
    """Objects the generated requests may hit, besides the ids they make up."""
    if name == "vacancy":
        created = svc.client.post(
            f"/v1/tenants/{tenant}/vacancies", json=vacancy_body(), headers=bearer(keys["employer"])
        )
        return {"vacancy_id": [created.get_json()["id"]]}
    if name == "candidate":
        created = svc.client.post(
            f"/v1/tenants/{tenant}/candidates", json=candidate_body(), headers=bearer(keys["jobcoach"])
        )
        return {"candidate_id": [created.get_json()["id"]]}
    if name == "notification":
        svc.client.put(
            f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels",
            json={"email": "jc-1@example.org"},
            headers=bearer(keys["jobcoach"]),
        )
        return {"jobcoach_id": ["jc-1"]}
    return {}


@pytest.mark.parametrize("name", ["candidate", "vacancy", "matching", "notification"])
def test_every_answer_is_as_the_openapi_document_says(service, keys, tenant, name):
    # Generated traffic is far beyond any key's rate limit; the limits have tests of their own.
    svc = service(name, RATELIMIT_ENABLED="false")
    known = seed(svc, name, tenant, keys)
    role_keys = {
        "employer": keys["employer"],
        "jobcoach": keys["jobcoach"],
        "operator": keys["operator"],
        "council": svc.context.registry.create_key(tenant, "council", None),
    }

    report = run_conformance(svc.client.application, name, tenant=tenant, keys=role_keys, known_ids=known, cases=CASES)

    print(name, report.as_dict())
    assert report.cases >= CASES * 0.8
    assert report.failures == []
