"""The first requests after the matching web process restarts: now (traffic once ``/readyz`` is green,
after the warm-up) against before (traffic once the process answers, each worker's first request waiting
for its index).

One region's read models are filled on SQLite the way the worker fills them (5,000 open vacancies and
2,000 candidates by default, the synthetic tenant of :mod:`bench.matching_speed`; ``BENCH_COLD_START_VACANCIES``
and ``BENCH_COLD_START_CANDIDATES`` for 20,000 and 10,000). Then the matching web process is started on
that database under gunicorn with the deployment's settings (2 workers, ``WEB_TIMEOUT=90``,
``MATCHING_INDEX_MEMORY_MB=384``, ``MATCHING_COLD_WAIT_SECONDS=2``), once per mode and round, the modes
taking turns (``BENCH_COLD_START_ROUNDS``, default 2):

- ``ready_first`` (now): requests start once ``/readyz`` is green, as a load balancer sends them;
- ``early`` (now, sent traffic before it is ready): requests start once the first worker answers
  ``/healthz``, so a worker whose index is not built yet makes each wait at most
  ``MATCHING_COLD_WAIT_SECONDS`` and then answers 503 with ``Retry-After``;
- ``before``: the same, with ``MATCHING_COLD_WAIT_SECONDS`` long enough for any build, so that each
  worker's first requests wait for its index, as they did before the warm-up: then ``/readyz`` was green
  once a worker answered and its first request built the index. No setting turns the warm-up off; a
  request now waits for the build the warm-up started instead of running it itself, the same read and fit.

Traffic starts at ``/healthz`` rather than at the first accepted connection, because a connection
accepted by gunicorn's master waits until a worker has loaded the app (tens of seconds on a busy machine),
which no load balancer sent traffic into, before or now; that time is reported apart (listening,
answering).

Each mode sends 50 ``GET /v1/tenants/{t}/candidates/{id}/matches`` from two clients at once (one per
gunicorn worker, each client's requests one after another, a 503 not retried), and reports the time from
start to listening, answering, ready and the first 200; the first request of each client (sent together,
so one reaches each worker); p50/p95/max of all 50; the 503s; and each worker's resident memory at the
end (``/proc``: now and peak).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.matching_speed import (
    REPO_ROOT,
    TENANT,
    latency_summary,
    process_env,
    scratch_matching,
    tenant_payloads,
)

VACANCIES = 5_000
CANDIDATES = 2_000
ROUNDS = 2
REQUESTS = 50
# One client per gunicorn worker: requests sent together to idle sync workers go one to each.
CLIENTS = 2
# As k8s/base/matching.yaml deploys the matching web process.
DEPLOYED = {
    "WEB_CONCURRENCY": "2",
    "WEB_TIMEOUT": "90",
    "MATCHING_INDEX_MEMORY_MB": "384",
    "MATCHING_COLD_WAIT_SECONDS": "2",
}
# Long enough for any build measured here; below WEB_TIMEOUT, so a waiting request is never killed.
WAIT_FOR_BUILD_S = "85"
# What each mode waits for before its first request (``/readyz`` or ``/healthz`` green), and its settings.
MODES: dict[str, tuple[str, dict[str, str]]] = {
    "ready_first": ("readyz", {}),
    "early": ("healthz", {}),
    "before": ("healthz", {"MATCHING_COLD_WAIT_SECONDS": WAIT_FOR_BUILD_S}),
}
START_LIMIT_S = 300.0
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent (seconds after the process started), how long it took, and its status."""

    client: int
    sent_s: float
    seconds: float
    status: int
    retry_after: str | None = None


