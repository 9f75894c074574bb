"""The shared web layer's HTTP semantics on the candidate and vacancy services, on a real database:
Idempotency-Key on POST, ETag and If-Match, rate limits, the OpenAPI document and its page."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared import idempotency
from shared.db import utcnow
from shared.web.conditional import etag
from shared.web.idempotency import REPLAYED_HEADER, principal_hash, request_fingerprint
from shared.web.problems import PROBLEM_JSON
from tests.conftest import USES_POSTGRES
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, outbox_rows, snapshot
from tests.integration.test_vacancy_api import vacancy_body


def collection(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/vacancies"


@pytest.fixture
def vacancies(service, keys):
    return service("vacancy")


def with_key(key: str, idempotency_key: str | None = None, **extra) -> dict:
    headers = bearer(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers | extra


def vacancy_count(svc) -> int:
    with svc.db.session() as session:
        return session.execute(sa.select(sa.func.count()).select_from(svc.store.vacancies)).scalar_one()


def post(svc, tenant, key, idempotency_key=None, **overrides):
    return svc.client.post(collection(tenant), json=vacancy_body(**overrides), headers=with_key(key, idempotency_key))


# --------------------------------------------------------------------------------------------------------
# Idempotency-Key


def test_a_retry_with_the_same_key_answers_the_first_answer_and_creates_nothing(vacancies, keys, tenant):
    first = post(vacancies, tenant, keys["employer"], "order-17")
    again = post(vacancies, tenant, keys["employer"], "order-17")

    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert vacancy_count(vacancies) == 1
    assert len(outbox_rows(vacancies)) == 1


def test_the_same_key_with_another_body_is_422_and_creates_nothing(vacancies, keys, tenant):
    post(vacancies, tenant, keys["employer"], "order-18")
    before = snapshot(vacancies)

    body = assert_problem(post(vacancies, tenant, keys["employer"], "order-18", positions=3), 422)

    assert "Idempotency-Key" in body["errors"]
    assert snapshot(vacancies) == before


def test_a_key_reordered_json_body_counts_as_the_same_request(vacancies, keys, tenant):
    sent = vacancy_body()
    first = vacancies.client.post(collection(tenant), json=sent, headers=with_key(keys["employer"], "k-order"))
    reordered = dict(reversed(list(sent.items())))
    again = vacancies.client.post(collection(tenant), json=reordered, headers=with_key(keys["employer"], "k-order"))

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]


def test_keys_are_scoped_to_the_api_key_that_sent_them(vacancies, keys, tenant):
    mine = post(vacancies, tenant, keys["employer"], "shared-key")
    theirs = post(vacancies, tenant, keys["employer2"], "shared-key")

    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]
    with vacancies.db.session() as session:
        stored = session.execute(sa.select(idempotency.TABLE.c.principal_hash)).scalars().all()
    # Only hashes are kept, never the API keys themselves.
    assert all(keys["employer"] not in value and keys["employer2"] not in value for value in stored)
    assert len(set(stored)) == 2


@pytest.mark.parametrize("bad_key", ["x" * 256, "   "])
def test_an_unusable_key_is_422_and_creates_nothing(vacancies, keys, tenant, bad_key):
    before = snapshot(vacancies)

    body = assert_problem(post(vacancies, tenant, keys["employer"], bad_key), 422)

    assert "Idempotency-Key" in body["errors"]
    assert snapshot(vacancies) == before


def test_a_key_of_255_characters_is_accepted(vacancies, keys, tenant):
    assert post(vacancies, tenant, keys["employer"], "k" * 255).status_code == 201


@pytest.mark.parametrize("other_body", [False, True], ids=["same request", "another body"])
def test_while_the_first_request_still_runs_the_same_key_is_409(vacancies, keys, tenant, other_body):
    """409 until the first finishes, whatever the second asks: where a key is held by a lock (SQLite) the
    running request's body is not known, and both databases answer alike."""
    app = vacancies.client.application
    with app.test_request_context(
        collection(tenant), method="POST", json=vacancy_body(), headers=with_key(keys["employer"], "busy")
    ):
        fingerprint = request_fingerprint()
    with vacancies.db.session() as session:
        held = idempotency.claim(session, principal_hash(keys["employer"]), "busy", fingerprint, utcnow())
    assert held.claim is not None

    response = post(vacancies, tenant, keys["employer"], "busy", **({"title": "Ander werk"} if other_body else {}))

    assert_problem(response, 409)
    assert response.headers["Retry-After"] == "1"
    assert vacancy_count(vacancies) == 0


