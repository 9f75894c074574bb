"""People's accounts and short-lived keys in the registry, on a real database."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from shared.db import utcnow
from shared.registry import RegistryError, people

PASSWORD = "een lange zin als wachtwoord"


def test_an_invitation_sets_a_password_once_and_only_within_its_time(registry, tenant):
    registry.create_tenant(tenant)
    person, token = registry.invite_person(tenant, "jobcoach", "jc-1", "Anna@Example.nl")
    assert person.email == "anna@example.nl"
    assert registry.check_password("anna@example.nl", PASSWORD) is None  # no password yet
    assert registry.redeem_invitation(token, PASSWORD) == person
    assert registry.redeem_invitation(token, PASSWORD) is None  # spent
    assert registry.check_password("ANNA@example.nl ", PASSWORD) == person

    _, expired = registry.invite_person(tenant, "jobcoach", "jc-1", "anna@example.nl", valid_for=timedelta(seconds=-1))
    assert registry.invitation(expired) is None


def test_an_address_belongs_to_one_account(registry, tenant):
    registry.create_tenant(tenant)
    registry.create_person(tenant, "operator", None, "ops@example.nl", PASSWORD)
    with pytest.raises(RegistryError):
        registry.create_person(tenant, "council", None, "ops@example.nl", PASSWORD)
    with pytest.raises(RegistryError):
        registry.invite_person(tenant, "council", None, "ops@example.nl")


def test_short_passwords_and_missing_subjects_are_refused(registry, tenant):
    registry.create_tenant(tenant)
    with pytest.raises(RegistryError):
        registry.create_person(tenant, "operator", None, "a@example.nl", "kort")
    with pytest.raises(RegistryError):
        registry.create_person(tenant, "jobcoach", None, "b@example.nl", PASSWORD)


def test_a_key_is_refused_once_it_expires_or_is_revoked(registry, tenant):
    registry.create_tenant(tenant)
    key_id, key = registry.issue_key(tenant, "council", None, "t", utcnow() + timedelta(seconds=1))
    assert registry.authenticate(key).role == "council"
    time.sleep(1.1)
    assert registry.authenticate(key) is None
    other_id, other = registry.issue_key(tenant, "jobcoach", "jc-1")
    assert registry.authenticate(other) is not None
    assert registry.revoke_key(other_id) is True
    assert registry.revoke_key(other_id) is False
    assert registry.authenticate(other) is None
    assert key_id != other_id


def test_a_regions_people_in_one_role_are_listed_without_other_regions_or_disabled_accounts(registry, tenant):
    other = f"{tenant}-buur"
    for slug in (tenant, other):
        registry.create_tenant(slug)
    registry.invite_person(tenant, "jobcoach", "jc-b", "bram@example.nl")  # no password yet: still listed
    registry.create_person(tenant, "jobcoach", "jc-a", "anna@example.nl", PASSWORD)
    registry.create_person(tenant, "operator", None, "ops@example.nl", PASSWORD)
    registry.create_person(other, "jobcoach", "jc-c", "cor@example.nl", PASSWORD)
    gone = registry.create_person(tenant, "jobcoach", "jc-d", "dirk@example.nl", PASSWORD)
    with registry.db.session() as session:
        session.execute(people.update().where(people.c.id == gone.id).values(disabled_at=utcnow()))

    listed = registry.people_of(tenant, "jobcoach")
    assert [(p.subject, p.email, p.tenant) for p in listed] == [
        ("jc-a", "anna@example.nl", tenant),
        ("jc-b", "bram@example.nl", tenant),
    ]
    assert [p.email for p in registry.people_of(other, "jobcoach")] == ["cor@example.nl"]
    assert registry.people_of(tenant, "council") == []
    with pytest.raises(RegistryError):
        registry.people_of(tenant, "admin")
