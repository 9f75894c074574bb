"""RFC 9457 answers and the authorize decorator, without a database: the order of refusals matters."""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.exceptions import BadRequest, InternalServerError, Unauthorized, UnprocessableEntity

from shared.registry import Principal
from shared.web.app import ProblemApi
from shared.web.auth import authorize, bearer_key, current_principal
from shared.web.problems import (
    MALFORMED_PROBLEM,
    PROBLEM_JSON,
    VALIDATION_PROBLEM,
    _field_errors,
    problem,
    problem_from_http_exception,
)


def test_a_problem_carries_type_title_status_detail_and_extras():
    response = problem(409, "Already there.", type_="https://werkbrug.nl/problems/conflict", hint="retry")

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json() == {
        "type": "https://werkbrug.nl/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "Already there.",
        "hint": "retry",
    }


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ({"json": {"title": ["Missing."]}}, {"title": ["Missing."]}),
        ({"json": {"a": ["x"]}, "query": {"page": ["y"]}}, {"a": ["x"], "page": ["y"]}),
        ({"json": ["Invalid input type."]}, {"_body": ["Invalid input type."]}),
        ({"title": ["Missing."]}, {"title": ["Missing."]}),
        (["Invalid."], {"_body": ["Invalid."]}),
    ],
)
def test_field_errors_name_fields_not_request_locations(messages, expected):
    assert _field_errors(messages) == expected


def test_a_validation_error_is_422_with_the_fields():
    error = UnprocessableEntity()
    error.data = {"messages": {"json": {"hours_max": ["must be at least hours_min"]}}}

    body = problem_from_http_exception(error).get_json()

    assert body["status"] == 422
    assert body["type"] == VALIDATION_PROBLEM
    assert body["errors"] == {"hours_max": ["must be at least hours_min"]}


def test_an_unreadable_body_is_400_malformed_without_the_parser_message():
    error = BadRequest()
    error.data = {"messages": {"json": ["Invalid JSON body."]}}

    body = problem_from_http_exception(error).get_json()

    assert body["status"] == 400
    assert body["type"] == MALFORMED_PROBLEM
    assert "errors" not in body


def test_a_401_asks_for_abearer_key():
    response = problem_from_http_exception(Unauthorized())

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="werkbrug"'


def test_a_500_says_nothing_about_what_went_wrong():
    body = problem_from_http_exception(InternalServerError(description="row 42 had value X")).get_json()

    assert body == {"type": "about:blank", "title": "Internal Server Error", "status": 500}


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer wbk_abc", "wbk_abc"),
        ("bearer   wbk_abc  ", "wbk_abc"),
        ("Basic wbk_abc", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("wbk_abc", None),
        (None, None),
    ],
)
def test_thebearer_key_is_read_from_the_authorization_header(header, key):
    app = Flask(__name__)
    headers = {"Authorization": header} if header is not None else {}
    with app.test_request_context(headers=headers):
        assert bearer_key() == key


class _Registry:
    PRINCIPALS = {
        "wbk_emp": Principal("regio-a", "employer", "emp-1"),
        "wbk_jc": Principal("regio-a", "jobcoach", "jc-1"),
        "wbk_other": Principal("regio-b", "jobcoach", "jc-1"),
    }

    def authenticate(self, key):
        return self.PRINCIPALS.get(key)


class _Context:
    registry = _Registry()


@pytest.fixture
def client():
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
    app.extensions["werkbrug"] = _Context()
    ProblemApi(app)

    @app.get("/v1/tenants/<tenant>/jobcoaches/<jobcoach_id>")
    @authorize("jobcoach", subject_arg="jobcoach_id")
    def jobcoach_only(tenant, jobcoach_id):
        return {"subject": current_principal().subject}

    return app.test_client()


@pytest.mark.parametrize(
    ("key", "path", "status"),
    [
        (None, "/v1/tenants/regio-b/jobcoaches/jc-2", 401),
        ("wbk_unknown", "/v1/tenants/regio-a/jobcoaches/jc-1", 401),
        ("wbk_other", "/v1/tenants/regio-a/jobcoaches/jc-1", 404),
        ("wbk_emp", "/v1/tenants/regio-b/jobcoaches/jc-1", 404),
        ("wbk_emp", "/v1/tenants/regio-a/jobcoaches/jc-1", 403),
        ("wbk_jc", "/v1/tenants/regio-a/jobcoaches/jc-2", 404),
        ("wbk_jc", "/v1/tenants/regio-a/jobcoaches/jc-1", 200),
    ],
)
def test_authorize_answers_401_then_404_for_the_tenant_then_403_then_404_for_the_subject(client, key, path, status):
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    response = client.get(path, headers=headers)

    assert response.status_code == status
    if status != 200:
        assert response.mimetype == PROBLEM_JSON
    else:
        assert response.get_json() == {"subject": "jc-1"}