def test_a_claim_whose_holder_died_is_taken_over_after_its_lease(vacancies, keys, tenant):
    app = vacancies.client.application
    with app.test_request_context(
        collection(tenant), method="POST", json=vacancy_body(), headers=with_key(keys["employer"], "orphan")
    ):
        fingerprint = request_fingerprint()
    long_ago = utcnow() - idempotency.LEASE - timedelta(seconds=1)
    with vacancies.db.session() as session:
        idempotency.claim(session, principal_hash(keys["employer"]), "orphan", fingerprint, long_ago)

    assert post(vacancies, tenant, keys["employer"], "orphan").status_code == 201
    assert vacancy_count(vacancies) == 1


def test_a_dead_holders_key_is_taken_over_by_another_body_and_kept_for_it(vacancies, keys, tenant):
    """A claim whose holder died committed nothing, so the key belongs to the request that takes it over."""
    long_ago = utcnow() - idempotency.LEASE - timedelta(seconds=1)
    with vacancies.db.session() as session:
        idempotency.claim(session, principal_hash(keys["employer"]), "orphan", "d" * 64, long_ago)

    first = post(vacancies, tenant, keys["employer"], "orphan")

    assert first.status_code == 201
    replayed = post(vacancies, tenant, keys["employer"], "orphan")
    assert replayed.headers[REPLAYED_HEADER] == "true"
    assert replayed.get_json()["id"] == first.get_json()["id"]
    assert_problem(post(vacancies, tenant, keys["employer"], "orphan", title="Ander werk"), 422)
    assert vacancy_count(vacancies) == 1


def test_an_overtaken_request_rolls_its_effect_back(vacancies, keys, tenant):
    """The answer is stored in the effect's transaction: a request whose claim was taken over meanwhile
    cannot complete it, so its vacancy is undone and only the new holder's counts."""
    with vacancies.db.session() as session:
        outcome = idempotency.claim(session, "p" * 64, "k", "h" * 64, utcnow())
        session.execute(idempotency.TABLE.update().values(claim_token="someone-else"))
    with vacancies.db.session() as session:
        answer = idempotency.StoredAnswer(201, {}, "{}")
        assert idempotency.complete(session, outcome.claim, answer, utcnow()) is False


_KEY_HOLDER = """
import sys
from shared.idempotency import KeyLocks
lock = KeyLocks.beside(sys.argv[1]).take(sys.argv[2], sys.argv[3])
print("holding" if lock is not None else "refused", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(USES_POSTGRES, reason="keys are held by a lock file on a SQLite file only")
def test_a_key_held_by_a_process_that_is_killed_is_free_at_once(vacancies, keys, tenant):
    """On a SQLite file a running request holds its key by a lock on a file: another process holding it
    means 409, and the kernel frees it when that process dies, without waiting for a lease."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _KEY_HOLDER, vacancies.db.sqlite_file, principal_hash(keys["employer"]), "held"],
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        busy = post(vacancies, tenant, keys["employer"], "held")
        assert_problem(busy, 409)
        assert busy.headers["Retry-After"] == "1"
        assert post(vacancies, tenant, keys["employer"], "another").status_code == 201, "only that key is held"
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        holder.kill()
        holder.wait(30)

    after = post(vacancies, tenant, keys["employer"], "held")

    assert after.status_code == 201
    assert vacancy_count(vacancies) == 2
    assert post(vacancies, tenant, keys["employer"], "held").headers[REPLAYED_HEADER] == "true"


@pytest.mark.skipif(USES_POSTGRES, reason="keys are held by a lock file on a SQLite file only")
def test_a_held_key_is_one_requests_at_a_time_within_a_process_too(vacancies):
    locks = idempotency.KeyLocks.beside(vacancies.db.sqlite_file)
    first = locks.take("p" * 64, "k")
    assert first is not None
    taken_elsewhere: list = []
    thread = threading.Thread(target=lambda: taken_elsewhere.append(locks.take("p" * 64, "k")))
    thread.start()
    thread.join(10)
    assert taken_elsewhere == [None], "another thread of the process took a held key"
    assert locks.take("q" * 64, "k") is not None, "the same key in another scope is another key"

    first.release()

    again = locks.take("p" * 64, "k")
    assert again is not None
    again.release()


