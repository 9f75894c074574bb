"""Server time of the workspace's Vandaag page with 200 alerts in the inbox, beside the same data fetched
straight from the notification API, so that what the workspace adds (session, key, rendering) is visible.

The notification web process and the workspace run as real gunicorn processes (two workers each, as
``make run`` starts them) on SQLite files of the benchmark's own. The alerts are stored the way the
notification worker stores them; Kafka is not needed for reading an inbox. Times are taken on loopback
from just before the request to the last byte of the answer.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import requests

from services.notification import store as notification_store
from services.workspace import store as workspace_store
from shared.db import Database, upgrade, utcnow
from shared.devstack.broker import free_ports
from shared.devstack.stack import REPO_ROOT
from shared.registry import Registry

TENANT = "noord-limburg"
JOBCOACH = "jc-bench"
PASSWORD = "een lange zin als wachtwoord"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _summary(samples: list[float]) -> dict:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(_percentile(samples, 0.95) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def _seed_alerts(url: str, count: int) -> None:
    now = utcnow()
    with Database(url).session() as session:
        for number in range(count):
            created = now - timedelta(minutes=count - number)
            notification_store.insert_alert(
                session,
                TENANT,
                {
                    "id": str(uuid.uuid4()),
                    "jobcoach_id": JOBCOACH,
                    "type": "placement_at_risk" if number % 3 == 0 else "match_proposed",
                    "subject": f"bench-{number}",
                    "episode": 1,
                    "candidate_id": f"cand-{number % 40}",
                    "vacancy_id": f"vac-{number % 25}",
                    "placement_id": f"pl-{number}" if number % 3 == 0 else None,
                    "message": "Een plaatsing loopt risico (risicoscore 72%). Neem contact op met je kandidaat.",
                    "details": {
                        "score": 0.72,
                        "reasons": [
                            {"feature": "low_wellbeing", "label": "Welbevinden laag", "signals": []},
                            {"feature": "work_signals", "label": "Signalen op het werk", "signals": ["missed_shift"]},
                        ],
                    },
                    "source_event_id": str(uuid.uuid4()),
                    "created_at": created,
                    # One in ten already seen, so that both parts of the page have content.
                    "acknowledged_at": created + timedelta(minutes=1) if number % 10 == 0 else None,
                },
            )


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up:\n{log.read_text()[-2000:]}")


def _timed(call, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def run(alerts: int = 200, rounds: int = 200) -> dict:
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-ws-") as scratch:
        root = Path(scratch)
        registry_url = f"sqlite:///{root / 'registry.db'}"
        notification_url = f"sqlite:///{root / 'notification.db'}"
        workspace_url = f"sqlite:///{root / 'workspace.db'}"
        registry = Registry(Database(registry_url))
        registry.migrate()
        registry.create_tenant(TENANT)
        registry.create_person(TENANT, "jobcoach", JOBCOACH, "jobcoach@bench.test", PASSWORD)
        key = registry.create_key(TENANT, "jobcoach", JOBCOACH)
        upgrade(notification_store.MIGRATIONS, notification_url)
        upgrade(workspace_store.MIGRATIONS, workspace_url)
        _seed_alerts(notification_url, alerts)

        api_port, web_port = free_ports(2)
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PROMETHEUS_MULTIPROC_DIR", "WERKBRUG_", "DATABASE_URL"))
        }
        common = {**base, "REGISTRY_DATABASE_URL": registry_url, "WERKBRUG_VAR_DIR": str(root), "WEB_CONCURRENCY": "2"}
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:shared.web.gunicorn_conf"]
        api_env = {
            **common,
            "DATABASE_URL": notification_url,
            "WERKBRUG_PORT": str(api_port),
            "PROMETHEUS_MULTIPROC_DIR": str(root / "m-api"),
        }
        web_env = {
            **common,
            "DATABASE_URL": workspace_url,
            "WERKBRUG_PORT": str(web_port),
            "PROMETHEUS_MULTIPROC_DIR": str(root / "m-web"),
            "NOTIFICATION_API_URL": f"http://127.0.0.1:{api_port}",
        }
        api = _start([*gunicorn, "services.notification.app:create_app()"], api_env, root / "api.log")
        web = _start([*gunicorn, "services.workspace.app:create_app()"], web_env, root / "web.log")
        try:
            api_base, web_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{web_port}"
            _wait(f"{api_base}/healthz", api, root / "api.log")
            _wait(f"{web_base}/healthz", web, root / "web.log")
            browser = requests.Session()
            token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{web_base}/sign-in").text).group(1)
            signed_in = browser.post(
                f"{web_base}/sign-in",
                data={"email": "jobcoach@bench.test", "password": PASSWORD, "csrf_token": token},
                allow_redirects=False,
            )
            assert signed_in.status_code == 302, signed_in.text

            def page() -> None:
                response = browser.get(f"{web_base}/")
                assert response.status_code == 200 and "Nieuwe meldingen" in response.text

            direct = requests.Session()
            headers = {"Authorization": f"Bearer {key}"}
            alerts_url = f"{api_base}/v1/tenants/{TENANT}/alerts"

            def straight() -> None:
                # The same two reads the page makes: the first page of unread alerts, the ten last seen.
                for params in ({"unread": "true", "page_size": 50}, {"unread": "false", "page_size": 10}):
                    assert direct.get(alerts_url, params=params, headers=headers).status_code == 200

            for _ in range(20):  # warm both workers of each process
                page()
                straight()
            page_samples = _timed(page, rounds)
            api_samples = _timed(straight, rounds)
        finally:
            for process in (web, api):
                process.terminate()
                process.wait(15)
    page_figures = _summary(page_samples)
    api_figures = _summary(api_samples)
    return {
        "alerts": alerts,
        "rounds": rounds,
        "vandaag_page": page_figures,
        "same_data_straight_from_api": api_figures,
        "workspace_overhead_p50_ms": round(page_figures["p50_ms"] - api_figures["p50_ms"], 1),
        "target_p95_ms": 150,
        "caseload_page": "not measured: GET /caseload and GET /candidates do not exist yet",
    }
