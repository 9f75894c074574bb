"""Offline checks of the Kubernetes manifests as a cluster would receive them.

Every kustomization is rendered with ``kubectl kustomize`` (no cluster needed; the tests that need the
rendering skip when kubectl is missing). Built-in kinds are validated with kubernetes-validate, the custom
resources (Strimzi, KEDA, Prometheus Operator) with jsonschema against their CRDs' openAPIV3Schema,
vendored under fixtures/crds. The rest checks what the manifests promise: one Kafka version everywhere,
autoscaling within the partition count, a disruption budget per Deployment, network policies that let
the notification workers reach the internet and nothing else internal, and an Ingress that sends every
public path to its service.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.topics import TOPIC_SPECS

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "k8s"
CRD_DIR = Path(__file__).resolve().parent / "fixtures" / "crds"
POM = ROOT / "deploy" / "kafka" / "pom.xml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
README = ROOT / "README.md"
SECRET_EXAMPLE = K8S_DIR / "base" / "secret.example.yaml"

# The oldest Kubernetes that Strimzi 1.2 supports.
KUBERNETES_VERSION = "1.30"
# Strimzi 1.2.0's kafka-versions.yaml: the Kafka versions it can run.
STRIMZI_KAFKA_VERSIONS = {"4.2.0", "4.2.1", "4.3.0", "4.3.1"}
NAMESPACE = "werkbrug"
SERVICES = ("candidate", "vacancy", "matching", "notification")
# The workspace: web only, calling the services' public APIs.
WORKSPACE = "workspace"
CONSUMING_WORKERS = ("matching", "notification")
PARTITIONS = {spec.topic.value: spec.partitions for spec in TOPIC_SPECS}

CUSTOM_API_GROUPS = ("kafka.strimzi.io/", "keda.sh/", "monitoring.coreos.com/")


def _load_all_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S_DIR.rglob("kustomization.yaml"))


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml")


@functools.cache
def _kubectl() -> str | None:
    return shutil.which("kubectl")


@functools.cache
def _rendered(directory: Path) -> tuple[dict[str, Any], ...]:
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed, so the kustomizations cannot be rendered (kubectl kustomize)")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory.relative_to(ROOT)} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


def _rendered_copy(directory: Path) -> list[dict[str, Any]]:
    return copy.deepcopy(list(_rendered(directory)))


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _is_custom(doc: dict[str, Any]) -> bool:
    return doc["apiVersion"].startswith(CUSTOM_API_GROUPS)


# --- CRD schemas ------------------------------------------------------------------------------------------


def _closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others, as the API server's strict
    field validation treats them; ``x-kubernetes-preserve-unknown-fields`` keeps an object open."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


@functools.cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.Validator]:
    validators = {}
    for path in sorted(CRD_DIR.glob("*.json")):
        crd = json.loads(path.read_text(encoding="utf-8"))
        schema = _closed(crd["openAPIV3Schema"])
        # The CRD schemas leave metadata open; the API server checks it like any object's.
        schema["properties"]["metadata"] = {"type": "object"}
        validators[(f"{crd['group']}/{crd['version']}", crd["kind"])] = jsonschema.Draft4Validator(schema)
    return validators


def _crd_errors(doc: dict[str, Any]) -> list[str]:
    validator = _crd_validators().get((doc["apiVersion"], doc["kind"]))
    if validator is None:
        known = sorted(f"{api} {kind}" for api, kind in _crd_validators())
        return [f"no vendored CRD schema for {doc['apiVersion']} {doc['kind']} (known: {known})"]
    name = f"{doc['kind']} {doc['metadata'].get('name')}"
    return [
        f"{name}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]


def test_the_vendored_crd_schemas_are_the_ones_werkbrug_uses() -> None:
    assert set(_crd_validators()) == {
        ("kafka.strimzi.io/v1", "Kafka"),
        ("kafka.strimzi.io/v1", "KafkaNodePool"),
        ("kafka.strimzi.io/v1", "KafkaTopic"),
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
    }


def test_the_crd_schemas_refuse_what_the_api_server_would() -> None:
    topic = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"partitions": 6, "replicas": 3},
    }
    assert _crd_errors(topic) == []
    assert _crd_errors({**topic, "spec": {"partitions": "six"}})
    assert _crd_errors({**topic, "spec": {"partitions": 6, "replica": 3}}), "a misspelt field must fail"
    assert _crd_errors({**topic, "apiVersion": "kafka.strimzi.io/v1beta2"}), "Strimzi 1.x serves only v1"
    kafka = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "Kafka",
        "metadata": {"name": "k"},
        "spec": {"kafka": {"listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]}},
    }
    assert _crd_errors(kafka) == []
    # Gone in v1: ZooKeeper, and replicas and storage outside the node pools.
    assert _crd_errors({**kafka, "spec": {**kafka["spec"], "zookeeper": {"replicas": 3}}})
    assert _crd_errors({**kafka, "spec": {"kafka": {**kafka["spec"]["kafka"], "replicas": 3}}})


@pytest.mark.parametrize("manifest", _manifest_files(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_custom_resources_in_every_manifest_match_their_crd(manifest: Path) -> None:
    errors = [error for doc in _load_all_yaml(manifest) if _is_custom(doc) for error in _crd_errors(doc)]
    assert not errors, "\n".join(errors)


# --- rendering --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_every_kustomization_renders_to_valid_resources(directory: Path) -> None:
    docs = _rendered_copy(directory)
    assert docs
    errors = []
    for doc in docs:
        name = f"{doc['kind']} {doc['metadata']['name']}"
        if _is_custom(doc):
            errors += _crd_errors(doc)
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: {doc['apiVersion']} {doc['kind']} is not a Kubernetes {KUBERNETES_VERSION} kind")
    assert not errors, "\n".join(errors)
    namespaced = [doc for doc in docs if doc["kind"] != "Namespace"]
    assert {doc["metadata"].get("namespace") for doc in namespaced} == {NAMESPACE}


@pytest.mark.parametrize("directory", _kustomization_dirs(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_rendered_kafka_replication_fits_the_kafka_nodes(directory: Path) -> None:
    docs = _rendered_copy(directory)
    pools = [doc for doc in docs if doc["kind"] == "KafkaNodePool"]
    topics = [doc for doc in docs if doc["kind"] == "KafkaTopic"]
    if not pools and not topics:
        return
    nodes = sum(pool["spec"]["replicas"] for pool in pools)
    (kafka,) = [doc for doc in docs if doc["kind"] == "Kafka"]
    config = kafka["spec"]["kafka"]["config"]
    factors = {key: value for key, value in config.items() if key.endswith("replication.factor")}
    factors |= {f"topic {doc['metadata']['name']}": doc["spec"]["replicas"] for doc in topics}
    assert all(1 <= factor <= nodes for factor in factors.values()), (nodes, factors)
    assert config["min.insync.replicas"] <= min(factors.values())
    for prefix in ("transaction.state.log", "share.coordinator.state.topic"):
        assert config[f"{prefix}.min.isr"] <= config[f"{prefix}.replication.factor"], prefix


# --- one Kafka version ------------------------------------------------------------------------------------


def _pom_kafka_version() -> str:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(POM).getroot().find("m:properties/m:kafka.version", namespace)  # noqa: S314
    assert version is not None and version.text
    return version.text.strip()


def _compose_kafka_version() -> str:
    image = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]["kafka"]["image"]
    name, _, tag = image.partition(":")
    assert name == "apache/kafka", image
    return tag


def _strimzi_kafka_versions() -> set[str]:
    return {
        str(doc["spec"]["kafka"]["version"])
        for path in _manifest_files()
        for doc in _load_all_yaml(path)
        if doc["kind"] == "Kafka"
    }


def test_one_kafka_version_everywhere() -> None:
    version = _pom_kafka_version()
    assert _compose_kafka_version() == version, "docker-compose.yml runs another Kafka than deploy/kafka/pom.xml"
    assert _strimzi_kafka_versions() == {version}, "k8s/kafka asks Strimzi for another Kafka than the pom"
    assert version in STRIMZI_KAFKA_VERSIONS, f"Strimzi 1.2 cannot run Kafka {version}"
    # The README names the version, and no other.
    named = set(re.findall(r"\bKafka (\d+\.\d+\.\d+)\b", README.read_text(encoding="utf-8")))
    assert named == {version}, named


def test_one_kafka_version_rendered() -> None:
    version = _pom_kafka_version()
    for directory in _kustomization_dirs():
        for kafka in _by_kind(_rendered_copy(directory), "Kafka").values():
            assert str(kafka["spec"]["kafka"]["version"]) == version, directory


# --- workers and autoscaling ------------------------------------------------------------------------------


def _base() -> list[dict[str, Any]]:
    return _rendered_copy(K8S_DIR / "base")


def _consumed_topics(service: str) -> set[str]:
    # The workers' own subscription lists: what the ScaledObjects watch must be what the consumers read.
    module = __import__(f"services.{service}.worker", fromlist=["TOPICS"])
    return {str(topic) for topic in module.TOPICS}


def test_workers_are_not_pinned_to_one_replica_or_recreated() -> None:
    deployments = _by_kind(_base(), "Deployment")
    for service in SERVICES:
        worker = deployments[f"{service}-worker"]
        strategy = worker["spec"].get("strategy", {"type": "RollingUpdate"})
        assert strategy["type"] == "RollingUpdate", service
        assert strategy.get("rollingUpdate", {}).get("maxUnavailable", 1) == 0, service
        if service in CONSUMING_WORKERS:
            assert "replicas" not in worker["spec"], f"{service}-worker: KEDA owns the replica count"
        else:
            assert worker["spec"]["replicas"] >= 2, f"{service}-worker: a standby relay"
    for text in (K8S_DIR / "base" / f"{service}.yaml" for service in SERVICES):
        assert "publish the same outbox rows twice" not in text.read_text(encoding="utf-8")


def test_consuming_workers_scale_on_their_consumer_groups_lag_within_the_partitions() -> None:
    docs = _base()
    scaled = _by_kind(docs, "ScaledObject")
    deployments = _by_kind(docs, "Deployment")
    config_map = _by_kind(docs, "ConfigMap")["werkbrug-config"]
    bootstrap_host, _, bootstrap_port = config_map["data"]["KAFKA_BOOTSTRAP_SERVERS"].partition(":")
    assert set(scaled) == {f"{service}-worker" for service in CONSUMING_WORKERS}
    for service in CONSUMING_WORKERS:
        spec = scaled[f"{service}-worker"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"{service}-worker"
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        worker_env = {
            e["name"] for e in deployments[f"{service}-worker"]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert "CONSUMER_GROUP" not in worker_env, "the workers use the default group werkbrug-<service>"
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {f"werkbrug-{service}"}
        watched = {t["metadata"]["topic"] for t in triggers}
        assert watched == _consumed_topics(service), service
        for trigger in triggers:
            # KEDA's operator lives in its own namespace: the bootstrap Service needs its namespace.
            assert trigger["metadata"]["bootstrapServers"] == f"{bootstrap_host}.{NAMESPACE}.svc:{bootstrap_port}"
            assert int(trigger["metadata"]["lagThreshold"]) > 0
            assert trigger["metadata"].get("allowIdleConsumers", "false") == "false"
        # A replica beyond the partitions of the topics would sit idle.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= min(PARTITIONS[t] for t in watched)


def test_web_deployments_scale_with_hpas_and_keep_two_replicas() -> None:
    docs = _base()
    hpas = _by_kind(docs, "HorizontalPodAutoscaler")
    deployments = _by_kind(docs, "Deployment")
    assert set(hpas) == {f"{service}-web" for service in (*SERVICES, WORKSPACE)}
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", name)
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployments[name]["spec"], f"{name}: the HPA owns the replica count"
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        # Utilization is relative to the request: without one the HPA cannot act.
        assert container["resources"]["requests"]["cpu"]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def test_every_deployment_has_a_disruption_budget_of_its_own() -> None:
    docs = _base()
    deployments = _by_kind(docs, "Deployment")
    budgets = _by_kind(docs, "PodDisruptionBudget")
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    for name in deployments:
        covering = [b for b in budgets.values() if _selects(b["spec"]["selector"], pods[name])]
        assert len(covering) == 1, f"{name}: {len(covering)} disruption budgets"
        (budget,) = covering
        selected = {other for other, labels in pods.items() if _selects(budget["spec"]["selector"], labels)}
        assert selected == {name}, f"{budget['metadata']['name']} also covers {selected - {name}}"
        # maxUnavailable, so that a single replica can still be drained.
        assert budget["spec"].get("maxUnavailable") == 1 and "minAvailable" not in budget["spec"]


def _memory_mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20


def test_matching_memory_follows_the_measured_figures() -> None:
    # README, "Matching speed": 145 MiB of model and index per process for 20,000 vacancies, 466 MiB at the
    # peak of a build; a gunicorn worker with the libraries loaded is about 155 MiB, the master about 25.
    process, index, build, master = 155, 145, 466, 25
    deployments = _by_kind(_base(), "Deployment")
    (web,) = deployments["matching-web"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in web["env"]}
    workers = int(env["WEB_CONCURRENCY"])
    peak = master + workers * (process + index + build)
    assert _memory_mib(web["resources"]["limits"]["memory"]) >= peak * 1.2
    assert _memory_mib(web["resources"]["requests"]["memory"]) >= master + workers * (process + index)
    (worker,) = deployments["matching-worker"]["spec"]["template"]["spec"]["containers"]
    assert _memory_mib(worker["resources"]["limits"]["memory"]) >= (process + index + build) * 1.2


def test_workspace_memory_follows_the_measured_figures() -> None:
    # Measured under gunicorn: a worker with its libraries about 75 MiB, the master about 25; a sign-in's
    # Argon2id hash takes 64 MiB more in the worker that checks it (sync workers: one request each).
    process, argon2, master = 75, 64, 25
    (web,) = _by_kind(_base(), "Deployment")[f"{WORKSPACE}-web"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in web["env"]}
    workers = int(env["WEB_CONCURRENCY"])
    assert _memory_mib(web["resources"]["requests"]["memory"]) >= master + workers * process
    assert _memory_mib(web["resources"]["limits"]["memory"]) >= (master + workers * (process + argon2)) * 1.2


# --- network policies -------------------------------------------------------------------------------------

PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"]
KUBE_SYSTEM = {"kubernetes.io/metadata.name": "kube-system"}
WERKBRUG_NS = {"kubernetes.io/metadata.name": NAMESPACE}
DNS_POD = {"namespace": KUBE_SYSTEM, "labels": {"k8s-app": "kube-dns"}, "ip": "10.96.0.10", "ports": {}}
KAFKA_POD = {
    "namespace": WERKBRUG_NS,
    "labels": {"strimzi.io/cluster": "werkbrug", "strimzi.io/kind": "Kafka", "strimzi.io/broker-role": "true"},
    "ip": "10.244.1.20",
    "ports": {},
}
OTHER_POD = {"namespace": {"kubernetes.io/metadata.name": "other"}, "labels": {"app": "x"}, "ip": "10.244.2.2"}


def _external(ip: str) -> dict[str, Any]:
    return {"namespace": None, "labels": None, "ip": ip, "ports": {}}


def _peer_matches(peer: dict[str, Any], policy_namespace: dict[str, str], other: dict[str, Any]) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other["ip"])
        block = peer["ipBlock"]
        if address.version != ipaddress.ip_network(block["cidr"]).version:
            return False
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if other["labels"] is None:
        return False  # a pod or namespace selector never matches an address outside the cluster
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], other["namespace"]):
            return False
    elif other["namespace"] != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), other["labels"])


def _port_matches(rule_port: dict[str, Any], port: int, protocol: str, named: dict[str, int]) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    wanted = rule_port.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return named.get(wanted) == port
    return wanted <= port <= rule_port.get("endPort", wanted)


def _allowed(
    policies: list[dict[str, Any]], direction: str, pod: dict[str, Any], other: dict[str, Any], port: int, proto="TCP"
) -> bool:
    """Whether the policies allow traffic from pod to other (Egress) or from other to pod (Ingress)."""
    kind, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p
        for p in policies
        if _selects(p["spec"]["podSelector"], pod["labels"]) and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    # Named ports are the destination pod's.
    named = other.get("ports", {}) if direction == "Egress" else pod.get("ports", {})
    for policy in selecting:
        for rule in policy["spec"].get(kind, []):
            ports_ok = not rule.get("ports") or any(_port_matches(p, port, proto, named) for p in rule["ports"])
            peers = rule.get(peers_key)
            peers_ok = not peers or any(_peer_matches(peer, WERKBRUG_NS, other) for peer in peers)
            if ports_ok and peers_ok:
                return True
    return False


def _werkbrug_pods() -> dict[str, dict[str, Any]]:
    pods = {}
    for doc in _base():
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        template = doc["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        pods[doc["metadata"]["name"]] = {
            "namespace": WERKBRUG_NS,
            "labels": template["metadata"]["labels"],
            "ip": "10.244.3.3",
            "ports": ports,
        }
    return pods


def _network_policies() -> list[dict[str, Any]]:
    return list(_by_kind(_base(), "NetworkPolicy").values())


def test_every_werkbrug_pod_is_under_a_default_deny() -> None:
    policies = _network_policies()
    for name, pod in _werkbrug_pods().items():
        assert not _allowed(policies, "Egress", pod, _external("10.1.2.3"), 6379), name
        assert not _allowed(policies, "Egress", pod, OTHER_POD | {"ports": {}}, 8080), name
        assert not _allowed(policies, "Ingress", pod, OTHER_POD, 9999), name
        # What every pod needs: DNS and its database.
        assert _allowed(policies, "Egress", pod, DNS_POD, 53, "UDP"), name
        assert _allowed(policies, "Egress", pod, DNS_POD, 53, "TCP"), name
        assert _allowed(policies, "Egress", pod, _external("10.20.0.5"), 5432), name


def test_web_and_worker_pods_reach_kafka_and_are_reached_only_where_they_listen() -> None:
    policies = _network_policies()
    prometheus = {"namespace": {"kubernetes.io/metadata.name": "monitoring"}, "labels": {}, "ip": "10.244.9.9"}
    for service in SERVICES:
        pods = _werkbrug_pods()
        web, worker = pods[f"{service}-web"], pods[f"{service}-worker"]
        for pod in (web, worker):
            assert _allowed(policies, "Egress", pod, KAFKA_POD, 9092), service
        assert _allowed(policies, "Ingress", web, OTHER_POD, web["ports"]["http"])
        assert _allowed(policies, "Ingress", worker, prometheus, worker["ports"]["metrics"])
        assert not _allowed(policies, "Ingress", worker, OTHER_POD, worker["ports"]["metrics"])
    migrate = _werkbrug_pods()["werkbrug-migrate"]
    assert not _allowed(policies, "Egress", migrate, KAFKA_POD, 9092), "the migration needs no Kafka"


def test_the_workspace_reaches_the_four_apis_and_nothing_else_internal() -> None:
    policies = _network_policies()
    pods = _werkbrug_pods()
    workspace = pods[f"{WORKSPACE}-web"]
    # People (through the Ingress) and Prometheus reach its one port.
    assert _allowed(policies, "Ingress", workspace, OTHER_POD, workspace["ports"]["http"])
    assert not _allowed(policies, "Ingress", workspace, OTHER_POD, 9101)
    for service in SERVICES:
        api = pods[f"{service}-web"]
        port = api["ports"]["http"]
        assert _allowed(policies, "Egress", workspace, api, port), service
        assert _allowed(policies, "Ingress", api, workspace, port), service
        # The workers' metrics ports are not the workspace's business.
        assert not _allowed(policies, "Egress", workspace, pods[f"{service}-worker"], port), service
        # Nothing but the workspace calls the APIs inside the cluster.
        for name, pod in pods.items():
            if name != f"{WORKSPACE}-web":
                assert not _allowed(policies, "Egress", pod, api, port), (name, service)
    assert not _allowed(policies, "Egress", workspace, KAFKA_POD, 9092), "the workspace has no Kafka client"
    assert not _allowed(policies, "Egress", workspace, OTHER_POD | {"ports": {}}, 8101)
    assert not _allowed(policies, "Egress", workspace, _external("93.184.215.14"), 443)


def test_only_the_notification_workers_reach_the_internet_and_never_private_addresses() -> None:
    policies = _network_policies()
    pods = _werkbrug_pods()
    notification = pods["notification-worker"]
    for ip in ("93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"):
        assert _allowed(policies, "Egress", notification, _external(ip), 443), ip
        assert _allowed(policies, "Egress", notification, _external(ip), 8443), ip
    for ip in ("10.0.0.1", "172.20.1.1", "192.168.1.1", "169.254.169.254", "127.0.0.1", "fd00::1", "fe80::1"):
        for port in (80, 443, 8080, 9092, 6379):
            assert not _allowed(policies, "Egress", notification, _external(ip), port), (ip, port)
    for cidr in PRIVATE:
        assert not _allowed(policies, "Egress", notification, _external(str(ipaddress.ip_network(cidr)[1])), 443)
    # SMTP, also to a relay inside the cluster.
    for port in (25, 465, 587):
        assert _allowed(policies, "Egress", notification, _external("10.30.0.25"), port), port
    for name, pod in pods.items():
        if name != "notification-worker":
            assert not _allowed(policies, "Egress", pod, _external("93.184.215.14"), 443), name


# --- Ingress ----------------------------------------------------------------------------------------------

# Every public path of DESIGN.md (and the README's API table) with the service that answers it.
PUBLIC_PATHS = {
    "/vacancies": "vacancy",
    "/vacancies/v-1": "vacancy",
    "/candidates": "candidate",
    "/candidates/c-1": "candidate",
    "/candidates/c-1/handover": "candidate",
    "/candidates/c-1/consent": "candidate",
    "/candidates/c-1/ladder": "candidate",
    "/candidates/c-1/matches": "matching",
    "/vacancies/v-1/matches": "matching",
    "/vacancies/v-1/interest": "matching",
    "/vacancies/v-1/introductions": "matching",
    "/placements": "matching",
    "/placements/p-1": "matching",
    "/placements/p-1/checkins": "matching",
    "/placements/p-1/end": "matching",
    "/caseload": "matching",
    "/introductions": "matching",
    "/introductions/i-1/accept": "matching",
    "/introductions/i-1/decline": "matching",
    "/insights": "matching",
    "/exposure": "matching",
    "/ranking-log": "matching",
    "/alerts": "notification",
    "/alerts/a-1/ack": "notification",
    "/escalations": "notification",
    "/escalations/e-1/ack": "notification",
    "/jobcoaches/jc-1/channels": "notification",
}
NOT_PUBLIC = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/tenants/noord-limburg/audit"]


API_HOST = "api.werkbrug.example"
WORKSPACE_HOST = "werkbrug.example"


def _ingress_routes(host: str = API_HOST) -> list[tuple[re.Pattern[str], str, str]]:
    """The routes of one host, over all the example Ingresses."""
    ingresses = _by_kind(_rendered_copy(K8S_DIR / "ingress"), "Ingress")
    assert set(ingresses) == {"werkbrug-api", "werkbrug-workspace"}
    routes = []
    for ingress in ingresses.values():
        assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        assert {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]} == hosts
        for rule in ingress["spec"]["rules"]:
            if rule["host"] != host:
                continue
            for path in rule["http"]["paths"]:
                assert path["pathType"] == "ImplementationSpecific"
                backend = path["backend"]["service"]
                # The NGINX controllers anchor each expression at the start.
                routes.append((re.compile("^" + path["path"]), backend["name"], backend["port"]["name"]))
    assert routes, host
    return routes


def test_ingress_routes_every_public_path_to_its_service_and_nothing_else() -> None:
    routes = _ingress_routes()
    services = _by_kind(_base(), "Service")
    for _pattern, service, port in routes:
        assert port in {p["name"] for p in services[service]["spec"]["ports"]}, (service, port)
    assert WORKSPACE not in {service for _, service, _ in routes}, "the workspace has a host of its own"
    for tenant in ("noord-limburg", "groot-amsterdam"):
        for suffix, expected in PUBLIC_PATHS.items():
            path = f"/v1/tenants/{tenant}{suffix}"
            matched = [service for pattern, service, _ in routes if pattern.search(path)]
            assert matched == [expected], f"{path}: {matched}"
    for path in NOT_PUBLIC:
        assert not [service for pattern, service, _ in routes if pattern.search(path)], path


def _workspace_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A concrete path for every route of the workspace's application, by its rule."""
    for name in ("DATABASE_URL", "REGISTRY_DATABASE_URL", "WORKSPACE_SECRET_KEY", "WERKBRUG_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WERKBRUG_VAR_DIR", str(tmp_path))
    from services.workspace import app

    # Only its routes are wanted: the rest of the session keeps its own logging.
    monkeypatch.setattr(app, "configure_logging", lambda *args, **kwargs: None)
    samples = {"filename": "vendor/htmx/htmx.min.js", "tenant": "noord-limburg"}
    paths = {}
    for rule in app.create_app().url_map.iter_rules():
        paths[rule.rule] = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: samples.get(m.group(1), "x-1"), rule.rule)
    return paths


