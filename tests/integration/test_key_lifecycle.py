"""API keys through their life: created with an expiry, listed without their secret, rotated with a grace
period, revoked, and refused by every service within the registry's bound once revoked or expired."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from admin import cli
from shared.clock import FakeClock
from shared.db import Database, upgrade
from shared.registry import REFUSAL_BOUND_SECONDS, Registry, RegistryError
from shared.web.app import ServiceContext
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# A read each service answers for an operator: what a revoked key must stop reaching.
OPERATOR_READS = {
    "candidate": "/candidates",
    "vacancy": "/vacancies",
    "matching": "/caseload",
    "notification": "/escalations",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def timed_registry(registry: Registry, clock: FakeClock) -> Registry:
    """The test's registry as a service process sees it: lookups cached for five seconds, time from the
    test's clock."""
    return Registry(registry.db, cache_seconds=5, clock=clock)


@pytest.fixture
def cli_registry(registry: Registry, monkeypatch) -> Registry:
    monkeypatch.setenv("REGISTRY_DATABASE_URL", registry.db.url)
    return registry


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_cache_longer_than_the_refusal_bound_is_refused(registry):
    with pytest.raises(ValueError):
        Registry(registry.db, cache_seconds=REFUSAL_BOUND_SECONDS + 1)


def test_every_service_refuses_a_revoked_key_once_its_cached_lookup_ages_out(
    database_url, registry, timed_registry, clock, tenant
):
    registry.create_tenant(tenant)
    key_id, key = registry.issue_key(tenant, "operator", None)
    clients = {}
    for name in OPERATOR_READS:
        url = database_url(name)
        upgrade(importlib.import_module(f"services.{name}.store").MIGRATIONS, url)
        settings = importlib.import_module(f"services.{name}.config").load(
            {"DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
        )
        context = ServiceContext(settings, Database(url), timed_registry, clock)
        clients[name] = importlib.import_module(f"services.{name}.app").create_app(context).test_client()

    def read(name: str):
        return clients[name].get(f"/v1/tenants/{tenant}{OPERATOR_READS[name]}", headers=bearer(key))

    for name in OPERATOR_READS:
        assert read(name).status_code == 200, name
    # Revoked from another process (the admin command line): this process learns it when its cache ages.
    Registry(registry.db).revoke_key(key_id)
    clock.advance(seconds=timed_registry.cache_seconds)
    for name in OPERATOR_READS:
        assert_problem(read(name), 401)


def test_an_expired_key_is_refused_even_from_the_cache(registry, timed_registry, clock, tenant):
    registry.create_tenant(tenant)
    _, key = timed_registry.issue_key(tenant, "jobcoach", "jc-1", expires_at=START + timedelta(minutes=30))
    assert timed_registry.authenticate(key) is not None
    clock.advance(minutes=30)
    assert timed_registry.authenticate(key) is None


def test_last_use_is_written_at_most_once_a_minute(registry, timed_registry, clock, tenant):
    registry.create_tenant(tenant)
    key_id, key = timed_registry.issue_key(tenant, "jobcoach", "jc-1")
    assert timed_registry.key_info(key_id).last_used_at is None
    timed_registry.authenticate(key)
    assert timed_registry.key_info(key_id).last_used_at == START
    clock.advance(seconds=59)
    timed_registry.authenticate(key)
    assert timed_registry.key_info(key_id).last_used_at == START
    clock.advance(seconds=1)
    timed_registry.authenticate(key)
    assert timed_registry.key_info(key_id).last_used_at == START + timedelta(minutes=1)


def test_a_rotated_key_keeps_working_through_its_grace_period_only(registry, timed_registry, clock, tenant):
    registry.create_tenant(tenant)
    old_id, old_key = timed_registry.issue_key(tenant, "employer", "emp-1", label="erp")
    new_id, new_key, old_ends = timed_registry.rotate_key(old_id, timedelta(hours=12))
    assert old_ends == START + timedelta(hours=12)
    new = timed_registry.key_info(new_id)
    assert (new.tenant, new.role, new.subject, new.label) == (tenant, "employer", "emp-1", "erp")
    assert timed_registry.authenticate(old_key) == timed_registry.authenticate(new_key)
    clock.advance(hours=12)
    assert timed_registry.authenticate(old_key) is None
    assert timed_registry.authenticate(new_key) is not None
    with pytest.raises(RegistryError):
        timed_registry.rotate_key(old_id, timedelta(hours=1))  # expired now
    with pytest.raises(RegistryError):
        timed_registry.rotate_key(99_999, timedelta(hours=1))


def test_keys_create_with_an_expiry_then_list_as_json_never_shows_the_key(cli_registry, capsys, tenant):
    cli_registry.create_tenant(tenant)
    code, key, _ = run(
        capsys, "keys", "create", "--tenant", tenant, "--role", "jobcoach", "--subject", "jc-7", "--expires-in", "90d"
    )
    assert code == 0
    key = key.strip()
    assert cli_registry.authenticate(key) is not None

    code, out, _ = run(capsys, "keys", "list", "--tenant", tenant, "--json")
    assert code == 0
    listed = json.loads(out)
    assert [set(item) for item in listed] == [
        {"id", "role", "subject", "created_at", "last_used_at", "expires_at", "revoked_at"}
    ]
    (item,) = listed
    assert (item["role"], item["subject"], item["revoked_at"]) == ("jobcoach", "jc-7", None)
    created = datetime.fromisoformat(item["created_at"])
    assert datetime.fromisoformat(item["expires_at"]) - created == pytest.approx(
        timedelta(days=90), abs=timedelta(seconds=5)
    )
    assert item["last_used_at"] is not None  # the authenticate call above
    assert key not in out and key[4:20] not in out

    code, table, _ = run(capsys, "keys", "list", "--tenant", tenant)
    assert code == 0
    assert table.splitlines()[0].split() == [
        "id",
        "role",
        "subject",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    assert f"{item['id']}" in table.splitlines()[1] and "jc-7" in table
    assert key not in table


def test_keys_revoke_and_rotate_from_the_command_line(cli_registry, capsys, tenant):
    cli_registry.create_tenant(tenant)
    key_id, key = cli_registry.issue_key(tenant, "operator", None)
    code, new_key, err = run(capsys, "keys", "rotate", str(key_id), "--grace", "30m")
    assert code == 0 and "keeps working until" in err
    new_key = new_key.strip()
    assert new_key.startswith("wbk_") and new_key != key
    assert cli_registry.authenticate(new_key).role == "operator"
    assert cli_registry.authenticate(key) is not None  # within the grace period

    code, _, err = run(capsys, "keys", "revoke", str(key_id))
    assert code == 0 and "revoked" in err
    assert cli_registry.authenticate(key) is None
    assert cli_registry.key_info(key_id).revoked_at is not None
    code, _, err = run(capsys, "keys", "revoke", str(key_id))
    assert code == 0 and "already" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("keys", "revoke", "424242"),
        ("keys", "revoke", "not-a-number"),
        ("keys", "rotate", "424242", "--grace", "1h"),
        ("keys", "rotate", "1", "--grace", "one hour"),
        ("keys", "list", "--tenant", "nowhere-region"),
        ("keys", "create", "--tenant", "x", "--role", "operator", "--expires-in", "90"),
    ],
)
def test_unknown_keys_and_bad_durations_are_clear_errors(cli_registry, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("werkbrug: ")
