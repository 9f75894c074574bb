"""The whole system as real processes, started the way ``make run`` starts them, driven over HTTP."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller

from admin.services import SERVICES, migrations
from shared.db import Database
from shared.devstack.broker import KafkaBroker, free_ports
from shared.devstack.stack import LocalStack
from shared.registry import Registry

# Quick retries, so that the tests about an unreachable webhook finish in seconds, not hours.
STACK_ENV = {
    "WEBHOOK_FIRST_RETRY_SECONDS": "0.3",
    "WEBHOOK_MAX_RETRY_SECONDS": "1",
    "WEBHOOK_MAX_ATTEMPTS": "5",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    # The tests' webhook receivers listen on loopback.
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    # Escalations are looked for often, so that a test that moves the clock sees them within a second.
    "ESCALATION_POLL_SECONDS": "0.5",
    "LOG_LEVEL": "INFO",
}


# What the end-to-end payloads hold that is personal or health-related, and SQLAlchemy's parameter dump: none
# of it may reach a process's log or a dead letter's headers, whatever the tests did to the system.
NEVER_LOGGED = (
    "Tulp",
    "buiten werken",
    "conflict_with_supervisor",
    "missed_shift",
    "positive_feedback",
    "[parameters:",
)


def personal_data_in_logs(log_dir: Path, bootstrap_servers: str) -> list[str]:
    """Where a process's log or a dead letter's header shows something of :data:`NEVER_LOGGED`."""
    from tests.kafka_helpers import read_all

    found = []
    for log in sorted(log_dir.glob("*.log")):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            found += [f"{log.name}:{number}: {word!r}" for word in NEVER_LOGGED if word in line]
    for message in read_all(bootstrap_servers, "dead-letters", idle_s=0.5):
        for name, value in message.headers:
            text = value.decode("utf-8", errors="replace")
            found += [f"dead-letters header {name}: {word!r}" for word in NEVER_LOGGED if word in text]
    return found


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class E2EStack:
    processes: LocalStack
    broker: KafkaBroker
    registry: Registry
    tenant: str
    keys: dict[str, str]
    tmp_path: Path
    # Seconds added to every process's clock; move it with shared.clock.move_clock.
    clock_file: Path

    def url(self, service: str) -> str:
        return self.processes.url(service)

    def metrics_targets(self) -> list[dict[str, str]]:
        return self.processes.metrics_targets()

    def new_tenant(self) -> tuple[str, dict[str, str]]:
        """Another region with its own keys, for tests that need isolation or a clean inbox."""
        tenant = f"regio-{uuid.uuid4().hex[:8]}"
        self.registry.create_tenant(tenant)
        jobcoach = f"jc-{uuid.uuid4().hex[:6]}"
        keys = {
            "employer": self.registry.create_key(tenant, "employer", f"emp-{uuid.uuid4().hex[:6]}"),
            "jobcoach": self.registry.create_key(tenant, "jobcoach", jobcoach),
            "operator": self.registry.create_key(tenant, "operator", None),
        }
        keys["jobcoach_id"] = jobcoach
        return tenant, keys

    def post_candidate(self, payload: dict, *, tenant: str | None = None, key: str | None = None) -> str:
        response = requests.post(
            f"{self.url('candidate')}/v1/tenants/{tenant or self.tenant}/candidates",
            json=payload,
            headers=bearer(key or self.keys["jobcoach"]),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def post_vacancy(self, payload: dict, *, tenant: str | None = None, key: str | None = None) -> str:
        response = requests.post(
            f"{self.url('vacancy')}/v1/tenants/{tenant or self.tenant}/vacancies",
            json=payload,
            headers=bearer(key or self.keys["employer"]),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def alerts(self, jobcoach_key: str, *, tenant: str | None = None, **params) -> list[dict]:
        items: list[dict] = []
        page = 1
        while True:
            response = requests.get(
                f"{self.url('notification')}/v1/tenants/{tenant or self.tenant}/alerts",
                params={"page": page, "page_size": 100, **params},
                headers=bearer(jobcoach_key),
                timeout=10,
            )
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["items"])
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1

    def wait_for_alert(
        self, jobcoach_key: str, predicate: Callable[[dict], bool], timeout: float = 60, *, tenant: str | None = None
    ) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for alert in self.alerts(jobcoach_key, tenant=tenant):
                if predicate(alert):
                    return alert
            time.sleep(0.2)
        raise AssertionError(f"no matching alert within {timeout}s; logs:\n{self.log_tails()}")

    def log_tails(self) -> str:
        return "\n".join(f"--- {name}\n{p.log_tail(15)}" for name, p in self.processes.processes.items())


@dataclass
class SmtpRecorder:
    """A real SMTP server for the stack's mail: it keeps every message it accepts."""

    host: str
    port: int
    messages: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def env(self) -> dict[str, str]:
        return {"SMTP_HOST": self.host, "SMTP_PORT": str(self.port)}

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append({"to": list(envelope.rcpt_tos), "message": parsed, "body": parsed.get_content()})
        return "250 OK"

    def received(self, recipient: str) -> list[dict]:
        """Mail to one recipient: tests tell theirs apart by address, the server lives for the session."""
        with self.lock:
            return [message for message in self.messages if recipient in message["to"]]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder("127.0.0.1", free_ports(1)[0])
    controller = Controller(recorder, hostname=recorder.host, port=recorder.port)
    controller.start()
    yield recorder
    controller.stop()


