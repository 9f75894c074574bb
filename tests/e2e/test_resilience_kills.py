"""Each worker killed while vacancies are in flight, not while idle: the vacancy relay while it publishes, the
matching worker while it is proposing, the notification worker while deliveries wait. Every accepted vacancy
gives exactly one proposal on ``match-events``, one alert, and one webhook call per alert. And a database that
turns read-only for a minute, as after a failover, delays alerts but dead-letters nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from shared.events import EventType, decode_event
from tests.conftest import SERVER_URL, USES_POSTGRES
from tests.e2e.conftest import bearer
from tests.e2e.helpers import put_channels, wait_until
from tests.e2e.payloads import GARDENER, GREEN_VACANCY
from tests.e2e.test_resilience import _alerts_by_vacancy, _wait_until_matching_knows
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka

SECRET = "a-webhook-secret-of-some-length"
VACANCIES_PER_ROUND = 10
# Before every "nothing more arrives" judgement: time for a duplicate, were one coming, to show up.
GRACE_S = 5


class Poster(threading.Thread):
    """Posts vacancies one after another, so that a kill lands while they stream through the pipeline."""

    def __init__(self, stack, tenant: str, key: str, count: int):
        super().__init__(daemon=True)
        self.stack, self.tenant, self.key, self.count = stack, tenant, key, count
        self.accepted: list[str] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(self.count):
                self.accepted.append(self.stack.post_vacancy(GREEN_VACANCY, tenant=self.tenant, key=self.key))
        except BaseException as exc:  # reported to the test thread, which asserts on it
            self.failure = exc

    def finish(self) -> list[str]:
        self.join(120)
        assert self.failure is None, f"posting failed: {self.failure!r}"
        assert len(self.accepted) == self.count
        return self.accepted


def _post_and_kill(stack, tenant: str, key: str, process: str, *, kill_when, while_dead=None) -> list[str]:
    poster = Poster(stack, tenant, key, VACANCIES_PER_ROUND)
    poster.start()
    wait_until(lambda: kill_when(poster), 60, f"the moment to kill the {process}", stack)
    stack.processes.kill(process)
    if while_dead is not None:
        while_dead()
    stack.processes.restart(process)
    return poster.finish()


def _proposals_on_the_topic(stack, tenant: str, candidate_id: str) -> Counter:
    """Proposals per vacancy, counted by event id. A relay killed between the broker's acknowledgement and
    marking its row sent publishes that row again, the same event with the same id, which every consumer
    takes once; a second *decision* about one vacancy would carry another id, and that is what must not be."""
    messages = read_all(stack.broker.bootstrap_servers, "match-events", key_prefix=f"{tenant}/{candidate_id}".encode())
    events = [decode_event(m.value) for m in messages if m.value is not None]
    decisions = {e.id: e.data["vacancy_id"] for e in events if e.type == EventType.MATCH_PROPOSED}
    return Counter(decisions.values())


def test_killing_each_worker_mid_stream_loses_and_doubles_no_proposal_alert_or_delivery(stack, webhook_receiver):
    tenant, keys = stack.new_tenant()
    assert put_channels(stack, tenant, keys, {"webhook_url": webhook_receiver.url, "webhook_secret": SECRET}).ok
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)

    def alerts_seen() -> int:
        return len(_alerts_by_vacancy(stack, tenant, keys["jobcoach"]))

    # The relay runs in the vacancy worker: killed once a few vacancies wait in, or left, the outbox.
    accepted = _post_and_kill(
        stack, tenant, keys["employer"], "vacancy-worker", kill_when=lambda p: len(p.accepted) >= 3
    )
    # The matching worker: killed once its first proposals of this round are out, with more coming.
    before = alerts_seen()
    accepted += _post_and_kill(
        stack, tenant, keys["employer"], "matching-worker", kill_when=lambda p: alerts_seen() > before
    )
    # The notification worker: killed once the receiver, down, has refused a delivery, so deliveries wait in
    # their retries. The receiver is back before the worker: were it down for the whole restart, deliveries
    # would use up their attempts and be dead-lettered, which is what attempts are for, not a loss.
    webhook_receiver.status = 503

    def receiver_back() -> None:
        webhook_receiver.status = 200

    accepted += _post_and_kill(
        stack,
        tenant,
        keys["employer"],
        "notification-worker",
        kill_when=lambda p: webhook_receiver.refused > 0,
        while_dead=receiver_back,
    )

    wait_until(
        lambda: set(_alerts_by_vacancy(stack, tenant, keys["jobcoach"])) >= set(accepted), 180, "every alert", stack
    )
    alert_ids = {a["id"] for a in stack.alerts(keys["jobcoach"], tenant=tenant) if a["type"] == "match_proposed"}
    wait_until(
        lambda: {call["json"]["id"] for call in webhook_receiver.received()} >= alert_ids, 180, "every webhook", stack
    )
    time.sleep(GRACE_S)

    proposals = _proposals_on_the_topic(stack, tenant, candidate_id)
    alerts = _alerts_by_vacancy(stack, tenant, keys["jobcoach"])
    deliveries = Counter(call["json"]["id"] for call in webhook_receiver.received())
    assert set(proposals) == set(alerts) == set(accepted), "a vacancy lost its proposal or alert"
    assert [v for v, n in proposals.items() if n > 1] == [], "doubled proposals on match-events"
    assert [v for v, n in alerts.items() if n > 1] == [], "doubled alerts"
    assert set(deliveries) == alert_ids and [a for a, n in deliveries.items() if n > 1] == [], "doubled webhooks"


READ_ONLY_S = 60


def _set_read_only(admin: sa.Engine, on: bool) -> None:
    """The whole database read-only for new sessions, or writable again, and every other session ended so
    that each process reconnects under the new rule, as after a failover."""
    database = admin.url.database
    with admin.connect() as connection:
        # This session may itself have started read-only: it must be able to lift the rule.
        connection.execute(sa.text("SET default_transaction_read_only = off"))
        if on:
            connection.execute(sa.text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'))
        else:
            connection.execute(sa.text(f'ALTER DATABASE "{database}" RESET default_transaction_read_only'))
        connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
            ),
            {"d": database},
        )


@pytest.mark.skipif(not USES_POSTGRES, reason="a read-only database after a failover is PostgreSQL's state")
def test_a_database_read_only_for_a_minute_delays_alerts_and_dead_letters_nothing(stack):
    tenant, keys = stack.new_tenant()
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)
    # Accepted just before the failover, so that it finds them on their way through the relay and workers.
    accepted = [stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"]) for _ in range(5)]

    admin = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    statuses: Counter = Counter()
    _set_read_only(admin, True)
    try:
        deadline = time.monotonic() + READ_ONLY_S
        while time.monotonic() < deadline:
            answer = requests.post(
                f"{stack.url('vacancy')}/v1/tenants/{tenant}/vacancies",
                json=GREEN_VACANCY,
                headers=bearer(keys["employer"]),
                timeout=30,
            )
            statuses[answer.status_code] += 1
            if answer.status_code == 201:
                accepted.append(answer.json()["id"])
            time.sleep(2)
    finally:
        _set_read_only(admin, False)
        admin.dispose()

    # Refused with a retry hint while nothing could be written; never a 500.
    assert statuses[503] > 0 and set(statuses) <= {201, 503}, statuses
    wait_until(
        lambda: set(_alerts_by_vacancy(stack, tenant, keys["jobcoach"])) >= set(accepted), 180, "every alert", stack
    )
    time.sleep(GRACE_S)
    alerts = _alerts_by_vacancy(stack, tenant, keys["jobcoach"])
    assert set(alerts) == set(accepted) and all(n == 1 for n in alerts.values())
    dead = read_all(stack.broker.bootstrap_servers, "dead-letters", key_prefix=f"{tenant}/".encode())
    assert dead == [], f"{len(dead)} events dead-lettered during the failover"
