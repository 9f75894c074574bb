"""What the API's safety costs: ``POST /vacancies`` per second with Idempotency-Key and rate limits on, the
same with both off, and a bare Flask endpoint, all under the same gunicorn settings
(``shared/web/gunicorn_conf.py``), side by side in one run; then a profile of the request path.

The three servers run at once (an idle sync worker costs nothing); the load generator sends to one at a
time, in 5 interleaved rounds, so that a passing burst of load elsewhere on the machine does not favour one
of them; the figure per server is the median of its rounds, and the ratio to the bare endpoint is also
given within each round. The cost of one durable commit on the same disk is measured alongside, since it
bounds any write path on one SQLite database. The vacancy service runs on SQLite files of
its own (the local default). Each request with keys on carries a fresh key, as a client's new request
would; the rate limit is set far above the load, so every request is counted but none refused.
"""

from __future__ import annotations

import cProfile
import http.client
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import alert_latency
from shared.db import Database, upgrade
from shared.devstack.broker import free_ports
from shared.registry import Registry

TENANT = "noord-limburg"
# The alert-latency benchmark's vacancy, with a description so that the body is a realistic size.
VACANCY = {**alert_latency.VACANCY, "description": "Planten verzorgen in een rustig team."}
PATH = f"/v1/tenants/{TENANT}/vacancies"
BODY = json.dumps(VACANCY).encode()
UNLIMITED = json.dumps({"employer": "10000000/minute"})


def _gunicorn(app: str, port: int, env: dict[str, str], log: Path, tree: Path | None = None) -> subprocess.Popen:
    """``app`` under the project's gunicorn settings, from this checkout or from ``tree`` (a baseline's)."""
    tree = tree or Path.cwd()
    command = [sys.executable, "-m", "gunicorn", "-c", "python:shared.web.gunicorn_conf", app]
    full_env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "WERKBRUG_PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.Popen(command, cwd=tree, env=full_env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _baseline_tree(revision: str, root: Path) -> Path:
    """The project as it was at ``revision``, unpacked beside the run, so that its servers can be measured
    in the same rounds as this checkout's."""
    tree = root / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers on port {port}")