def test_ingress_routes_the_workspace_pages_on_their_own_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    routes = _ingress_routes(WORKSPACE_HOST)
    services = _by_kind(_base(), "Service")
    assert {service for _, service, _ in routes} == {WORKSPACE}
    for _pattern, service, port in routes:
        assert port in {p["name"] for p in services[service]["spec"]["ports"]}, (service, port)
    paths = _workspace_paths(monkeypatch, tmp_path)
    # DESIGN.md's workspace paths are among the application's routes.
    for rule in ("/", "/sign-in", "/sign-out", "/caseload", "/candidates/<candidate_id>", "/placements/<placement_id>"):
        assert rule in paths, rule
    for rule in ("/introductions", "/region", "/insights", "/vacancies", "/static/<path:filename>"):
        assert rule in paths, rule
    internal = {"/healthz", "/readyz", "/metrics"}
    for rule, path in paths.items():
        matched = [service for pattern, service, _ in routes if pattern.search(path)]
        assert matched == ([] if rule in internal else [WORKSPACE]), f"{rule} ({path}): {matched}"
    # The API's paths and documentation are not the workspace host's business.
    for path in ("/v1/tenants/noord-limburg/candidates", "/docs", "/openapi.json"):
        assert not [service for pattern, service, _ in routes if pattern.search(path)], path
