"""The whole system as real processes on this machine: each service's gunicorn and worker.

Used by the end-to-end tests and the benchmarks, which point it at their own broker, databases and free
ports so that they never collide with a running ``make run``. It starts the processes exactly as the
Procfile does, only with other ports and URLs in their environment. Which services run is the caller's
choice: one per database URL given, in that order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from shared.db import Database, upgrade
from shared.devstack.broker import free_ports
from shared.registry import Registry

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def signal(self, signum: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(5)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class LocalStack:
    work_dir: Path
    bootstrap_servers: str
    database_urls: dict[str, str]
    registry_database_url: str
    # Each service's migrations directory, applied by start().
    migrations: Mapping[str, Path] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    web_concurrency: int = 2
    # Workers as the Procfile runs them, each a static member of its consumer group. Off by default: a test
    # that starts a second replica of a worker would otherwise fence the first.
    static_membership: bool = False
    web_ports: dict[str, int] = field(default_factory=dict)
    worker_ports: dict[str, int] = field(default_factory=dict)
    # Extra worker replicas (see add_worker_replica): process name -> its metrics and health port.
    replica_ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, _Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        services = self.services
        ports = free_ports(2 * len(services))
        self.web_ports = dict(zip(services, ports[: len(services)], strict=True))
        self.worker_ports = dict(zip(services, ports[len(services) :], strict=True))

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.database_urls)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.web_ports[service]}"

    def worker_metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.worker_ports[service]}/metrics"

    def worker_ready_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.worker_ports[service]}/readyz"

    def metrics_targets(self) -> list[dict[str, str]]:
        targets = []
        for service in self.services:
            targets.append({"service": service, "process": "web", "target": f"127.0.0.1:{self.web_ports[service]}"})
            targets.append(
                {"service": service, "process": "worker", "target": f"127.0.0.1:{self.worker_ports[service]}"}
            )
        return targets

    def migrate(self) -> None:
        Registry(Database(self.registry_database_url)).migrate()
        for service in self.services:
            upgrade(self.migrations[service], self.database_urls[service])

    def _env(self, service: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PROMETHEUS_MULTIPROC_DIR", "WERKBRUG_", "WORKER_METRICS"))
        }
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "DATABASE_URL": self.database_urls[service],
                "REGISTRY_DATABASE_URL": self.registry_database_url,
                "WERKBRUG_VAR_DIR": str(self.work_dir / "var"),
                "WERKBRUG_PORT": str(self.web_ports[service]),
                "WORKER_METRICS_PORT": str(self.worker_ports[service]),
                "WEB_CONCURRENCY": str(self.web_concurrency),
                "PYTHONUNBUFFERED": "1",
                # Tests and benchmarks poll in tight loops with one key; limits stay on, far above that.
                "RATELIMIT_DEFAULTS": env.get("RATELIMIT_DEFAULTS")
                or json.dumps({role: "100000/minute" for role in ("employer", "jobcoach", "operator", "anonymous")}),
            }
        )
        env.update(self.extra_env)
        return env

    def _define(self, service: str) -> None:
        env = self._env(service)
        logs = self.work_dir / "logs"
        logs.mkdir(exist_ok=True)
        metrics_dir = self.work_dir / "metrics" / service
        web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:shared.web.gunicorn_conf"]
        self.processes[f"{service}-web"] = _Process(
            f"{service}-web", [*gunicorn, f"services.{service}.app:create_app()"], web_env, logs / f"{service}-web.log"
        )
        worker_env = {**env, "KAFKA_GROUP_INSTANCE_ID": f"{service}-worker"} if self.static_membership else env
        self.processes[f"{service}-worker"] = _Process(
            f"{service}-worker",
            [sys.executable, "-m", f"services.{service}.worker"],
            worker_env,
            logs / f"{service}-worker.log",
        )

    def add_worker_replica(self, service: str, *, start: bool = True) -> str:
        """One more replica of a service's worker, in the same consumer group: the partitions are shared
        out again, and it is ready (``wait_ready``) once it holds some. It has a metrics and health port of
        its own and, with static membership, a group instance id of its own, or it would fence the first.
        Returns the process's name (``<service>-worker-2``, ``-3``, ...)."""
        template = self.processes[f"{service}-worker"]
        number = 2 + sum(name.startswith(f"{service}-worker-") for name in self.replica_ports)
        name = f"{service}-worker-{number}"
        (port,) = free_ports(1)
        env = {**template.env, "WORKER_METRICS_PORT": str(port)}
        if "KAFKA_GROUP_INSTANCE_ID" in env:
            env["KAFKA_GROUP_INSTANCE_ID"] = name
        self.processes[name] = _Process(name, template.command, env, template.log_path.with_name(f"{name}.log"))
        self.replica_ports[name] = port
        if start:
            self.processes[name].start()
        return name

    def start(self, timeout: float = 90) -> None:
        self.migrate()
        for service in self.services:
            self._define(service)
        for process in self.processes.values():
            process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        pending = {f"{s}-web": f"{self.url(s)}/readyz" for s in self.services}
        # A worker is ready once its consumer holds its partitions: before that, an event would wait.
        pending |= {f"{s}-worker": self.worker_ready_url(s) for s in self.services}
        pending |= {name: f"http://127.0.0.1:{port}/readyz" for name, port in self.replica_ports.items()}
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                if not self.processes[name].alive():
                    raise RuntimeError(f"{name} exited during start-up:\n{self.processes[name].log_tail()}")
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        if pending:
            tails = "\n".join(f"--- {name}\n{self.processes[name].log_tail()}" for name in pending)
            raise RuntimeError(f"not ready after {timeout}s: {sorted(pending)}\n{tails}")

    def restart(self, name: str, timeout: float = 60) -> None:
        process = self.processes[name]
        process.stop()
        process.start()
        self.wait_ready(timeout)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        assert process.popen is not None, f"{name} was never started"
        process.signal(signal.SIGKILL)
        process.popen.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            process.signal(signal.SIGTERM)
        for process in self.processes.values():
            process.stop()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
