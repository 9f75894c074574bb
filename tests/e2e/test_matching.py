"""Matching for real: proposals follow each tenant's threshold, and a threshold changed with the command line
reaches the running worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from shared.devstack.stack import REPO_ROOT
from tests.e2e.conftest import bearer
from tests.e2e.payloads import GARDENER, GREEN_VACANCY

pytestmark = pytest.mark.kafka

COOK = {**GARDENER, "display_name": "Pan", "talents": ["koken", "afwassen"], "preferences": ["keukenwerk"]}
# Tenant settings are cached for this long in every process (the registry's cache).
SETTINGS_CACHE_SECONDS = 10


def _wait_until_matching_knows(stack, tenant: str, key: str, candidate_id: str) -> None:
    url = f"{stack.url('matching')}/v1/tenants/{tenant}/candidates/{candidate_id}/matches"
    deadline = time.monotonic() + 60
    while requests.get(url, headers=bearer(key), timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the candidate never reached the matching service"
        time.sleep(0.2)


def _wait_until_matching_handled(stack, tenant: str, key: str, vacancy_id: str) -> dict:
    """The employer's view of a vacancy exists once the worker stored it, proposals included."""
    url = f"{stack.url('matching')}/v1/tenants/{tenant}/vacancies/{vacancy_id}/matches"
    deadline = time.monotonic() + 60
    while True:
        response = requests.get(url, headers=bearer(key), timeout=10)
        if response.status_code == 200:
            return response.json()
        assert time.monotonic() < deadline, "the vacancy never reached the matching service"
        time.sleep(0.2)


def _set_threshold(stack, tenant: str, value: str) -> None:
    env = {**os.environ, "REGISTRY_DATABASE_URL": stack.processes.registry_database_url}
    done = subprocess.run(
        [sys.executable, "-m", "admin.cli", "tenants", "set", tenant, f"match_threshold={value}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_a_posted_vacancy_is_proposed_only_to_candidates_above_the_threshold(stack):
    tenant, keys = stack.new_tenant()
    gardener = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    cook = stack.post_candidate(COOK, tenant=tenant, key=keys["jobcoach"])
    for candidate_id in (gardener, cook):
        _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)

    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])

    alert = stack.wait_for_alert(keys["jobcoach"], lambda a: a["vacancy_id"] == vacancy_id, 60, tenant=tenant)
    assert alert["candidate_id"] == gardener
    assert alert["details"]["score"] >= DEFAULT_PROPOSAL_THRESHOLD
    # Both were ranked in the same transaction that proposed the gardener: the cook's turn is over.
    assert [a["candidate_id"] for a in stack.alerts(keys["jobcoach"], tenant=tenant)] == [gardener]
    employer_view = _wait_until_matching_handled(stack, tenant, keys["employer"], vacancy_id)
    scores = sorted(item["score"] for item in employer_view["items"])
    assert len(scores) == 2 and scores[0] < DEFAULT_PROPOSAL_THRESHOLD <= scores[1]

    operator = bearer(keys["operator"])
    exposure = requests.get(f"{stack.url('matching')}/v1/tenants/{tenant}/exposure", headers=operator, timeout=10)
    groups = {(g["ladder_step"], g["target_group"]): g for g in exposure.json()["groups"]}
    assert (groups[(3, False)]["candidates"], groups[(3, False)]["proposed"], groups[(3, False)]["shown"]) == (2, 1, 2)
    log = requests.get(f"{stack.url('matching')}/v1/tenants/{tenant}/ranking-log", headers=operator, timeout=10)
    assert {entry["direction"] for entry in log.json()["items"]} >= {"vacancy_proposals", "vacancy_candidates"}
    assert gardener not in log.text and cook not in log.text


def test_a_threshold_set_with_the_command_line_reaches_the_running_worker(stack):
    tenant, keys = stack.new_tenant()
    _set_threshold(stack, tenant, "0.999")
    gardener = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], gardener)

    unproposed = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    [item] = _wait_until_matching_handled(stack, tenant, keys["employer"], unproposed)["items"]
    assert DEFAULT_PROPOSAL_THRESHOLD <= item["score"] < 0.999

    _set_threshold(stack, tenant, str(DEFAULT_PROPOSAL_THRESHOLD))
    # Whatever the worker cached was read before the change: once the cache expires it sees the new value.
    time.sleep(SETTINGS_CACHE_SECONDS + 0.5)
    proposed = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])

    stack.wait_for_alert(keys["jobcoach"], lambda a: a["vacancy_id"] == proposed, 60, tenant=tenant)
    assert [a["vacancy_id"] for a in stack.alerts(keys["jobcoach"], tenant=tenant)] == [proposed]
