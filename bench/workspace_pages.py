"""Server time of the workspace's Vandaag page with 200 alerts in the inbox, and of the caseload page of a
jobcoach with 50 candidates, each beside the same data fetched straight from the APIs, so that what the
workspace adds (session, key, rendering) is visible.

The notification, candidate and matching web processes and the workspace run as real gunicorn processes
(two workers each, as ``make run`` starts them) on SQLite files of the benchmark's own. Candidates are
registered through the candidate API; the alerts and matching's caseload rows are stored the way the
workers store them, so Kafka is not needed for reading. Times are taken on loopback from just before the
request to the last byte of the answer.
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
from datetime import date, timedelta
from pathlib import Path

import requests

from services.candidate import store as candidate_store
from services.matching import store as matching_store
from services.matching.caseload import store as caseload_store
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


def _seed_caseload(candidate_api: str, key: str, matching_url: str, count: int) -> None:
    """``count`` candidates registered as the jobcoach, and matching's caseload rows for them: one in five
    out of sight, so that every kind of chip is drawn."""
    ids = []
    for number in range(count):
        body = {
            "display_name": f"Kandidaat {number:02d}",
            "talents": ["planten verzorgen"],
            "hours_min": 12,
            "hours_max": 24,
            "ladder_step": 3,
            "location": {"postcode": "5912"},
            "consent": {"matching": True, "share_with_employers": True},
        }
        response = requests.post(
            f"{candidate_api}/v1/tenants/{TENANT}/candidates",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    today = date.today()
    with Database(matching_url).session() as session:
        for number, candidate_id in enumerate(ids):
            last_contact = today - timedelta(days=45 if number % 5 == 0 else number % 20)
            caseload_store.record_candidate(session, TENANT, candidate_id, JOBCOACH, last_contact)


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


def run(alerts: int = 200, candidates: int = 50, rounds: int = 200) -> dict:
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-ws-") as scratch:
        root = Path(scratch)
        registry_url = f"sqlite:///{root / 'registry.db'}"
        urls = {name: f"sqlite:///{root / f'{name}.db'}" for name in ("notification", "candidate", "matching")}
        workspace_url = f"sqlite:///{root / 'workspace.db'}"
        registry = Registry(Database(registry_url))
        registry.migrate()
        registry.create_tenant(TENANT)
        registry.create_person(TENANT, "jobcoach", JOBCOACH, "jobcoach@bench.test", PASSWORD)
        key = registry.create_key(TENANT, "jobcoach", JOBCOACH)
        for name, store in (
            ("notification", notification_store),
            ("candidate", candidate_store),
            ("matching", matching_store),
        ):
            upgrade(store.MIGRATIONS, urls[name])
        upgrade(workspace_store.MIGRATIONS, workspace_url)
        _seed_alerts(urls["notification"], alerts)

        ports = dict(zip(("notification", "candidate", "matching", "web"), free_ports(4), strict=True))
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PROMETHEUS_MULTIPROC_DIR", "WERKBRUG_", "DATABASE_URL"))
        }
        common = {
            **base,
            "REGISTRY_DATABASE_URL": registry_url,
            "WERKBRUG_VAR_DIR": str(root),
            "WEB_CONCURRENCY": "2",
            # Far above the load: every request is counted as usual, none is refused (the default for a
            # jobcoach, 300 a minute, is less than the benchmark's pace).
            "RATELIMIT_DEFAULTS": '{"jobcoach": "100000/minute"}',
        }
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:shared.web.gunicorn_conf"]
        processes: dict[str, subprocess.Popen] = {}
        try:
            for name in ("notification", "candidate", "matching"):
                env = {
                    **common,
                    "DATABASE_URL": urls[name],
                    "WERKBRUG_PORT": str(ports[name]),
                    "PROMETHEUS_MULTIPROC_DIR": str(root / f"m-{name}"),
                }
                processes[name] = _start([*gunicorn, f"services.{name}.app:create_app()"], env, root / f"{name}.log")
            web_env = {
                **common,
                "DATABASE_URL": workspace_url,
                "WERKBRUG_PORT": str(ports["web"]),
                "PROMETHEUS_MULTIPROC_DIR": str(root / "m-web"),
                **{f"{name.upper()}_API_URL": bases[name] for name in ("notification", "candidate", "matching")},
            }
            processes["web"] = _start([*gunicorn, "services.workspace.app:create_app()"], web_env, root / "web.log")
            for name, process in processes.items():
                _wait(f"{bases[name]}/healthz", process, root / f"{name}.log")
            _seed_caseload(bases["candidate"], key, urls["matching"], candidates)
            web_base = bases["web"]
            browser = requests.Session()
            token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{web_base}/sign-in").text).group(1)
            signed_in = browser.post(
                f"{web_base}/sign-in",
                data={"email": "jobcoach@bench.test", "password": PASSWORD, "csrf_token": token},
                allow_redirects=False,
            )
            assert signed_in.status_code == 302, signed_in.text
            direct = requests.Session()
            headers = {"Authorization": f"Bearer {key}"}

            def today_page() -> None:
                response = browser.get(f"{web_base}/")
                assert response.status_code == 200 and "Nieuwe meldingen" in response.text

            def today_straight() -> None:
                # The same two reads the page makes: the first page of unread alerts, the ten last seen.
                alerts_url = f"{bases['notification']}/v1/tenants/{TENANT}/alerts"
                for params in ({"unread": "true", "page_size": 50}, {"unread": "false", "page_size": 10}):
                    assert direct.get(alerts_url, params=params, headers=headers).status_code == 200

            def caseload_page() -> None:
                response = browser.get(f"{web_base}/caseload")
                assert response.status_code == 200 and "Uit beeld" in response.text and "Kandidaat 49" in response.text

            def caseload_straight() -> None:
                # The page's three reads, one after another here (the page asks all three side by side).
                for url, params in (
                    (f"{bases['candidate']}/v1/tenants/{TENANT}/candidates", {"page_size": 100}),
                    (f"{bases['matching']}/v1/tenants/{TENANT}/caseload", {"page_size": 100}),
                    (f"{bases['matching']}/v1/tenants/{TENANT}/placements", {"status": "active", "page_size": 100}),
                ):
                    assert direct.get(url, params=params, headers=headers).status_code == 200

            for _ in range(20):  # warm both workers of each process
                today_page()
                today_straight()
                caseload_page()
                caseload_straight()
            samples = {
                "vandaag_page": _timed(today_page, rounds),
                "vandaag_straight": _timed(today_straight, rounds),
                "caseload_page": _timed(caseload_page, rounds),
                "caseload_straight": _timed(caseload_straight, rounds),
            }
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(15)
    figures = {name: _summary(values) for name, values in samples.items()}
    return {
        "alerts": alerts,
        "candidates": candidates,
        "rounds": rounds,
        "vandaag_page": figures["vandaag_page"],
        "same_data_straight_from_api": figures["vandaag_straight"],
        "workspace_overhead_p50_ms": round(
            figures["vandaag_page"]["p50_ms"] - figures["vandaag_straight"]["p50_ms"], 1
        ),
        "caseload_page": figures["caseload_page"],
        "caseload_data_straight_from_apis": figures["caseload_straight"],
        "caseload_overhead_p50_ms": round(
            figures["caseload_page"]["p50_ms"] - figures["caseload_straight"]["p50_ms"], 1
        ),
        "target_p95_ms": 150,
    }