def _post(port: int, headers: dict[str, str], with_key: bool) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sent = {**headers, "Content-Type": "application/json"}
    if with_key:
        sent["Idempotency-Key"] = uuid.uuid4().hex
    connection.request("POST", PATH, body=BODY, headers=sent)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def _load(port: int, headers: dict[str, str], with_key: bool, seconds: float, clients: int) -> float:
    """Requests per second answered 201 by ``clients`` concurrent senders over ``seconds``."""
    done = [0] * clients
    errors: list[int] = []
    stop = time.monotonic() + seconds

    def sender(index: int) -> None:
        while time.monotonic() < stop:
            status = _post(port, headers, with_key)
            if status == 201:
                done[index] += 1
            else:
                errors.append(status)

    started = time.monotonic()
    threads = [threading.Thread(target=sender, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"unexpected answers: {sorted(set(errors))}")
    return sum(done) / (time.monotonic() - started)


def _profile(root: Path, requests: int = 400) -> dict:
    """Where the time of one POST goes, in-process (Flask test client, same app, keys and limits on)."""
    from services.vacancy import app as vacancy_app
    from services.vacancy import config as vacancy_config
    from shared.web.app import ServiceContext

    url = f"sqlite:///{root / 'profile-vacancy.db'}"
    upgrade(Path("services/vacancy/migrations"), url)
    registry = Registry(Database(f"sqlite:///{root / 'profile-registry.db'}"))
    registry.migrate()
    registry.create_tenant(TENANT)
    key = registry.create_key(TENANT, "employer", "emp-bench")
    results = {}
    for label, limits, with_key in (("on", "true", True), ("off", "false", False)):
        settings = vacancy_config.load(
            {"DATABASE_URL": url, "RATELIMIT_ENABLED": limits, "RATELIMIT_DEFAULTS": UNLIMITED}
        )
        client = vacancy_app.create_app(ServiceContext(settings, Database(url), registry)).test_client()
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(20):  # warm caches: key lookups, compiled statements
            client.post(PATH, json=VACANCY, headers=headers)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(requests):
            sent = {**headers, "Idempotency-Key": uuid.uuid4().hex} if with_key else headers
            assert client.post(PATH, json=VACANCY, headers=sent).status_code == 201
        profiler.disable()
        elapsed = time.perf_counter() - started
        stats = pstats.Stats(profiler)
        results[label] = {"ms_per_request": round(1000 * elapsed / requests, 3), **_breakdown(stats, requests)}
    return results


# Parts of the request path, each a function whose cumulative time is reported per request.
_PARTS = {
    "whole request (test client)": ("werkzeug/test.py", "open"),
    "rate limit: counting (before the view)": ("shared/web/ratelimit.py", "_count_request"),
    "rate limit: headers": ("shared/web/ratelimit.py", "_rate_limit_headers"),
    "idempotency: request fingerprint": ("shared/web/idempotency.py", "request_fingerprint"),
    # On SQLite a lock on a byte of a file and a read; elsewhere a transaction of its own.
    "idempotency: claim": ("shared/web/idempotency.py", "_claim"),
    "idempotency: answer stored (in the effect's transaction)": ("shared/idempotency.py", "complete"),
    # The effect's durable commit runs here under a key (with both off it runs inside the command's view).
    "idempotency: answer stored, then the effect's commit": ("shared/web/idempotency.py", "_settle"),
    "authentication (cached key lookup)": ("shared/registry.py", "authenticate"),
    "body parsing and validation (webargs, marshmallow)": ("webargs/core.py", "_load_location_data"),
    "the command: insert vacancy and outbox event": ("services/vacancy/commands.py", "post_vacancy"),
    "answer serialisation (marshmallow dump, JSON)": ("marshmallow/schema.py", "dump"),
    "database commits": ("sqlalchemy/orm/session.py", "commit"),
    "metrics": ("prometheus_client/metrics.py", "inc"),
}


def _breakdown(stats: pstats.Stats, requests: int) -> dict:
    found: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
        for part, (suffix, name) in _PARTS.items():
            if function == name and filename.endswith(suffix):
                found[part] = found.get(part, 0.0) + cumulative
    return {part: round(1000 * seconds / requests, 3) for part, seconds in found.items()}


def _durable_commit_ms(root: Path, commits: int = 200) -> float:
    """What one durable SQLite commit costs on this disk (WAL, ``synchronous=FULL``, as the services write):
    one writer holds the database's lock through its commit, so no write path can beat 1 / this."""
    import sqlite3

    connection = sqlite3.connect(root / "commit-probe.db", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE probe (n INTEGER)")
        started = time.perf_counter()
        for number in range(commits):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO probe VALUES (?)", (number,))
            connection.execute("COMMIT")
        return 1000 * (time.perf_counter() - started) / commits
    finally:
        connection.close()


def run(rounds: int | None = None, seconds: float = 6.0, clients: int = 4, baseline: str | None = None) -> dict:
    """``baseline`` (or ``BENCH_API_THROUGHPUT_BASELINE``), a git revision, adds that revision's vacancy
    service, keys and limits on and off, to every round: before and after a change, side by side.
    ``rounds`` (or ``BENCH_API_THROUGHPUT_ROUNDS``, 5 by default): more of them to tell a change of a
    few percent from the noise of a shared machine."""
    baseline = baseline or os.environ.get("BENCH_API_THROUGHPUT_BASELINE") or None
    rounds = rounds or int(os.environ.get("BENCH_API_THROUGHPUT_ROUNDS") or 5)
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-api-") as scratch:
        root = Path(scratch)
        baseline_tree = _baseline_tree(baseline, root) if baseline else None
        registry_url = f"sqlite:///{root / 'registry.db'}"
        registry = Registry(Database(registry_url))
        registry.migrate()
        registry.create_tenant(TENANT)
        headers = {"Authorization": f"Bearer {registry.create_key(TENANT, 'employer', 'emp-bench')}"}
        # A server's label ends in "on" when it gets keys and limits.
        variants = {"on": None, "off": None}
        if baseline_tree is not None:
            variants.update({"baseline-on": baseline_tree, "baseline-off": baseline_tree})
        ports = dict(zip((*variants, "bare"), free_ports(len(variants) + 1), strict=True))
        servers = []
        try:
            for label, tree in variants.items():
                url = f"sqlite:///{root / f'vacancy-{label}.db'}"
                upgrade((tree or Path.cwd()) / "services/vacancy/migrations", url)
                env = {
                    "DATABASE_URL": url,
                    "REGISTRY_DATABASE_URL": registry_url,
                    "RATELIMIT_ENABLED": "true" if label.endswith("on") else "false",
                    "RATELIMIT_DEFAULTS": UNLIMITED,
                }
                log = root / f"{label}.log"
                servers.append(_gunicorn("services.vacancy.app:create_app()", ports[label], env, log, tree))
            servers.append(_gunicorn("bench.bare_app:create_app()", ports["bare"], {}, root / "bare.log"))
            for port in ports.values():
                _wait_for(port)
            for label, port in ports.items():  # warm up: imports, first connections, caches
                _load(port, headers, label.endswith("on"), 1.0, clients)
            figures: dict[str, list[float]] = {label: [] for label in ports}
            for _ in range(rounds):
                for label, port in ports.items():
                    figures[label].append(_load(port, headers, label.endswith("on"), seconds, clients))
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=30)
        median = {label: statistics.median(values) for label, values in figures.items()}
        # A passing burst elsewhere slows one round of all three alike more than it slows one server across
        # rounds, so the ratio within each round is the steadier figure.
        within_round = [on / bare for on, bare in zip(figures["on"], figures["bare"], strict=True)]
        commit_ms = _durable_commit_ms(root)
        profile = _profile(root)
    return {
        "workers": int(os.environ.get("WEB_CONCURRENCY", "2")),
        "clients": clients,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "requests_per_second": {label: round(value, 1) for label, value in median.items()},
        "rounds_requests_per_second": {label: [round(v, 1) for v in values] for label, values in figures.items()},
        "on_to_bare": round(median["on"] / median["bare"], 3),
        "off_to_bare": round(median["off"] / median["bare"], 3),
        "lost_to_keys_and_limits": round(1 - median["on"] / median["off"], 3),
        "on_to_bare_within_rounds": [round(ratio, 3) for ratio in within_round],
        "on_to_bare_median_within_rounds": round(statistics.median(within_round), 3),
        "durable_commit_ms": round(commit_ms, 2),
        "one_writer_ceiling_requests_per_second": round(1000 / commit_ms, 1),
        "profile_ms_per_request": profile,
        **(_against_baseline(baseline, median, figures) if baseline else {}),
    }


def _against_baseline(revision: str, median: dict[str, float], figures: dict[str, list[float]]) -> dict:
    commit = subprocess.run(["git", "rev-parse", revision], check=True, capture_output=True, text=True).stdout
    return {
        "baseline": {"revision": revision, "commit": commit.strip()},
        "on_to_baseline_on": round(median["on"] / median["baseline-on"], 3),
        "off_to_baseline_off": round(median["off"] / median["baseline-off"], 3),
        "baseline_on_to_bare": round(median["baseline-on"] / median["bare"], 3),
        "baseline_lost_to_keys_and_limits": round(1 - median["baseline-on"] / median["baseline-off"], 3),
        "on_to_baseline_on_within_rounds": [
            round(on / before, 3) for on, before in zip(figures["on"], figures["baseline-on"], strict=True)
        ],
    }