@pytest.mark.skipif(USES_POSTGRES, reason="keys are held by a lock file on a SQLite file only")
def test_a_held_keys_answer_never_replaces_a_finished_one(vacancies):
    """Only an expired row or a dead holder's pending claim gives way to a held key's answer."""
    now = utcnow()
    held = idempotency.hold(vacancies.db, "p" * 64, "k", "h" * 64, now)
    assert held.claim is not None
    try:
        with vacancies.db.session() as session:
            outcome = idempotency.claim(session, "p" * 64, "k", "h" * 64, now)
            assert outcome.claim is not None
            stored = idempotency.StoredAnswer(201, {}, '{"first": true}')
            assert idempotency.complete(session, outcome.claim, stored, now)
        with vacancies.db.session() as session:
            late = idempotency.StoredAnswer(201, {}, '{"second": true}')
            assert idempotency.complete(session, held.claim, late, now) is False
    finally:
        held.claim.lock.release()
    with vacancies.db.session() as session:
        bodies = session.execute(sa.select(idempotency.TABLE.c.response_body)).scalars().all()
    assert bodies == ['{"first": true}']


def test_a_failed_request_leaves_its_key_free_for_a_corrected_retry(vacancies, keys, tenant):
    failed = post(vacancies, tenant, keys["employer"], "fix-me", hours_min=30, hours_max=10)
    assert_problem(failed, 422)
    with vacancies.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(idempotency.TABLE)).scalar_one() == 0

    fixed = post(vacancies, tenant, keys["employer"], "fix-me")

    assert fixed.status_code == 201
    assert vacancy_count(vacancies) == 1


def test_concurrent_retries_with_one_key_create_one_vacancy(vacancies, keys, tenant):
    answers: list = []

    def send():
        client = vacancies.client.application.test_client()
        answers.append(client.post(collection(tenant), json=vacancy_body(), headers=with_key(keys["employer"], "race")))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted({answer.status_code for answer in answers}) in ([201], [201, 409])
    assert len({answer.get_json()["id"] for answer in answers if answer.status_code == 201}) == 1
    assert vacancy_count(vacancies) == 1


def test_expired_keys_are_purged_and_free_again(vacancies, keys, tenant):
    first = post(vacancies, tenant, keys["employer"], "yesterday")
    later = utcnow() + idempotency.RETENTION + timedelta(minutes=1)
    with vacancies.db.session() as session:
        session.execute(idempotency.TABLE.update().values(expires_at=utcnow() - timedelta(seconds=1)))

    again = post(vacancies, tenant, keys["employer"], "yesterday")

    assert again.status_code == 201
    assert again.get_json()["id"] != first.get_json()["id"]
    with vacancies.db.session() as session:
        assert idempotency.purge_expired(session, later) == 1
        assert session.execute(sa.select(sa.func.count()).select_from(idempotency.TABLE)).scalar_one() == 0


def test_posts_without_a_key_are_not_stored(vacancies, keys, tenant):
    post(vacancies, tenant, keys["employer"])
    post(vacancies, tenant, keys["employer"])

    assert vacancy_count(vacancies) == 2
    with vacancies.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(idempotency.TABLE)).scalar_one() == 0


def test_candidate_registration_is_idempotent_too(service, keys, tenant):
    from tests.integration.test_candidate_api import candidate_body

    candidates = service("candidate")
    path = f"/v1/tenants/{tenant}/candidates"
    first = candidates.client.post(path, json=candidate_body(), headers=with_key(keys["jobcoach"], "reg-1"))
    again = candidates.client.post(path, json=candidate_body(), headers=with_key(keys["jobcoach"], "reg-1"))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(outbox_rows(candidates)) == 1


# --------------------------------------------------------------------------------------------------------
# ETag and If-Match


def created(vacancies, tenant, keys) -> tuple[str, str]:
    response = post(vacancies, tenant, keys["employer"])
    return response.headers["Location"], response.headers["ETag"]


