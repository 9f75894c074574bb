"""The council reads its region's anonymous insights and exposure report, and nothing else in matching."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem

COUNCIL_READS = {"/v1/tenants/<tenant:tenant>/insights", "/v1/tenants/<tenant:tenant>/exposure"}


@pytest.fixture
def matching(service, keys):
    return service("matching")


@pytest.fixture
def council(registry, tenant, keys) -> str:
    return registry.create_key(tenant, "council", None)


@pytest.mark.parametrize("path", sorted(COUNCIL_READS))
def test_the_council_reads_its_regions_insights_and_exposure(matching, council, tenant, path):
    response = matching.client.get(path.replace("<tenant:tenant>", tenant), headers=bearer(council))

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["tenant"] == tenant


@pytest.mark.parametrize("path", sorted(COUNCIL_READS))
def test_another_regions_council_gets_404(matching, registry, tenant, keys, path):
    other = f"{tenant}-b"
    registry.create_tenant(other)
    key = registry.create_key(other, "council", None)

    assert_problem(matching.client.get(path.replace("<tenant:tenant>", tenant), headers=bearer(key)), 404)


def test_every_other_matching_route_refuses_the_council(matching, council, tenant):
    app = matching.client.application
    refused = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/") or rule.rule in COUNCIL_READS:
            continue
        path = rule.rule.replace("<tenant:tenant>", tenant)
        path = re.sub(r"<[^>]+>", lambda _match: str(uuid.uuid4()), path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = matching.client.open(path, method=method, json={}, headers=bearer(council))
            assert_problem(response, 403)
            refused.append((method, rule.rule))
    assert ("GET", "/v1/tenants/<tenant:tenant>/caseload") in refused
    assert ("POST", "/v1/tenants/<tenant:tenant>/vacancies/<id:vacancy_id>/interest") in refused