def summarise(answers: Sequence[Answer]) -> dict:
    """The figures of one restart's requests: the first of each client, all of them, and the refusals."""
    by_client: dict[int, list[Answer]] = {}
    for answer in sorted(answers, key=lambda a: a.sent_s):
        by_client.setdefault(answer.client, []).append(answer)
    firsts = [sent[0] for sent in by_client.values()]
    slowest = max(answers, key=lambda a: a.seconds)
    refused = [answer for answer in answers if answer.status == 503]
    ok = [answer.sent_s + answer.seconds for answer in answers if answer.status == 200]
    return {
        "first_request_ms": round(max(answer.seconds for answer in firsts) * 1000, 1),
        **latency_summary([answer.seconds for answer in answers]),
        "status_200": sum(1 for answer in answers if answer.status == 200),
        "status_503": len(refused),
        "status_503_with_retry_after": sum(1 for answer in refused if answer.retry_after),
        "retry_after_s": sorted({answer.retry_after for answer in refused if answer.retry_after}),
        "other_status": sorted({answer.status for answer in answers} - {200, 503}),
        "first_200_s": round(min(ok), 2) if ok else None,
        # Which request was slowest: a client's first, or one after its first answers (1 is the first).
        "slowest_nth_of_its_client": by_client[slowest.client].index(slowest) + 1,
    }


def median_of(runs: Sequence[dict], key: str) -> float | None:
    """The median of one figure over the runs that have it."""
    values = [run[key] for run in runs if run.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def ratio(before: float | None, now: float | None) -> float | None:
    """How many times ``now`` goes into ``before`` (None when either is missing or now is 0)."""
    return round(before / now, 1) if before is not None and now else None


# --------------------------------------------------------------------------------------------------------
# The process


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(server: subprocess.Popen, log: Path, what: str, check) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while not check():
        if server.poll() is not None:
            raise RuntimeError(f"the matching web app exited:\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the matching web app was not {what} after {START_LIMIT_S} s")
        time.sleep(0.01)


def _green(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(word) for word in children.read().split()]


def _resident_mib(pid: int) -> dict[str, float]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM), in MiB."""
    figures = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": figures["VmRSS"], "peak_rss_mib": figures["VmHWM"]}


def _index_fits(base: str) -> dict:
    """What the workers' own metrics say of their initial builds (the fit, after the rows were read)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    found: dict = {}
    for family in text_string_to_metric_families(text):
        if family.name != "werkbrug_matching_index_build_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("kind") == "initial" and sample.name.endswith(("_sum", "_count")):
                found[sample.name.rsplit("_", 1)[1]] = sample.value
    count = int(found.get("count", 0))
    return {"builds": count, "mean_fit_s": round(found["sum"] / count, 2) if count else None}


def restart(mode: str, env: dict[str, str], port: int, root: Path, candidate_ids: Sequence[str], headers: dict) -> dict:
    """Start the matching web process in ``mode``, send it its first requests, measure, and stop it."""
    waits_for, overrides = MODES[mode]
    base = f"http://127.0.0.1:{port}"
    log = root / f"matching-web-{mode}.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "python:shared.web.gunicorn_conf"]
    command.append("services.matching.app:create_app()")
    with log.open("wb") as out:
        started = time.monotonic()
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env | overrides, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait(server, log, "listening", lambda: _listening(port))
        listening_s = time.monotonic() - started
        # The first worker to load the app answers /healthz: what /readyz promised before the warm-up.
        _wait(server, log, "answering", lambda: _green(f"{base}/healthz"))
        answering_s = time.monotonic() - started
        ready_s = None
        if waits_for == "readyz":
            _wait(server, log, "ready", lambda: _green(f"{base}/readyz"))
            ready_s = round(time.monotonic() - started, 2)

        def client(number: int) -> list[Answer]:
            session = requests.Session()
            answers = []
            for candidate_id in candidate_ids[number::CLIENTS]:
                sent = time.monotonic()
                url = f"{base}/v1/tenants/{TENANT}/candidates/{candidate_id}/matches"
                response = session.get(url, params={"limit": 10}, headers=headers, timeout=REQUEST_TIMEOUT_S)
                answers.append(
                    Answer(
                        number,
                        sent - started,
                        time.monotonic() - sent,
                        response.status_code,
                        response.headers.get("Retry-After"),
                    )
                )
            return answers

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [answer for sent in pool.map(client, range(CLIENTS)) for answer in sent]
        if ready_s is None:
            # Not waited for before the requests; when it came is still worth knowing.
            _wait(server, log, "ready", lambda: _green(f"{base}/readyz"))
            ready_s = round(time.monotonic() - started, 2)
        workers = _children(server.pid)
        memory = [_resident_mib(pid) for pid in workers]
        fits = _index_fits(base)
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
    return {
        "mode": mode,
        "listening_s": round(listening_s, 2),
        "answering_s": round(answering_s, 2),
        "ready_s": ready_s,
        "requests_from_s": round(ready_s if waits_for == "readyz" else answering_s, 2),
        **summarise(answers),
        "index_fits": fits,
        "workers": len(workers),
        "worker_rss_mib": [figures["rss_mib"] for figures in memory],
        "worker_peak_rss_mib": [figures["peak_rss_mib"] for figures in memory],
    }