def test_reads_and_writes_carry_the_etag_of_the_stored_version(vacancies, keys, tenant):
    location, tag = created(vacancies, tenant, keys)
    read = vacancies.client.get(location, headers=bearer(keys["employer"]))
    vacancy_id = read.get_json()["id"]

    assert read.headers["ETag"] == tag == etag("vacancy", vacancy_id, 1)
    changed = vacancies.client.patch(location, json={"positions": 2}, headers=with_key(keys["employer"], None))
    assert changed.headers["ETag"] == etag("vacancy", vacancy_id, 2)
    assert vacancies.client.get(location, headers=bearer(keys["operator"])).headers["ETag"] == changed.headers["ETag"]


def test_a_change_under_the_current_etag_is_made(vacancies, keys, tenant):
    location, tag = created(vacancies, tenant, keys)

    response = vacancies.client.patch(
        location, json={"positions": 2}, headers=with_key(keys["employer"], None, **{"If-Match": tag})
    )

    assert response.status_code == 200
    assert response.get_json()["positions"] == 2
    assert response.headers["ETag"] != tag


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_stale_etag_is_412_and_nothing_changes(vacancies, keys, tenant, method):
    location, tag = created(vacancies, tenant, keys)
    vacancies.client.patch(location, json={"positions": 2}, headers=bearer(keys["employer"]))
    before = snapshot(vacancies)

    headers = with_key(keys["employer"], None, **{"If-Match": tag})
    kwargs = {"json": {"positions": 5}} if method == "patch" else {}
    response = getattr(vacancies.client, method)(location, headers=headers, **kwargs)

    assert_problem(response, 412)
    assert snapshot(vacancies) == before


@pytest.mark.parametrize("header", ["abc", '"unterminated', 'W/"x", nonsense', ""])
def test_a_malformed_if_match_is_400(vacancies, keys, tenant, header):
    location, _ = created(vacancies, tenant, keys)
    before = snapshot(vacancies)

    response = vacancies.client.patch(
        location, json={"positions": 2}, headers=with_key(keys["employer"], None, **{"If-Match": header})
    )

    assert_problem(response, 400)
    assert snapshot(vacancies) == before


def test_if_match_star_and_lists_are_understood(vacancies, keys, tenant):
    location, _ = created(vacancies, tenant, keys)
    star = vacancies.client.patch(
        location, json={"positions": 2}, headers=with_key(keys["employer"], None, **{"If-Match": "*"})
    )
    listed = vacancies.client.patch(
        location,
        json={"positions": 3},
        headers=with_key(keys["employer"], None, **{"If-Match": f'"other", {star.headers["ETag"]}'}),
    )
    weak = vacancies.client.patch(
        location,
        json={"positions": 4},
        headers=with_key(keys["employer"], None, **{"If-Match": f"W/{listed.headers['ETag']}"}),
    )

    assert (star.status_code, listed.status_code) == (200, 200)
    assert_problem(weak, 412)  # If-Match compares strongly


def test_a_region_can_require_if_match(vacancies, keys, tenant, registry):
    location, tag = created(vacancies, tenant, keys)
    registry.change_settings(tenant, {"require_if_match": "true"})
    before = snapshot(vacancies)

    missing = vacancies.client.patch(location, json={"positions": 2}, headers=bearer(keys["employer"]))
    closing = vacancies.client.delete(location, headers=bearer(keys["employer"]))

    assert_problem(missing, 428)
    assert_problem(closing, 428)
    assert snapshot(vacancies) == before
    given = vacancies.client.patch(
        location, json={"positions": 2}, headers=with_key(keys["employer"], None, **{"If-Match": tag})
    )
    assert given.status_code == 200


