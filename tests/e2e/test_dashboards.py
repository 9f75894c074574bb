"""The Grafana dashboards and the alert rules, proven against a real Prometheus scraping the real processes.

A ``prometheus`` binary scrapes every web and worker process of the running stack once a second, with the
same ``service``/``process`` labels and alert rules as in production. After a candidate, a matching
vacancy and the resulting alert have gone through the stack, every query of every dashboard panel must
return data, and every alert rule must evaluate without error. Without the binary the test skips
locally and fails in CI (``apt-get install prometheus``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"

SERVICES = ("candidate", "vacancy", "matching", "notification")
PROCESSES = ("web", "worker")

# How Grafana would expand its built-in variables for a short time range; $tenant is the stack's tenant.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval": "15s"}

# A candidate and a vacancy that fit each other on talents, support, hours, ladder step and distance.
CANDIDATE = {
    "display_name": "Sam",
    "talents": ["planten verzorgen", "nauwkeurig werken"],
    "preferences": ["buiten werken"],
    "support_needs": [
        {"code": "quiet_workplace", "level": "essential"},
        {"code": "work_buddy", "level": "preferred"},
    ],
    "hours_min": 12,
    "hours_max": 24,
    "ladder_step": 3,
    "location": {"postcode": "5912", "lat": 51.37, "lon": 6.17, "max_travel_km": 15},
    "consent": {"matching": True, "share_with_employers": True},
    "target_group_register": True,
}
VACANCY = {
    "title": "Medewerker groenonderhoud",
    "description": "Je helpt ons team met het onderhoud van parken en plantsoenen in Venlo.",
    "tasks": ["planten verzorgen", "onkruid wieden"],
    "skills": ["groenonderhoud", "nauwkeurig werken"],
    "supports_offered": ["quiet_workplace", "work_buddy", "fixed_supervisor"],
    "hours_min": 16,
    "hours_max": 24,
    "kind": "work_experience",
    "positions": 2,
    "location": {"postcode": "5911", "lat": 51.37, "lon": 6.16},
    "banenafspraak": True,
}

READY_TIMEOUT = 30.0
TARGETS_TIMEOUT = 60.0
ALERT_TIMEOUT = 90.0
PANELS_TIMEOUT = 60.0
RULES_TIMEOUT = 30.0

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(480)]


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("CI", "").lower() not in {"", "0", "false"}:
            pytest.fail("the prometheus binary is missing; CI has to install prometheus")
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rule_files() -> list[Path]:
    files = sorted(p for p in RULES_DIR.glob("*.yml") if not p.name.endswith(".test.yml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def _write_config(path: Path, targets: list[dict[str, str]]) -> None:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in _rule_files()],
        "scrape_configs": [
            {
                # The job name the alert rules select on.
                "job_name": "werkbrug",
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [t["target"]], "labels": {"service": t["service"], "process": t["process"]}}
                    for t in targets
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _log_tail(log_file: Path, lines: int = 40) -> str:
    if not log_file.exists():
        return "(no prometheus log)"
    return "\n".join(log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def _running_prometheus(workdir: Path, targets: list[dict[str, str]]) -> Iterator[tuple[str, Path]]:
    binary = _prometheus_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    log_file = workdir / "prometheus.log"
    _write_config(config_file, targets)
    port = _free_port()
    with log_file.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{_log_tail(log_file)}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base_url}/-/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus was not ready within {READY_TIMEOUT}s:\n{_log_tail(log_file)}")
            time.sleep(0.5)
        yield base_url, log_file
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _api(base_url: str, path: str, **params: str) -> Any:
    response = requests.get(f"{base_url}/api/v1/{path}", params=params, timeout=10)
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise AssertionError(f"{path} {params}: HTTP {response.status_code} {body.get('error', body)}")
    return body["data"]


def _wait_for(
    what: str, timeout: float, check: Callable[[], list[str]], interval: float = 1.0, log_file: Path | None = None
) -> None:
    """Retry ``check`` (which returns what is still wrong) until it returns nothing or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        problems = check()
        if not problems:
            return
        if time.monotonic() > deadline:
            message = f"{what} after {timeout:.0f}s:\n  " + "\n  ".join(problems)
            if log_file is not None:
                message += f"\nprometheus log:\n{_log_tail(log_file)}"
            pytest.fail(message)
        time.sleep(interval)


def _targets_not_up(base_url: str, expected: set[tuple[str, str]]) -> Callable[[], list[str]]:
    def check() -> list[str]:
        active = _api(base_url, "targets", state="active")["activeTargets"]
        active = [t for t in active if t["labels"].get("job") == "werkbrug"]
        seen = {(t["labels"]["service"], t["labels"]["process"]) for t in active}
        problems = [f"{service} {process}: not scraped at all" for service, process in sorted(expected - seen)]
        problems += [
            f"{t['labels']['service']} {t['labels']['process']} ({t['scrapeUrl']}): {t['health']} "
            f"{t.get('lastError') or ''}".rstrip()
            for t in active
            if t["health"] != "up"
        ]
        return problems

    return check


