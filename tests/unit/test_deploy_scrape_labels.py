"""The labels the dashboards and alert rules select on exist in every deployment's scrape configuration.

Compose (deploy/prometheus/prometheus.yml) and a local run (prometheus.local.yml) label static targets;
on Kubernetes, the Prometheus Operator turns the PodMonitor in k8s/base into a scrape job whose
relabelling decides the labels (job, namespace, pod and container from the operator, the rest from the
PodMonitor's relabelings). The scrape job is built here the way the operator builds it
(pkg/prometheus/promcfg.go, generatePodMonitorConfig, v0.93.0) and applied to the pods of the
Deployments in k8s/base, in Python and, when the binary is there, by a real Prometheus.

Then every label matcher in a dashboard or rule on a target label must select targets in every
deployment, and every label a query groups by, a legend shows or an annotation prints must be either a
label of the metric (shared/metrics.py, services/<name>/metrics.py) or one that every deployment's targets carry.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.metrics import MetricWrapperBase

from admin.services import metric_modules

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "werkbrug.rules.yml"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
K8S_BASE = ROOT / "k8s" / "base"
NAMESPACE = "werkbrug"

SERVICES = ("candidate", "vacancy", "matching", "notification")
PROCESSES = ("web", "worker")
# Every process that serves /metrics: each service's web and worker, and the workspace (web only).
SCRAPED = sorted([*((s, p) for s in SERVICES for p in PROCESSES), ("workspace", "web")])
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval": "15s"}

MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
ANNOTATION_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")

Labels = dict[str, str]


# --- what the dashboards and rules ask for ----------------------------------------------------------------


def _metric_labels() -> set[str]:
    labels = set()
    for module in metric_modules():
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                labels |= set(value._labelnames)
                if value._type == "histogram":
                    labels.add("le")
    return labels


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARD_DIR.glob("*.json"))]


def _dashboard_panels() -> list[dict[str, Any]]:
    panels = []
    for dashboard in _dashboards():
        for panel in dashboard["panels"]:
            panels.append(panel)
            panels.extend(panel.get("panels", []))
    return [panel for panel in panels if panel.get("type") != "row"]


def _expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]
    ]


def _queries() -> list[tuple[str, str]]:
    """(where, expression) for every dashboard target and every rule."""
    queries = []
    for panel in _dashboard_panels():
        for target in panel.get("targets", []):
            queries.append((f"panel {panel.get('title')!r}", _expand(target["expr"])))
    for rule in _rules():
        queries.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return queries


def _shown_labels() -> list[tuple[str, str]]:
    """(where, label) for every label a legend or an alert annotation prints."""
    shown = []
    for panel in _dashboard_panels():
        for target in panel.get("targets", []):
            shown += [
                (f"legend of {panel.get('title')!r}", label)
                for label in LEGEND_LABEL.findall(target.get("legendFormat", ""))
            ]
    for rule in _rules():
        for text in (rule.get("annotations") or {}).values():
            shown += [(f"annotation of {rule.get('alert')}", label) for label in ANNOTATION_LABEL.findall(text)]
    return shown


def _matchers(expr: str) -> list[tuple[str, str, str]]:
    selectors = re.findall(r"\{([^{}]*)\}", expr)
    return [match for selector in selectors for match in MATCHER.findall(selector)]


def _grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()}


def _matches(labels: Labels, name: str, op: str, value: str) -> bool:
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    full = re.fullmatch(value, actual) is not None
    return full if op == "=~" else not full


# --- compose and local --------------------------------------------------------------------------------------


def _static_targets(config_name: str) -> list[Labels]:
    config = yaml.safe_load((PROMETHEUS_DIR / config_name).read_text(encoding="utf-8"))
    targets = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for address in static["targets"]:
                targets.append({"job": job["job_name"], "instance": address, **static.get("labels", {})})
    return targets


# --- Kubernetes -------------------------------------------------------------------------------------------


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _snake(relabeling: dict[str, Any]) -> dict[str, Any]:
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    converted = {names.get(key, key): value for key, value in relabeling.items()}
    if "action" in converted:
        converted["action"] = converted["action"].lower()
    return converted


def _pod_monitor() -> dict[str, Any]:
    (monitor,) = [
        doc
        for path in sorted(K8S_BASE.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc["kind"] == "PodMonitor"
    ]
    return monitor


def _operator_scrape_configs(monitor: dict[str, Any]) -> list[dict[str, Any]]:
    """The scrape jobs the Prometheus Operator writes for a PodMonitor (without the sharding step, which
    only uses temporary labels)."""
    namespace = monitor["metadata"].get("namespace", NAMESPACE)
    name = monitor["metadata"]["name"]
    selector = monitor["spec"]["selector"]
    jobs = []
    for index, endpoint in enumerate(monitor["spec"]["podMetricsEndpoints"]):
        relabel: list[dict[str, Any]] = [
            {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
            {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        ]
        for key in sorted(selector.get("matchLabels", {})):
            relabel.append(
                {
                    "action": "keep",
                    "source_labels": [
                        f"__meta_kubernetes_pod_label_{_sanitize(key)}",
                        f"__meta_kubernetes_pod_labelpresent_{_sanitize(key)}",
                    ],
                    "regex": f"({selector['matchLabels'][key]});true",
                }
            )
        for expression in selector.get("matchExpressions", []):
            key, operator = _sanitize(expression["key"]), expression["operator"]
            values = "|".join(expression.get("values", []))
            sources = [f"__meta_kubernetes_pod_label_{key}", f"__meta_kubernetes_pod_labelpresent_{key}"]
            relabel.append(
                {
                    "In": {"action": "keep", "source_labels": sources, "regex": f"({values});true"},
                    "NotIn": {"action": "drop", "source_labels": sources, "regex": f"({values});true"},
                    "Exists": {"action": "keep", "source_labels": sources[1:], "regex": "true"},
                    "DoesNotExist": {"action": "drop", "source_labels": sources[1:], "regex": "true"},
                }[operator]
            )
        relabel += [
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": endpoint["port"],
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"target_label": "job", "replacement": f"{namespace}/{name}"},
            {"target_label": "endpoint", "replacement": endpoint["port"]},
        ]
        relabel += [_snake(r) for r in endpoint.get("relabelings", [])]
        jobs.append(
            {
                "job_name": f"podMonitor/{namespace}/{name}/{index}",
                "metrics_path": endpoint.get("path", "/metrics"),
                "relabel_configs": relabel,
            }
        )
    return jobs


@functools.cache
def _discovered_pods_cached() -> tuple[Labels, ...]:
    return tuple(_discover_pods())


def _discovered_pods() -> list[Labels]:
    return [dict(meta) for meta in _discovered_pods_cached()]


def _discover_pods() -> list[Labels]:
    """What Kubernetes service discovery (role pod) yields: one target per declared container port of every
    pod of the Deployments and Jobs in k8s/base, plus a Strimzi broker pod that must not be scraped."""
    pods = []
    for path in sorted(K8S_BASE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc["kind"] in {"Deployment", "Job"}:
                template = doc["spec"]["template"]
                pods.append((f"{doc['metadata']['name']}-0", template["metadata"]["labels"], template["spec"]))
    broker_labels = {
        "strimzi.io/cluster": "werkbrug",
        "strimzi.io/kind": "Kafka",
        "app.kubernetes.io/part-of": "strimzi-werkbrug",
    }
    broker_spec = {"containers": [{"name": "kafka", "ports": [{"name": "tcp-clients", "containerPort": 9092}]}]}
    pods.append(("werkbrug-dual-role-0", broker_labels, broker_spec))
    targets = []
    for number, (pod_name, labels, spec) in enumerate(pods):
        ip = f"10.244.0.{number + 10}"
        for container in spec["containers"]:
            for port in container.get("ports", []) or [{"containerPort": None}]:
                meta = {
                    "__address__": f"{ip}:{port['containerPort']}" if port["containerPort"] else ip,
                    "__meta_kubernetes_namespace": NAMESPACE,
                    "__meta_kubernetes_pod_name": pod_name,
                    "__meta_kubernetes_pod_ip": ip,
                    "__meta_kubernetes_pod_phase": "Running",
                    "__meta_kubernetes_pod_container_name": container["name"],
                }
                if port["containerPort"]:
                    meta["__meta_kubernetes_pod_container_port_number"] = str(port["containerPort"])
                    meta["__meta_kubernetes_pod_container_port_name"] = port.get("name", "")
                for key, value in labels.items():
                    meta[f"__meta_kubernetes_pod_label_{_sanitize(key)}"] = value
                    meta[f"__meta_kubernetes_pod_labelpresent_{_sanitize(key)}"] = "true"
                targets.append(meta)
    return targets


def _relabel(labels: Labels, configs: list[dict[str, Any]]) -> Labels | None:
    """Prometheus's relabelling for the actions used here; None when the target is dropped."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        separator = config.get("separator", ";")
        value = separator.join(labels.get(name, "") for name in config.get("source_labels", []))
        regex = re.compile(config.get("regex", "(.*)"))
        match = regex.fullmatch(value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            target = config["target_label"]
            replacement = re.sub(r"\$\{?(\d+)\}?", r"\\\1", config.get("replacement", "$1"))
            result = match.expand(replacement)
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
        if action not in {"keep", "drop", "replace"}:
            raise AssertionError(f"relabel action {action} is not emulated here")
    return labels


def _finish(labels: Labels) -> Labels:
    """After relabelling: instance defaults to the address, and labels starting with __ go."""
    labels.setdefault("instance", labels["__address__"])
    return {key: value for key, value in labels.items() if not key.startswith("__")}


def _kubernetes_targets() -> list[Labels]:
    targets = []
    for job in _operator_scrape_configs(_pod_monitor()):
        for discovered in _discovered_pods():
            relabelled = _relabel({**discovered, "job": job["job_name"]}, job["relabel_configs"])
            if relabelled is not None:
                targets.append(_finish(relabelled))
    return targets


DEPLOYMENTS = {
    "compose": lambda: _static_targets("prometheus.yml"),
    "local": lambda: _static_targets("prometheus.local.yml"),
    "k8s": _kubernetes_targets,
}


def _werkbrug_targets(deployment: str) -> list[Labels]:
    return [t for t in DEPLOYMENTS[deployment]() if t["job"] == "werkbrug"]


# --- the checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))
def test_every_process_is_scraped_once_as_job_werkbrug_with_service_and_process(deployment: str) -> None:
    targets = _werkbrug_targets(deployment)
    pairs = sorted((t.get("service", ""), t.get("process", "")) for t in targets)
    assert pairs == SCRAPED, pairs


def test_the_kubernetes_targets_are_the_werkbrug_web_and_worker_ports_only() -> None:
    targets = _kubernetes_targets()
    assert all(t["job"] == "werkbrug" for t in targets), "every PodMonitor target must be relabelled to the job"
    assert {t["endpoint"] for t in targets} == {"http", "metrics"}
    assert not [t for t in targets if t["pod"].startswith(("werkbrug-dual-role", "werkbrug-migrate"))]


@pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))
def test_every_target_label_matcher_selects_targets(deployment: str) -> None:
    targets = DEPLOYMENTS[deployment]()
    target_labels = {name for t in targets for name in t}
    metric_labels = _metric_labels()
    problems = []
    for where, expr in _queries():
        for name, op, value in _matchers(expr):
            if name in metric_labels and name not in target_labels:
                continue
            if name not in target_labels:
                problems.append(f"{where}: {name}{op}{value!r} names a label no {deployment} target or metric has")
            elif not any(_matches(t, name, op, value) for t in targets):
                problems.append(f"{where}: {name}{op}{value!r} selects no {deployment} target")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))
