"""Steps the end-to-end tests share: waiting for the system to catch up, and a jobcoach's usual requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import TypeVar

import requests

from admin.services import tenant_settings
from services.matching.placements.commands import local_today
from shared.clock import offset_file_clock
from shared.registry import Registry
from tests.e2e.conftest import bearer
from tests.e2e.payloads import GARDENER, GREEN_VACANCY

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float, what: str, stack=None) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout}s" + (f"; logs:\n{stack.log_tails()}" if stack else ""))


def put_channels(stack, tenant: str, keys: dict, channels: dict) -> requests.Response:
    return requests.put(
        f"{stack.url('notification')}/v1/tenants/{tenant}/jobcoaches/{keys['jobcoach_id']}/channels",
        json=channels,
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )


def set_tenant_settings(stack, tenant: str, **changes: object) -> None:
    """Change a region's settings as ``werkbrug tenants set`` does: every service's settings, combined."""
    registry = Registry(stack.registry.db, cache_seconds=0, tenant_settings=tenant_settings())
    registry.change_settings(tenant, {name: str(value) for name, value in changes.items()})


def stack_today(stack) -> date:
    """Today as the stack's processes see it: other tests may have moved their clock already."""
    return local_today(offset_file_clock(stack.clock_file))


def start_placement(stack, tenant: str, keys: dict, start: date) -> dict:
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    body = {"candidate_id": candidate_id, "vacancy_id": vacancy_id, "start_date": start.isoformat(), "agreed_hours": 16}
    url = f"{stack.url('matching')}/v1/tenants/{tenant}/placements"

    def attempt():
        # 404 until the matching worker has taken the candidate and vacancy events; a 404 changes nothing.
        response = requests.post(url, json=body, headers=bearer(keys["jobcoach"]), timeout=10)
        assert response.status_code in (201, 404), response.text
        return response.json() if response.status_code == 201 else None

    return wait_until(attempt, 60, "placement accepted", stack)


def check_in(stack, tenant: str, keys: dict, placement_id: str, on: date, values: dict) -> dict:
    response = requests.post(
        f"{stack.url('matching')}/v1/tenants/{tenant}/placements/{placement_id}/checkins",
        json={"date": on.isoformat(), **values},
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()