@pytest.fixture(scope="session")
def stack(kafka_broker, session_database_url, tmp_path_factory, smtp_server) -> Iterator[E2EStack]:
    work = tmp_path_factory.mktemp("stack")
    registry_url = session_database_url("registry")
    # One offset file for every process, so that moving it moves the whole system's time at once.
    clock_file = work / "clock-offset"
    clock_file.write_text("0")
    processes = LocalStack(
        work,
        kafka_broker.bootstrap_servers,
        {service: session_database_url(service) for service in SERVICES},
        registry_url,
        migrations(),
        extra_env={**STACK_ENV, "WERKBRUG_CLOCK_FILE": str(clock_file), **smtp_server.env},
    )
    try:
        processes.start(timeout=120)
        registry = Registry(Database(registry_url), cache_seconds=0)
        tenant = "noord-limburg"
        registry.create_tenant(tenant)
        keys = {
            "employer": registry.create_key(tenant, "employer", "emp-e2e"),
            "jobcoach": registry.create_key(tenant, "jobcoach", "jc-e2e"),
            "operator": registry.create_key(tenant, "operator", None),
        }
        yield E2EStack(processes, kafka_broker, registry, tenant, keys, tmp_path_factory.mktemp("scratch"), clock_file)
    finally:
        processes.stop()
    # After every end-to-end test of the session has run: the whole run's logs, in one look.
    if not kafka_broker.is_running():
        kafka_broker.restart(timeout=120)
    leaks = personal_data_in_logs(work / "logs", kafka_broker.bootstrap_servers)
    assert not leaks, "personal data in logs or dead-letter headers:\n" + "\n".join(leaks[:20])


@pytest.fixture(autouse=True)
def _broker_running(request, kafka_broker: KafkaBroker) -> None:
    # A test that kills the broker restarts it; if it failed half-way, the next test still gets one.
    if "stack" in request.fixturenames and not kafka_broker.is_running():
        kafka_broker.restart(timeout=120)


@dataclass
class WebhookReceiver:
    """A jobcoach's webhook endpoint: records what it is sent, and can be told to be down."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    status: int = 200
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                status = receiver.status
                if status == 200:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "json": json.loads(body)})
                else:
                    receiver.refused += 1
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/werkbrug"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@dataclass
class Workspace:
    """The workspace's web process, in front of the stack's APIs."""

    url: str
    process: object

    def log_tail(self) -> str:
        return self.process.log_tail(40)


@pytest.fixture(scope="session")
def workspace(stack: E2EStack, session_database_url) -> Iterator[Workspace]:
    import sys

    from services.workspace import store as workspace_store
    from shared.db import upgrade
    from shared.devstack.stack import _Process

    database_url = session_database_url("workspace")
    upgrade(workspace_store.MIGRATIONS, database_url)
    port = free_ports(1)[0]
    env = {
        **stack.processes._env("candidate"),
        "DATABASE_URL": database_url,
        "WERKBRUG_PORT": str(port),
        "WORKSPACE_SECRET_KEY": uuid.uuid4().hex * 2,
        "PROMETHEUS_MULTIPROC_DIR": str(stack.tmp_path / "workspace-metrics"),
        **{f"{name.upper()}_API_URL": stack.url(name) for name in SERVICES},
    }
    process = _Process(
        "workspace-web",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:shared.web.gunicorn_conf",
            "services.workspace.app:create_app()",
        ],
        env,
        stack.tmp_path / "workspace-web.log",
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if not process.alive():
            raise RuntimeError(f"workspace exited during start-up:\n{process.log_tail()}")
        time.sleep(0.2)
    else:
        raise RuntimeError(f"workspace not ready:\n{process.log_tail()}")
    yield Workspace(url, process)
    process.stop()