def test_every_grouped_or_shown_label_exists(deployment: str) -> None:
    targets = _werkbrug_targets(deployment)
    on_every_target = set.intersection(*(set(t) for t in targets))
    known = _metric_labels() | on_every_target
    problems = [
        f"{where}: groups by {label!r}, which neither the metrics nor every {deployment} target carry"
        for where, expr in _queries()
        for label in _grouping_labels(expr)
        if label not in known
    ]
    problems += [
        f"{where}: shows {label!r}, which neither the metrics nor every {deployment} target carry"
        for where, label in _shown_labels()
        if label not in known
    ]
    assert not problems, "\n".join(problems)


def test_the_queries_are_parsed() -> None:
    # Guards the regular expressions above: the known selectors and groupings must be found.
    queries = dict(_queries())
    assert ("job", "=", "werkbrug") in _matchers(queries["rule WerkbrugTargetDown"])
    assert {"service", "process"} <= {label for _, expr in queries.items() for label in _grouping_labels(expr)}
    assert ("tenant", "=~", "$tenant") in {m for _, expr in queries.items() for m in _matchers(expr)}


# --- the same with a real Prometheus ----------------------------------------------------------------------


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


@contextlib.contextmanager
def _prometheus(config: dict[str, Any], workdir: Path) -> Iterator[str]:
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    port = _free_port()
    log = (workdir / "prometheus.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            _prometheus_binary(),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def test_a_real_prometheus_relabels_the_pods_the_same_way(tmp_path: Path) -> None:
    # The pods' discovery labels go in as static targets, so that Prometheus's own relabelling of the
    # operator's scrape jobs decides the labels; nothing is scraped (the scrape interval is an hour).
    discovered = _discovered_pods()
    scrape_configs = []
    for job in _operator_scrape_configs(_pod_monitor()):
        scrape_configs.append(
            {
                **job,
                "scrape_interval": "1h",
                "static_configs": [
                    {"targets": [meta["__address__"]], "labels": {k: v for k, v in meta.items() if k != "__address__"}}
                    for meta in discovered
                ],
            }
        )
    config = {"global": {"scrape_interval": "1h", "evaluation_interval": "1h"}, "scrape_configs": scrape_configs}
    expected_count = len(discovered) * len(scrape_configs)
    with _prometheus(config, tmp_path) as base_url:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                response = requests.get(f"{base_url}/api/v1/targets", timeout=2)
                if response.status_code == 200:
                    data = response.json()["data"]
                    if len(data["activeTargets"]) + len(data["droppedTargets"]) == expected_count:
                        break
            log = (tmp_path / "prometheus.log").read_text(encoding="utf-8")
            assert time.monotonic() < deadline, f"prometheus did not list the targets:\n{log}"
            time.sleep(0.5)
    seen = sorted(json.dumps(t["labels"], sort_keys=True) for t in data["activeTargets"])
    expected = sorted(json.dumps(t, sort_keys=True) for t in _kubernetes_targets())
    assert seen == expected