def _compare(runs: dict[str, list[dict]]) -> dict:
    keys = (
        "listening_s",
        "answering_s",
        "ready_s",
        "requests_from_s",
        "first_200_s",
        "first_request_ms",
        "p50_ms",
        "p95_ms",
        "max_ms",
        "status_503",
    )
    medians = {mode: {key: median_of(each, key) for key in keys} for mode, each in runs.items()}
    for mode, each in runs.items():
        medians[mode]["worker_rss_mib_max"] = max(max(run["worker_rss_mib"]) for run in each)
        medians[mode]["worker_peak_rss_mib_max"] = max(max(run["worker_peak_rss_mib"]) for run in each)
    before, now = medians["before"], medians["ready_first"]
    return {
        "medians": medians,
        "before_over_now": {
            key: ratio(before[key], now[key]) for key in ("first_request_ms", "p50_ms", "p95_ms", "max_ms")
        },
    }


def run(vacancies: int | None = None, candidates: int | None = None, rounds: int | None = None) -> dict:
    from shared.devstack.broker import free_ports

    vacancies = vacancies or int(os.environ.get("BENCH_COLD_START_VACANCIES", VACANCIES))
    candidates = candidates or int(os.environ.get("BENCH_COLD_START_CANDIDATES", CANDIDATES))
    rounds = rounds or int(os.environ.get("BENCH_COLD_START_ROUNDS", ROUNDS))
    vacancy_rows, candidate_rows = tenant_payloads(vacancies, candidates)
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-") as scratch:
        root = Path(scratch)
        database_url, registry_url, headers, fill_s = scratch_matching(root, vacancy_rows, candidate_rows)

        port, unused_broker_port = free_ports(2)
        env = {key: value for key, value in process_env().items() if not key.startswith(("MATCHING_", "WEB_"))}
        env |= DEPLOYED | {
            "DATABASE_URL": database_url,
            "REGISTRY_DATABASE_URL": registry_url,
            # The routes timed here never ask the broker, and /readyz only reports it.
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{unused_broker_port}",
            "WERKBRUG_PORT": str(port),
            "WERKBRUG_VAR_DIR": str(root / "var"),
            "LOG_LEVEL": "WARNING",
        }
        # The same candidates in every restart, so each mode asks the same of its index.
        candidate_ids = [candidate_id for candidate_id, _ in candidate_rows[:REQUESTS]]
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode in MODES:
                print(f"  cold-start: {mode}", flush=True)
                runs[mode].append(restart(mode, env, port, root, candidate_ids, headers))
    return {
        "vacancies": vacancies,
        "candidates": candidates,
        "rounds": rounds,
        "requests_per_restart": REQUESTS,
        "settings": DEPLOYED,
        "before_cold_wait_s": float(WAIT_FOR_BUILD_S),
        "load_average_1min": load_at_start,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "fill_read_models_s": round(fill_s, 1),
        **_compare(runs),
        "runs": runs,
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.cold_start")
    parser.add_argument("--vacancies", type=int)
    parser.add_argument("--candidates", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args()
    print(json.dumps(run(args.vacancies, args.candidates, args.rounds), indent=2))