def test_of_two_concurrent_changes_under_one_etag_one_wins(vacancies, keys, tenant):
    location, tag = created(vacancies, tenant, keys)
    answers: list = []
    start = threading.Barrier(2)

    def change(positions: int):
        client = vacancies.client.application.test_client()
        start.wait()
        answers.append(
            client.patch(
                location, json={"positions": positions}, headers=with_key(keys["employer"], None, **{"If-Match": tag})
            )
        )

    threads = [threading.Thread(target=change, args=(n,)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answer.status_code for answer in answers) == [200, 412]
    winner = next(answer for answer in answers if answer.status_code == 200)
    stored = vacancies.client.get(location, headers=bearer(keys["employer"]))
    assert stored.get_json()["positions"] == winner.get_json()["positions"]
    assert stored.headers["ETag"] == etag("vacancy", stored.get_json()["id"], 2)


def test_a_change_without_if_match_racing_a_close_never_reopens_the_vacancy(vacancies, keys, tenant):
    # Without If-Match the change is computed from what was read; unless that read holds the row, a close
    # committed in between is overwritten and the vacancy reopened. Whichever goes first, it ends closed.
    for _ in range(8):
        location, _tag = created(vacancies, tenant, keys)
        answers: dict = {}
        start = threading.Barrier(2)

        def act(name: str, location: str = location, answers: dict = answers, start=start):
            client = vacancies.client.application.test_client()
            start.wait()
            if name == "close":
                answers[name] = client.delete(location, headers=bearer(keys["employer"]))
            else:
                answers[name] = client.patch(location, json={"positions": 2}, headers=bearer(keys["employer"]))

        threads = [threading.Thread(target=act, args=(name,)) for name in ("close", "change")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert answers["close"].status_code == 200
        assert answers["change"].status_code in (200, 422)
        stored = vacancies.client.get(location, headers=bearer(keys["employer"])).get_json()
        assert stored["status"] == "closed"


def test_candidates_carry_etags_and_honour_if_match(service, keys, tenant):
    from tests.integration.test_candidate_api import candidate_body

    candidates = service("candidate")
    created_ = candidates.client.post(
        f"/v1/tenants/{tenant}/candidates", json=candidate_body(), headers=bearer(keys["jobcoach"])
    )
    location, tag = created_.headers["Location"], created_.headers["ETag"]
    assert candidates.client.get(location, headers=bearer(keys["jobcoach"])).headers["ETag"] == tag
    changed = candidates.client.patch(
        location, json={"hours_max": 30}, headers=with_key(keys["jobcoach"], None, **{"If-Match": tag})
    )
    assert changed.status_code == 200

    stale_erase = candidates.client.delete(location, headers=with_key(keys["jobcoach"], None, **{"If-Match": tag}))
    assert_problem(stale_erase, 412)
    erase = candidates.client.delete(
        location, headers=with_key(keys["jobcoach"], None, **{"If-Match": changed.headers["ETag"]})
    )
    assert erase.status_code == 204


# --------------------------------------------------------------------------------------------------------
# Rate limits


def test_a_limit_engages_with_429_retry_after_and_ratelimit_headers(vacancies, keys, tenant, registry):
    registry.change_settings(tenant, {"rate_limits": '{"employer": "3/minute"}'})
    path = collection(tenant)

    answers = [vacancies.client.get(path, headers=bearer(keys["employer"])) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [answer.headers["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert_problem(refused, 429)
    assert refused.headers["RateLimit-Limit"] == "3"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert 0 <= int(refused.headers["RateLimit-Reset"]) <= 60
    # Another key of the same role has a bucket of its own; the operator's role has its own limit.
    assert vacancies.client.get(path, headers=bearer(keys["employer2"])).status_code == 200
    operator = vacancies.client.get(path, headers=bearer(keys["operator"]))
    assert operator.headers["RateLimit-Limit"] == "600"


def test_rate_limit_headers_come_on_error_answers_too(vacancies, keys, tenant):
    missing = vacancies.client.get(f"{collection(tenant)}/no-such-vacancy", headers=bearer(keys["employer"]))
    invalid = vacancies.client.post(
        collection(tenant), data="{", content_type="application/json", headers=bearer(keys["employer"])
    )
    anonymous = vacancies.client.get(collection(tenant))

    for response, status in ((missing, 404), (invalid, 400), (anonymous, 401)):
        assert_problem(response, status)
        assert response.headers["RateLimit-Limit"]
        assert response.headers["RateLimit-Remaining"]
    assert missing.headers["RateLimit-Limit"] == "120"
    assert anonymous.headers["RateLimit-Limit"] == "30"


def test_each_of_several_limits_counts_and_the_answer_tells_the_one_that_refused(vacancies, keys, tenant, registry):
    registry.change_settings(tenant, {"rate_limits": '{"employer": "5/minute;3/hour"}'})

    answers = [vacancies.client.get(collection(tenant), headers=bearer(keys["employer"])) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    # The narrowest window is told while none is passed; then the one that refused.
    assert [answer.headers["RateLimit-Limit"] for answer in answers] == ["5", "5", "5", "3"]
    assert [answer.headers["RateLimit-Policy"] for answer in answers] == ["5;w=60"] * 3 + ["3;w=3600"]
    assert "3 per 1 hour" in answers[-1].get_json()["detail"]


def test_a_counter_store_that_is_away_lets_requests_pass_uncounted(vacancies, keys, tenant):
    with vacancies.db.session() as session:
        session.execute(sa.text("DROP TABLE rate_limits"))

    answer = vacancies.client.get(collection(tenant), headers=bearer(keys["employer"]))

    assert answer.status_code == 200
    assert "RateLimit-Limit" not in answer.headers


def test_a_path_that_names_no_route_is_not_counted(vacancies, keys, tenant):
    answer = vacancies.client.get(f"/v1/tenants/{tenant}/no-such-collection", headers=bearer(keys["employer"]))

    assert_problem(answer, 404)
    assert "RateLimit-Limit" not in answer.headers


def test_probes_and_documents_are_not_limited(vacancies):
    for path in ("/healthz", "/openapi.json", "/docs"):
        response = vacancies.client.get(path)
        assert response.status_code == 200, path
        assert "RateLimit-Limit" not in response.headers


def test_limits_can_be_switched_off(database_url, registry, keys, tenant):
    from services.vacancy import app as vacancy_app
    from services.vacancy import config, store
    from shared.db import Database, upgrade
    from shared.web.app import ServiceContext

    url = database_url("vacancy")
    upgrade(store.MIGRATIONS, url)
    settings = config.load({"DATABASE_URL": url, "RATELIMIT_ENABLED": "false"})
    client = vacancy_app.create_app(ServiceContext(settings, Database(url), registry)).test_client()
    registry.change_settings(tenant, {"rate_limits": '{"employer": "1/minute"}'})

    answers = [client.get(collection(tenant), headers=bearer(keys["employer"])) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert "RateLimit-Limit" not in answers[0].headers


# --------------------------------------------------------------------------------------------------------
# The OpenAPI document and its page


def test_the_openapi_document_lists_every_status_as_problem_json(vacancies):
    spec = vacancies.client.get("/openapi.json").get_json()
    operations = spec["paths"]["/v1/tenants/{tenant}/vacancies/{vacancy_id}"]

    assert set(operations["patch"]["responses"]) >= {"200", "400", "401", "403", "404", "412", "422", "428", "429"}
    assert set(operations["get"]["responses"]) >= {"200", "401", "404", "429"}
    assert "ETag" in operations["get"]["responses"]["200"]["headers"]
    post_ = spec["paths"]["/v1/tenants/{tenant}/vacancies"]["post"]
    assert set(post_["responses"]) >= {"201", "400", "401", "403", "404", "409", "413", "422", "429"}
    assert any(parameter["name"] == "Idempotency-Key" for parameter in post_["parameters"])
    problem = spec["components"]["responses"]["PRECONDITION_FAILED"]["content"][PROBLEM_JSON]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert problem["example"]["status"] == 412
    assert set(spec["components"]["schemas"]["Problem"]["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "errors",
    }
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert "default" not in operations["get"]["responses"]


def test_the_documentation_page_uses_only_its_own_assets(vacancies):
    page = vacancies.client.get("/docs")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert vacancies.client.get(f"/docs/assets/{asset}").status_code == 200, asset
    assert vacancies.client.get("/docs/assets/../../app.py").status_code == 404


@pytest.mark.parametrize(("sync_hits", "most_admitted"), [(1, 10), (5, 10 + 2 * 4)])
def test_counters_are_shared_by_processes_within_their_batch(database_url, sync_hits, most_admitted):
    """Two processes (two storages on one database) hitting one key with a limit of 10: exact when every
    hit is written, and past it by at most ``sync_hits - 1`` per process when hits are batched."""
    from limits import parse
    from limits.strategies import FixedWindowRateLimiter

    from services.vacancy import store
    from shared.db import Database, upgrade
    from shared.ratelimit import DatabaseStorage

    url = database_url("vacancy")
    upgrade(store.MIGRATIONS, url)
    limit = parse("10/minute")
    processes = [
        FixedWindowRateLimiter(DatabaseStorage("werkbrug-database://", database=Database(url), sync_hits=sync_hits))
        for _ in range(2)
    ]

    admitted = sum(processes[n % 2].hit(limit, "key:k") for n in range(40))

    assert 10 <= admitted <= most_admitted


def test_a_counter_continues_its_window_and_starts_a_new_one_once_it_ran_out(database_url):
    """The shared counter's one upsert both adds to a running window and restarts one that has ended."""
    import time

    from services.vacancy import store
    from shared import ratelimit
    from shared.db import Database, upgrade

    url = database_url("vacancy")
    upgrade(store.MIGRATIONS, url)
    db = Database(url)
    first = ratelimit.DatabaseStorage("werkbrug-database://", database=db, sync_hits=1)

    assert [first.incr("key:k", 60) for _ in range(3)] == [1, 2, 3]
    with db.session() as session:
        session.execute(ratelimit.TABLE.update().values(expires_at=time.time() - 1))
    # Another process, which has no count of its own for the key, meets the ended window in the database.
    other = ratelimit.DatabaseStorage("werkbrug-database://", database=Database(url), sync_hits=1)

    assert other.incr("key:k", 60) == 1
    assert other.get_expiry("key:k") > time.time() + 30


# --------------------------------------------------------------------------------------------------------
# Defects Schemathesis found


@pytest.mark.parametrize("text", ["a\\ud800b", "\\udfff"])
def test_a_lone_surrogate_in_a_json_string_is_400_not_a_server_error(vacancies, keys, tenant, text):
    body = json.dumps(vacancy_body()).replace('"Medewerker groenonderhoud"', f'"{text}"')
    before = snapshot(vacancies)

    response = vacancies.client.post(
        collection(tenant), data=body, content_type="application/json", headers=bearer(keys["employer"])
    )

    assert_problem(response, 400)
    assert snapshot(vacancies) == before


def test_an_escaped_emoji_is_still_welcome(vacancies, keys, tenant):
    body = json.dumps(vacancy_body(title="Koffie \U0001f600"))  # ensure_ascii: sent as a surrogate pair

    response = vacancies.client.post(
        collection(tenant), data=body, content_type="application/json", headers=bearer(keys["employer"])
    )

    assert response.status_code == 201
    assert response.get_json()["title"] == "Koffie \U0001f600"


def test_a_patched_support_need_without_its_code_is_refused_not_a_server_error(service, keys, tenant):
    from tests.integration.test_candidate_api import candidate_body

    candidates = service("candidate")
    location = candidates.client.post(
        f"/v1/tenants/{tenant}/candidates", json=candidate_body(), headers=bearer(keys["jobcoach"])
    ).headers["Location"]

    response = candidates.client.patch(
        location, json={"support_needs": [{"level": "essential"}]}, headers=bearer(keys["jobcoach"])
    )

    assert_problem(response, 422)


def test_unknown_query_parameters_are_refused_on_every_route(vacancies, keys, tenant):
    location, _ = created(vacancies, tenant, keys)

    response = vacancies.client.get(f"{location}?status=open", headers=bearer(keys["employer"]))

    assert assert_problem(response, 422)["errors"] == {"status": ["Unknown field."]}


# --------------------------------------------------------------------------------------------------------
# A database in a passing state


@pytest.mark.skipif(not USES_POSTGRES, reason="a read-only database after a failover is PostgreSQL's state")
def test_a_read_only_database_is_answered_503_with_retry_after_and_nothing_changes(vacancies, keys, tenant):
    before = snapshot(vacancies)
    engine = vacancies.db.engine

    def read_only(dbapi_connection, _record):
        # What a failover to a standby looks like to new connections: every write refused with SQLSTATE 25006.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
        dbapi_connection.commit()

    engine.dispose()
    sa.event.listen(engine, "connect", read_only)
    try:
        refused = post(vacancies, tenant, keys["employer"], "during-failover")
    finally:
        sa.event.remove(engine, "connect", read_only)
        engine.dispose()

    assert_problem(refused, 503)
    assert refused.headers["Retry-After"] == "5"
    assert snapshot(vacancies) == before
    # The same retry, once the database takes writes again, is simply done.
    assert post(vacancies, tenant, keys["employer"], "during-failover").status_code == 201
