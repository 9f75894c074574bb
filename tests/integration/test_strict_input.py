"""Every request body of every service refuses what it has no use for, over HTTP on the real app.

The matrix is built from the apps themselves: each POST, PATCH and PUT route with a JSON body, and in its
schema every field at every depth. A string gets a NUL, a boolean ``"yes"`` and ``1``, a number a string
that looks like one, a nested object a member it does not know. Each must be answered 422 with the error
on that very field, so a route or a field added later is covered without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import marshmallow as ma
import pytest
from marshmallow import fields

from shared.web.resources import FreeText, StrictBodySchema
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem

SERVICES = ("candidate", "vacancy", "matching", "notification")
BODY_METHODS = ("POST", "PATCH", "PUT")


@dataclass(frozen=True)
class Probe:
    body: dict
    error_at: tuple[str, ...]
    what: str


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    rule: str
    schema: ma.Schema


def body_routes(service) -> Iterator[Route]:
    app = service.client.application
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in sorted(set(rule.methods or ()) & set(BODY_METHODS)):
            function = getattr(view_class, method.lower(), None) if view_class else view
            parameters = getattr(function, "_apidoc", {}).get("arguments", {}).get("parameters", [])
            for parameter in parameters:
                if parameter.get("location", "json") == "json":
                    schema = parameter["schema"]
                    yield Route(service.name, method, rule.rule, schema() if isinstance(schema, type) else schema)


def _bad_values(field: fields.Field) -> list[tuple[object, str]]:
    if isinstance(field, fields.String):
        text = "Kees\u0000" if not isinstance(field, fields.Email) else "kees\u0000@example.org"
        cases = [(text, "NUL"), (text.replace("\u0000", "\u001b"), "escape")]
        if not isinstance(field, FreeText):
            cases.append((text.replace("\u0000", "\n"), "line break in a one-line field"))
        return cases
    if isinstance(field, fields.Boolean):
        return [("yes", "string for a boolean"), (1, "number for a boolean")]
    if isinstance(field, fields.Number):
        return [("8", "string for a number")]
    return []


def probes(schema: ma.Schema, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object, str]]:
    """(where the value goes, the value, what it is) for every field of ``schema`` at every depth."""
    for name, field in schema.load_fields.items():
        yield from _field_probes(field, (*path, field.data_key or name))


def _field_probes(field: fields.Field, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object, str]]:
    if isinstance(field, fields.Nested):
        yield (*path, "diagnosis"), "autisme", "unknown member of a nested object"
        yield from probes(field.schema, path)
    elif isinstance(field, fields.List):
        yield from _field_probes(field.inner, (*path, "0"))
    else:
        for value, what in _bad_values(field):
            yield path, value, what


def _body(path: tuple[str, ...], value: object) -> object:
    """The smallest body carrying ``value`` at ``path`` ("0" stands for a list's first item)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == "0":
        return [_body(rest, value)]
    return {head: _body(rest, value)}


def _error_at(errors: dict, path: tuple[str, ...]) -> object:
    found: object = errors
    for step in path:
        assert isinstance(found, dict), (errors, path)
        found = found[step]
    return found


def _fill(rule: str, tenant: str) -> str:
    # Ids in paths need not exist: the body is refused before anything is looked up.
    return re.sub(r"<[^>]+>", lambda m: tenant if "tenant" in m.group(0) else "jc-1", rule)


@pytest.fixture
def services(service, keys):
    return {name: service(name) for name in SERVICES}


def _post_as_anyone(client, method: str, url: str, body, keys) -> object:
    """The first answer that is not a refusal of the key (401, 403, 404 for a subject that is not ours)."""
    answer = None
    for key in keys.values():
        answer = client.open(url, method=method, json=body, headers=bearer(key))
        if answer.status_code not in (401, 403, 404):
            return answer
    return answer


def test_every_body_route_is_strict_and_the_matrix_finds_them_all(services):
    routes = [route for svc in services.values() for route in body_routes(svc)]
    found = {(route.service, route.method, route.rule.rsplit("/", 1)[-1]) for route in routes}
    # The routes the issue names, so that a matrix that found nothing cannot pass.
    assert {
        ("candidate", "POST", "candidates"),
        ("candidate", "PATCH", "<id:candidate_id>"),
        ("vacancy", "POST", "vacancies"),
        ("vacancy", "PATCH", "<id:vacancy_id>"),
        ("matching", "POST", "placements"),
        ("matching", "POST", "checkins"),
        ("notification", "PUT", "channels"),
    } <= found
    for route in routes:
        assert isinstance(route.schema, StrictBodySchema), f"{route.method} {route.rule} takes a lenient body"


def test_every_field_of_every_body_refuses_control_characters_foreign_types_and_unknown_members(services, keys, tenant):
    checked = 0
    failures = []
    for svc in services.values():
        for route in body_routes(svc):
            url = _fill(route.rule, tenant)
            for path, value, what in probes(route.schema):
                answer = _post_as_anyone(svc.client, route.method, url, _body(path, value), keys)
                checked += 1
                if answer.status_code != 422:
                    failures.append(f"{route.method} {route.rule} {'.'.join(path)} ({what}): {answer.status_code}")
                    continue
                body = assert_problem(answer, 422)
                try:
                    _error_at(body["errors"], path)
                except (KeyError, AssertionError):
                    failures.append(f"{route.method} {route.rule} {'.'.join(path)} ({what}): {body['errors']}")
    assert checked > 100, "the matrix probed too little to mean anything"
    assert failures == []


def test_a_support_need_with_a_diagnosis_is_refused_field_by_field(services, keys, tenant):
    body = {
        "display_name": "Kees",
        "hours_min": 8,
        "hours_max": 16,
        "ladder_step": 3,
        "location": {"postcode": "5911"},
        "consent": {"matching": True, "share_with_employers": False},
        "support_needs": [{"code": "work_buddy", "level": "preferred", "diagnosis": "autisme"}],
    }
    client = services["candidate"].client
    answer = client.post(f"/v1/tenants/{tenant}/candidates", json=body, headers=bearer(keys["jobcoach"]))
    assert assert_problem(answer, 422)["errors"] == {"support_needs": {"0": {"diagnosis": ["Unknown field."]}}}
    del body["support_needs"][0]["diagnosis"]
    answer = client.post(f"/v1/tenants/{tenant}/candidates", json=body, headers=bearer(keys["jobcoach"]))
    assert answer.status_code == 201


def test_a_nul_in_a_vacancy_title_or_a_display_name_is_a_422_not_a_stored_row_or_a_500(services, keys, tenant):
    vacancy = {
        "title": "Hovenier\u0000",
        "hours_min": 8,
        "hours_max": 16,
        "kind": "sheltered",
        "positions": 1,
        "location": {"postcode": "5911"},
        "description": "Buiten werken.\n\tIn een vast team.",
    }
    client = services["vacancy"].client
    answer = client.post(f"/v1/tenants/{tenant}/vacancies", json=vacancy, headers=bearer(keys["employer"]))
    assert assert_problem(answer, 422)["errors"] == {"title": ["Must not contain control characters."]}
    vacancy["title"] = "Hovenier"
    answer = client.post(f"/v1/tenants/{tenant}/vacancies", json=vacancy, headers=bearer(keys["employer"]))
    assert answer.status_code == 201, "free text keeps its tabs and line breaks"

    candidate = services["candidate"].client.post(
        f"/v1/tenants/{tenant}/candidates",
        json={
            "display_name": "K\u0000",
            "hours_min": 8,
            "hours_max": 16,
            "ladder_step": 3,
            "location": {"postcode": "5911"},
            "consent": {"matching": "yes", "share_with_employers": 0},
            "target_group_register": "true",
        },
        headers=bearer(keys["jobcoach"]),
    )
    assert assert_problem(candidate, 422)["errors"] == {
        "display_name": ["Must not contain control characters."],
        "consent": {"matching": ["Not a valid boolean."], "share_with_employers": ["Not a valid boolean."]},
        "target_group_register": ["Not a valid boolean."],
    }
