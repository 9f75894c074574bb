"""The end-to-end tests start the processes as ``make run`` does: the Procfile and LocalStack agree."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from admin.services import SERVICE_PORTS, WORKER_METRICS_PORTS
from shared.devstack.stack import LocalStack

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def _procfile() -> dict[str, list[str]]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command)
    return entries


@pytest.fixture
def local_stack(tmp_path) -> LocalStack:
    stack = LocalStack(tmp_path, "127.0.0.1:1", dict.fromkeys(SERVICE_PORTS, "sqlite://"), "sqlite://")
    for service in SERVICE_PORTS:
        stack._define(service)
    return stack


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_the_procfile_and_the_test_stack_run_the_same_programs(service, local_stack):
    procfile = _procfile()
    web = procfile[f"{service}-web"]
    worker = procfile[f"{service}-worker"]
    assert f"WERKBRUG_PORT={SERVICE_PORTS[service]}" in web
    assert f"WORKER_METRICS_PORT={WORKER_METRICS_PORTS[service]}" in worker
    web_program = [word for word in web if "=" not in word or word.startswith("python:")]
    worker_program = [word for word in worker if "=" not in word]
    stack_web = local_stack.processes[f"{service}-web"].command
    stack_worker = local_stack.processes[f"{service}-worker"].command
    assert stack_web[stack_web.index("gunicorn") :] == web_program
    assert stack_worker[1:] == worker_program[1:], "python -m services.<name>.worker in both"


def test_the_procfile_runs_the_broker_and_every_service_and_nothing_else():
    expected = {"kafka"} | {f"{s}-{p}" for s in SERVICE_PORTS for p in ("web", "worker")}
    # The workspace is web only: pages in front of the four services' APIs, no worker of its own.
    assert set(_procfile()) == expected | {"workspace-web"}


def test_the_workspace_runs_on_its_port_like_the_other_web_processes():
    from services.workspace.config import DEFAULT_PORT

    web = _procfile()["workspace-web"]
    assert f"WERKBRUG_PORT={DEFAULT_PORT}" in web
    assert "services.workspace.app:create_app()" in web


def test_an_extra_worker_replica_runs_the_same_program_beside_the_first_without_fencing_it(tmp_path):
    stack = LocalStack(
        tmp_path, "127.0.0.1:1", dict.fromkeys(SERVICE_PORTS, "sqlite://"), "sqlite://", static_membership=True
    )
    for service in SERVICE_PORTS:
        stack._define(service)
    first = stack.processes["matching-worker"]
    names = [stack.add_worker_replica("matching", start=False) for _ in range(2)]
    assert names == ["matching-worker-2", "matching-worker-3"]
    replicas = [stack.processes[name] for name in names]
    assert all(replica.command == first.command for replica in replicas)
    ports = {process.env["WORKER_METRICS_PORT"] for process in (first, *replicas)}
    assert len(ports) == 3, "each has a health and metrics port of its own"
    members = {process.env["KAFKA_GROUP_INSTANCE_ID"] for process in (first, *replicas)}
    assert len(members) == 3, "a static member of its own each, so none fences another"
    assert {replica.env["DATABASE_URL"] for replica in replicas} == {first.env["DATABASE_URL"]}


@pytest.mark.parametrize("replicas", ["0", "7", "two", "2; rm -rf var"])
def test_make_run_refuses_a_replica_count_outside_the_partitions_before_starting_anything(replicas):
    script = PROCFILE.parent / "scripts" / "run.sh"
    result = subprocess.run(
        ["bash", str(script)],
        env={**os.environ, "WORKER_REPLICAS": replicas},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "WORKER_REPLICAS must be a whole number from 1 to 6" in result.stderr
    assert result.stdout == "", "nothing was started or seeded"