def _panel_queries(tenant: str) -> list[tuple[str, str, str]]:
    """(panel title, refId, expression with the Grafana variables expanded) for every dashboard query."""
    panels = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            panels.append(panel)
            panels.extend(panel.get("panels", []))
    variables = {**GRAFANA_INTERVALS, "${tenant}": tenant, "$tenant": tenant}
    queries = []
    for panel in panels:
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets", []):
            expr = (target.get("expr") or "").strip()
            if not expr or target.get("hide"):
                continue
            for variable, value in variables.items():
                expr = expr.replace(variable, value)
            queries.append((panel.get("title", str(panel.get("id"))), target.get("refId", "?"), expr))
    assert queries, "the dashboard has no queries"
    return queries


def _empty_panels(base_url: str, queries: list[tuple[str, str, str]]) -> Callable[[], list[str]]:
    def check() -> list[str]:
        problems = []
        for title, ref_id, expr in queries:
            try:
                data = _api(base_url, "query", query=expr)
            except AssertionError as exc:
                problems.append(f"{title} [{ref_id}]: query failed: {exc}")
                continue
            # A series whose value is NaN (a quantile over a zero rate) still counts: the panel draws it.
            if data["resultType"] in {"vector", "matrix"} and not data["result"]:
                problems.append(f"{title} [{ref_id}]: no data for {expr}")
        return problems

    return check


def _counters_below_traffic(base_url: str, tenant: str) -> Callable[[], list[str]]:
    # What the one candidate, vacancy and alert of this test must at least have added.
    minimums = {
        f'sum(werkbrug_candidates_registered_total{{tenant="{tenant}"}})': 1,
        f'sum(werkbrug_vacancies_posted_total{{tenant="{tenant}"}})': 1,
        f'sum(werkbrug_matches_proposed_total{{tenant="{tenant}"}})': 1,
        f'sum(werkbrug_alerts_created_total{{tenant="{tenant}", type="match_proposed"}})': 1,
        'sum(werkbrug_events_consumed_total{outcome="handled"})': 3,
        "sum(werkbrug_outbox_published_total)": 3,
        "sum(werkbrug_alert_latency_seconds_count)": 1,
        "sum(werkbrug_alert_origin_latency_seconds_count)": 1,
    }

    def check() -> list[str]:
        problems = []
        for expr, minimum in minimums.items():
            result = _api(base_url, "query", query=expr)["result"]
            value = float(result[0]["value"][1]) if result else None
            if value is None or value < minimum:
                problems.append(f"{expr} = {value}, expected at least {minimum}")
        return problems

    return check


def _unhealthy_rules(base_url: str) -> Callable[[], list[str]]:
    def check() -> list[str]:
        groups = _api(base_url, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if not rules:
            return ["no rules loaded"]
        return [
            f"{rule['name']}: {rule['health']} {rule.get('lastError') or ''}".rstrip()
            for rule in rules
            if rule["health"] != "ok"
        ]

    return check


def test_every_dashboard_panel_has_data_from_a_real_scrape(stack: Any) -> None:
    _prometheus_binary()
    targets = stack.metrics_targets()
    expected = {(service, process) for service in SERVICES for process in PROCESSES}
    assert {(t["service"], t["process"]) for t in targets} == expected, targets

    # Prometheus runs before the traffic so that the counters are seen rising, not only at their end value.
    with _running_prometheus(stack.tmp_path / "prometheus", targets) as (base_url, log_file):
        _wait_for("targets not up", TARGETS_TIMEOUT, _targets_not_up(base_url, expected), log_file=log_file)

        candidate_id = stack.post_candidate(CANDIDATE)
        stack.post_vacancy(VACANCY)
        stack.wait_for_alert(
            stack.keys["jobcoach"],
            lambda alert: alert.get("type") == "match_proposed" and str(candidate_id) in json.dumps(alert),
            ALERT_TIMEOUT,
        )

        _wait_for(
            "counters do not reflect the traffic", PANELS_TIMEOUT, _counters_below_traffic(base_url, stack.tenant)
        )
        _wait_for(
            "dashboard panels without data",
            PANELS_TIMEOUT,
            _empty_panels(base_url, _panel_queries(stack.tenant)),
            interval=2.0,
        )
        _wait_for("alert rules that do not evaluate", RULES_TIMEOUT, _unhealthy_rules(base_url))
