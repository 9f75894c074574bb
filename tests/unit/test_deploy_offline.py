"""Offline checks of everything that deploys Werkbrug: compose, Kubernetes, Prometheus and Grafana.

Nothing here needs Docker, a cluster or the network. promtool is the one binary used; without it the
promtool tests skip locally and fail in CI (where ``CI`` is set and prometheus is installed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from prometheus_client.metrics import MetricWrapperBase

from admin.services import metric_modules
from services.workspace.config import API_SERVICES
from shared.topics import TOPIC_SPECS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "werkbrug.rules.yml"
RULES_TEST_FILE = PROMETHEUS_DIR / "rules" / "werkbrug.rules.test.yml"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
README = ROOT / "README.md"
DATASOURCE_FILE = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
POSTGRES_INIT = ROOT / "deploy" / "postgres" / "init.sql"
K8S_DIR = ROOT / "k8s"
SECRET_EXAMPLE = K8S_DIR / "base" / "secret.example.yaml"

KUBERNETES_VERSION = "1.30"
# Custom resources: Strimzi's Kafka, KEDA's ScaledObject, the Prometheus Operator's PodMonitor.
CUSTOM_API_GROUPS = ("kafka.strimzi.io/", "keda.sh/", "monitoring.coreos.com/")
DATASOURCE_UID = "werkbrug-prometheus"
DB_SECRET = "werkbrug-db"
WORKSPACE_SECRET = "werkbrug-workspace"

SERVICES: dict[str, tuple[int, int]] = {
    "candidate": (8101, 9101),
    "vacancy": (8102, 9102),
    "matching": (8103, 9103),
    "notification": (8104, 9104),
}
# The workspace: web only, on its own port, with its own database.
WORKSPACE_PORT = 8100


def _defined_metrics() -> tuple[set[str], set[str], set[str]]:
    """The exposed names of the counters, gauges and histograms shared/metrics.py and the services' metrics.py
    define: the only metrics the dashboards and rules may use."""
    counters, gauges, histograms = set(), set(), set()
    for module in metric_modules():
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                {"counter": counters, "gauge": gauges, "histogram": histograms}[value._type].add(value._name)
    return {f"{name}_total" for name in counters}, gauges, histograms


COUNTERS, GAUGES, HISTOGRAMS = _defined_metrics()
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_NAME = re.compile(r"werkbrug_[a-z_]+")

# What the dashboard's Grafana variables stand for when its queries are checked outside Grafana.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "${tenant}": "noord-limburg",
    "$tenant": "noord-limburg",
}


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_all_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE_FILE)


def _unknown_metric_names(expressions: list[str]) -> set[str]:
    unknown = set()
    for expr in expressions:
        for name in METRIC_NAME.findall(expr):
            if name in COUNTERS or name in GAUGES or name in HISTOGRAMS:
                continue
            if name.endswith(HISTOGRAM_SUFFIXES) and name.rsplit("_", 1)[0] in HISTOGRAMS:
                continue
            unknown.add(name)
    return unknown


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI", "").lower() not in {"", "0", "false"}:
            pytest.fail("promtool is missing; CI has to install prometheus (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def _run_promtool(*args: str) -> None:
    result = subprocess.run([_promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


# --- docker compose ---------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_compose_runs_a_web_and_a_worker_container_per_service() -> None:
    services = _compose()["services"]
    expected = {f"{name}-{process}" for name in SERVICES for process in ("web", "worker")}
    expected |= {"workspace-web", "kafka", "postgres", "init", "prometheus", "grafana"}
    assert set(services) == expected

    for name, (web_port, worker_port) in SERVICES.items():
        web = services[f"{name}-web"]
        assert web["command"][0] == "gunicorn"
        assert f"services.{name}.app:create_app()" in web["command"]
        assert web["environment"]["WERKBRUG_PORT"] == str(web_port)
        assert f"127.0.0.1:{web_port}:{web_port}" in web["ports"]
        assert f"http://127.0.0.1:{web_port}/healthz" in " ".join(web["healthcheck"]["test"])
        assert "/tmp/metrics" in web["tmpfs"]

        worker = services[f"{name}-worker"]
        assert worker["command"] == ["python", "-m", f"services.{name}.worker"]
        assert worker["environment"]["WORKER_METRICS_PORT"] == str(worker_port)
        assert f"http://127.0.0.1:{worker_port}/metrics" in " ".join(worker["healthcheck"]["test"])

        for container in (web, worker):
            env = container["environment"]
            assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
            assert env["DATABASE_URL"].endswith(f"@postgres:5432/{name}")
            assert env["REGISTRY_DATABASE_URL"].endswith("@postgres:5432/registry")
            assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
            assert env["WERKBRUG_HOST"] == "0.0.0.0"
            assert container["depends_on"]["init"] == {"condition": "service_completed_successfully"}
            assert container["image"] == services["init"]["image"]


def test_compose_runs_the_workspace_against_the_four_apis() -> None:
    services = _compose()["services"]
    workspace = services["workspace-web"]
    assert workspace["command"][0] == "gunicorn"
    assert "services.workspace.app:create_app()" in workspace["command"]
    assert workspace["image"] == services["init"]["image"]
    env = workspace["environment"]
    assert env["WERKBRUG_PORT"] == str(WORKSPACE_PORT)
    assert env["WERKBRUG_HOST"] == "0.0.0.0"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["DATABASE_URL"].endswith("@postgres:5432/workspace")
    assert env["REGISTRY_DATABASE_URL"].endswith("@postgres:5432/registry")
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/metrics" and "/tmp/metrics" in workspace["tmpfs"]
    # Every API it calls, by its compose name and the port config.API_SERVICES expects.
    assert {key for key in env if key.endswith("_API_URL")} == {f"{name.upper()}_API_URL" for name in API_SERVICES}
    for name, port in API_SERVICES.items():
        assert SERVICES[name][0] == port
        assert env[f"{name.upper()}_API_URL"] == f"http://{name}-web:{port}"
    # Never a fixed session key in the file: empty (one made per start) unless the operator sets it.
    assert env["WORKSPACE_SECRET_KEY"] == "${WORKSPACE_SECRET_KEY:-}"
    assert env["WORKSPACE_PUBLIC_URL"].endswith(f"127.0.0.1:{WORKSPACE_PORT}}}")
    assert f"127.0.0.1:{WORKSPACE_PORT}:{WORKSPACE_PORT}" in workspace["ports"]
    assert f"http://127.0.0.1:{WORKSPACE_PORT}/healthz" in " ".join(workspace["healthcheck"]["test"])
    # Started after its database is migrated and once the APIs it calls are up; it needs no Kafka.
    depends = workspace["depends_on"]
    assert depends["init"] == {"condition": "service_completed_successfully"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    for name in SERVICES:
        assert depends[f"{name}-web"] == {"condition": "service_healthy"}, name
    assert "kafka" not in depends


def test_compose_init_migrates_creates_topics_and_the_first_tenant() -> None:
    init = _compose()["services"]["init"]
    script = init["command"][-1]
    assert "werkbrug db upgrade --registry" in script
    for name in SERVICES:
        assert f"werkbrug db upgrade --service {name}" in script
        assert init["environment"][f"{name.upper()}_DATABASE_URL"].endswith(f"/{name}")
    assert 'DATABASE_URL="$$WORKSPACE_DATABASE_URL" werkbrug workspace upgrade-db' in script
    assert init["environment"]["WORKSPACE_DATABASE_URL"].endswith("@postgres:5432/workspace")
    # A data directory from before the workspace lacks its database; init creates it before migrating.
    assert script.index("CREATE DATABASE") < script.index("werkbrug workspace upgrade-db")
    assert "werkbrug kafka create-topics" in script
    assert "werkbrug tenants create noord-limburg" in script
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_postgres_init_creates_a_database_per_service_and_the_registry() -> None:
    created = set(re.findall(r"^CREATE DATABASE (\w+);", POSTGRES_INIT.read_text(encoding="utf-8"), re.MULTILINE))
    assert created == {*SERVICES, "workspace", "registry"}
    postgres = _compose()["services"]["postgres"]
    assert any(v.startswith("./deploy/postgres/init.sql:/docker-entrypoint-initdb.d/") for v in postgres["volumes"])


def test_compose_mounts_the_monitoring_configuration() -> None:
    services = _compose()["services"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = services["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in grafana["volumes"]
    provider = _load_yaml(ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "werkbrug.yml")
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    # Grafana's admin password may only default to something for local use; it is never fixed.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")


# --- Prometheus -------------------------------------------------------------------------------------------


def _scrape_targets(config: dict[str, Any]) -> set[tuple[str, str, str]]:
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "werkbrug")
    return {
        (static["labels"]["service"], static["labels"]["process"], target)
        for static in job["static_configs"]
        for target in static["targets"]
    }


@pytest.mark.parametrize(
    ("config_name", "host"),
    [("prometheus.yml", "{service}-{process}"), ("prometheus.local.yml", "127.0.0.1")],
)
def test_prometheus_scrapes_every_process_with_service_and_process_labels(config_name: str, host: str) -> None:
    config = _load_yaml(PROMETHEUS_DIR / config_name)
    expected = {
        (service, process, f"{host.format(service=service, process=process)}:{port}")
        for service, ports in SERVICES.items()
        for process, port in zip(("web", "worker"), ports, strict=True)
    }
    # The workspace serves /metrics too; it has no worker.
    expected.add(("workspace", "web", f"{host.format(service='workspace', process='web')}:{WORKSPACE_PORT}"))
    assert _scrape_targets(config) == expected
    assert config["rule_files"] == ["rules/werkbrug.rules.yml"]


def test_compose_prometheus_targets_are_compose_services() -> None:
    compose_services = _compose()["services"]
    for _service, _process, target in _scrape_targets(_load_yaml(PROMETHEUS_DIR / "prometheus.yml")):
        assert target.rsplit(":", 1)[0] in compose_services


@pytest.mark.parametrize("config_name", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config_name: str) -> None:
    _run_promtool("check", "config", str(PROMETHEUS_DIR / config_name))


def test_promtool_check_rules() -> None:
    _run_promtool("check", "rules", str(RULES_FILE))


def test_promtool_test_rules() -> None:
    _run_promtool("test", "rules", str(RULES_TEST_FILE))


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(RULES_FILE)["groups"] for rule in group["rules"] if "alert" in rule]


def test_alert_rules_have_severity_summary_and_description() -> None:
    rules = _alert_rules()
    assert rules
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_alert_rules_cover_the_required_conditions() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in _alert_rules()}
    required = {
        "up{": "a target down",
        "werkbrug_dead_letters_total": "dead letters",
        "werkbrug_consumer_lag_messages": "consumer lag",
        "werkbrug_outbox_pending_events": "outbox backlog",
        "werkbrug_alert_deliveries_total": "alert deliveries failing",
        'status=~"5.."': "5xx ratio",
        "werkbrug_alert_origin_latency_seconds_bucket": "the alert-latency target (p95 at most 1 s)",
    }
    missing = [what for needle, what in required.items() if not any(needle in e for e in exprs.values())]
    assert not missing, f"no alert rule for: {missing}"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in _load_yaml(RULES_TEST_FILE)["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in _alert_rules()}
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested staying quiet"


def _github_anchor(heading: str) -> str:
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return anchor.replace(" ", "-")


def _readme_sections() -> dict[str, str]:
    """README sections by their GitHub anchor, each with its text up to the next heading."""
    sections: dict[str, str] = {}
    current = None
    for line in README.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading:
            current = _github_anchor(heading.group(1))
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_every_alert_has_a_runbook_section_in_the_readme() -> None:
    sections = _readme_sections()
    problems = []
    for rule in _alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        page, _, anchor = url.partition("#")
        if page != "README.md" or anchor != rule["alert"].lower():
            problems.append(f"{rule['alert']}: runbook_url {url!r} is not README.md#{rule['alert'].lower()}")
            continue
        text = sections.get(anchor)
        if text is None:
            problems.append(f"{rule['alert']}: the README has no section #{anchor}")
            continue
        for part in ("What it means", "What to check", "What to do"):
            if part not in text:
                problems.append(f"{rule['alert']}: its README section says nothing under {part!r}")
    assert not problems, "\n".join(problems)


def test_alert_rules_use_only_werkbrug_metric_names() -> None:
    assert _unknown_metric_names([rule["expr"] for rule in _alert_rules()]) == set()


# --- Grafana ----------------------------------------------------------------------------------------------


def _dashboard_files() -> list[Path]:
    files = sorted(DASHBOARD_DIR.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARD_DIR}"
    return files


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in _dashboard_files()]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [panel for panel in panels if panel.get("type") != "row"]


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"] for dashboard in _dashboards() for panel in _panels(dashboard) for target in panel["targets"]
    ]


def test_grafana_datasource_has_the_fixed_uid() -> None:
    datasources = _load_yaml(DATASOURCE_FILE)["datasources"]
    assert [ds["uid"] for ds in datasources] == [DATASOURCE_UID]
    assert datasources[0]["type"] == "prometheus"
    assert datasources[0]["url"] == "http://prometheus:9090"


def test_dashboards_have_unique_uids_and_a_tenant_variable() -> None:
    dashboards = _dashboards()
    uids = [dashboard["uid"] for dashboard in dashboards]
    assert all(uids) and len(set(uids)) == len(uids), uids
    for dashboard in dashboards:
        variables = {var["name"]: var for var in dashboard["templating"]["list"]}
        tenant = variables["tenant"]
        query = tenant["query"]["query"] if isinstance(tenant["query"], dict) else tenant["query"]
        assert query == "label_values(werkbrug_vacancies_posted_total, tenant)"
        assert tenant["datasource"]["uid"] == DATASOURCE_UID


def test_every_dashboard_panel_queries_the_werkbrug_datasource() -> None:
    panels = [panel for dashboard in _dashboards() for panel in _panels(dashboard)]
    assert panels
    problems = []
    for panel in panels:
        title = panel.get("title", panel.get("id"))
        if (panel.get("datasource") or {}).get("uid") != DATASOURCE_UID:
            problems.append(f"{title}: panel datasource is not {DATASOURCE_UID}")
        targets = panel.get("targets") or []
        if not any((target.get("expr") or "").strip() for target in targets):
            problems.append(f"{title}: no target with an expression")
        for target in targets:
            uid = (target.get("datasource") or {}).get("uid", DATASOURCE_UID)
            if uid != DATASOURCE_UID:
                problems.append(f"{title}: target {target.get('refId')} uses datasource {uid}")
    assert not problems, "\n".join(problems)


def test_the_overview_has_a_row_per_concern_for_operators() -> None:
    (overview,) = [d for d in _dashboards() if d["uid"] == "werkbrug-overview"]
    rows = [panel["title"] for panel in overview["panels"] if panel.get("type") == "row"]
    assert rows == ["Platform", "Pipeline", "Matching", "Placements", "Delivery"]
    # Every panel sits under a row, and the panel ids are unique.
    assert overview["panels"][0]["type"] == "row"
    ids = [panel["id"] for panel in overview["panels"]]
    assert len(set(ids)) == len(ids)


# Units Grafana shows as "per second"; a custom "suffix:" unit must say /s itself.
PER_SECOND_UNITS = {"reqps", "ops", "cps", "rps", "wps", "iops", "percentunit"}


def test_rates_are_per_second_and_do_not_change_with_zoom() -> None:
    problems = []
    for dashboard in _dashboards():
        for panel in _panels(dashboard):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            for target in panel["targets"]:
                expr = target["expr"]
                # increase() over the auto interval draws a number that grows and shrinks with the zoom.
                if re.search(r"increase\([^\]]*\[\$\{?__(rate_)?interval", expr):
                    problems.append(f"{panel['title']}: increase over the auto interval: {expr}")
                plain_rate = "rate(" in expr and "histogram_quantile" not in expr and panel["type"] == "timeseries"
                if plain_rate and unit not in PER_SECOND_UNITS and not unit.endswith("/s"):
                    problems.append(f"{panel['title']}: a rate drawn in {unit!r}, not a per-second unit")
    assert not problems, "\n".join(problems)


def test_per_region_rankings_are_top_k_tables() -> None:
    # 35 regions as 35 lines are noise: whatever is broken down by tenant is a table of the top few.
    problems = []
    for dashboard in _dashboards():
        for panel in _panels(dashboard):
            for target in panel["targets"]:
                if re.search(r"by \([^)]*\btenant\b", target["expr"]):
                    if panel["type"] != "table" or not target["expr"].startswith("topk("):
                        problems.append(f"{panel['title']}: per-tenant series outside a top-k table")
                    elif not (target.get("instant") and target.get("format") == "table"):
                        problems.append(f"{panel['title']}: a top-k table needs an instant table query")
    assert not problems, "\n".join(problems)


def test_the_overview_shows_index_builds_placements_at_risk_and_escalations() -> None:
    exprs = " ".join(_dashboard_exprs())
    for needle in (
        "werkbrug_matching_index_build_seconds_count",
        "werkbrug_matching_index_build_seconds_bucket",
        'type="placement_at_risk"',
        'type="placement_at_risk_escalated"',
        'type="checkin_overdue"',
        "werkbrug_alert_origin_latency_seconds_bucket",
        "werkbrug_alert_latency_seconds_bucket",
        "werkbrug_alert_deliveries_total",
    ):
        assert needle in exprs, needle


def test_dashboard_filters_per_tenant_panels_by_the_tenant_variable() -> None:
    for expr in _dashboard_exprs():
        if "tenant" in METRIC_NAME.sub("", expr) or any(
            name in expr
            for name in (
                "werkbrug_vacancies_posted_total",
                "werkbrug_candidates_registered_total",
                "werkbrug_matches_proposed_total",
                "werkbrug_alerts_created_total",
                "werkbrug_alert_deliveries_total",
            )
        ):
            assert 'tenant=~"$tenant"' in expr, expr


def test_dashboard_uses_only_werkbrug_metric_names() -> None:
    exprs = _dashboard_exprs()
    exprs += [json.dumps(var.get("query")) for d in _dashboards() for var in d["templating"]["list"]]
    assert _unknown_metric_names(exprs) == set()


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no "parse this query" command, but check rules parses every expression of a rule file.
    rules = []
    for index, expr in enumerate(_dashboard_exprs()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:expr_{index}", "expr": expr})
    rules_file = tmp_path / "dashboard.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    _run_promtool("check", "rules", str(rules_file))


# --- Kubernetes -------------------------------------------------------------------------------------------


def _kustomizations() -> list[Path]:
    return sorted(K8S_DIR.rglob("kustomization.yaml"))


def _manifests() -> list[Path]:
    return sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml")


def _kustomized_documents() -> list[dict[str, Any]]:
    referenced = {path for kustomization in _kustomizations() for path in _resource_files(kustomization)}
    return [doc for path in sorted(referenced) for doc in _load_all_yaml(path)]


def _resource_files(kustomization: Path) -> list[Path]:
    resources = (_load_yaml(kustomization) or {}).get("resources", [])
    paths = [(kustomization.parent / resource).resolve() for resource in resources]
    return [path for path in paths if path.is_file()]


@pytest.mark.parametrize("manifest", _manifests(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_kubernetes_manifest_is_valid(manifest: Path) -> None:
    documents = _load_all_yaml(manifest)
    assert documents, f"{manifest} holds no documents"
    for doc in documents:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
        if doc["apiVersion"].startswith(CUSTOM_API_GROUPS):
            # Not in the Kubernetes schemas: test_deploy_k8s.py checks them against their CRDs' schemas.
            assert doc["metadata"]["name"]
            assert isinstance(doc.get("spec"), dict) and doc["spec"], doc["metadata"]["name"]
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kustomization", _kustomizations(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_kustomization_resources_exist(kustomization: Path) -> None:
    config = _load_yaml(kustomization)
    assert config["kind"] == "Kustomization"
    assert config.get("resources"), f"{kustomization} lists no resources"
    for resource in config["resources"]:
        path = kustomization.parent / resource
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{resource}: a directory without kustomization.yaml"
        else:
            assert path.is_file(), f"{kustomization}: {resource} does not exist"


def test_every_manifest_is_in_a_kustomization_except_the_secret_example() -> None:
    referenced = {path for kustomization in _kustomizations() for path in _resource_files(kustomization)}
    assert SECRET_EXAMPLE.is_file()
    assert SECRET_EXAMPLE.resolve() not in referenced, "the example Secret must never be applied"
    orphans = {p.resolve() for p in _manifests()} - referenced - {SECRET_EXAMPLE.resolve()}
    assert not orphans, f"manifests no kustomization includes: {sorted(map(str, orphans))}"


def test_kustomized_resources_hold_no_secrets_and_use_the_db_secret_by_name() -> None:
    docs = _kustomized_documents()
    assert not [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Secret"]
    secret_refs = set()
    for doc in docs:
        pod_spec = _pod_spec(doc) or {}
        for container in pod_spec.get("containers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret_refs.add(ref["name"])
            assert not [e for e in container.get("env", []) if "DATABASE_URL" in e["name"] and "value" in e]
    assert secret_refs == {DB_SECRET, WORKSPACE_SECRET}
    examples = {doc["metadata"]["name"]: doc for doc in _load_all_yaml(SECRET_EXAMPLE)}
    assert set(examples) == {DB_SECRET, WORKSPACE_SECRET}
    keys = {f"{name}-database-url" for name in (*SERVICES, "workspace")} | {"registry-database-url"}
    assert set(examples[DB_SECRET]["stringData"]) == keys
    assert set(examples[WORKSPACE_SECRET]["stringData"]) == {"secret-key"}
    # The example's placeholder is too short for the workspace to start with it, should it be applied.
    assert len(examples[WORKSPACE_SECRET]["stringData"]["secret-key"]) < 32


def test_the_workspace_secret_key_comes_only_from_its_secret() -> None:
    found = []
    for doc in _kustomized_documents():
        if doc["kind"] == "ConfigMap":
            assert "WORKSPACE_SECRET_KEY" not in doc.get("data", {}), doc["metadata"]["name"]
        for container in (_pod_spec(doc) or {}).get("containers", []):
            for env in container.get("env", []):
                if env["name"] == "WORKSPACE_SECRET_KEY":
                    assert "value" not in env
                    found.append(env["valueFrom"]["secretKeyRef"])
    assert found == [{"name": WORKSPACE_SECRET, "key": "secret-key"}]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in {"Deployment", "Job"}:
        return doc["spec"]["template"]["spec"]
    return None


def _deployments() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _kustomized_documents() if doc["kind"] == "Deployment"}


def test_k8s_web_and_worker_deployments_per_service() -> None:
    deployments = _deployments()
    expected = {f"{name}-{process}" for name in SERVICES for process in ("web", "worker")}
    assert set(deployments) == expected | {"workspace-web"}
    for name, (web_port, worker_port) in SERVICES.items():
        web = deployments[f"{name}-web"]["spec"]["template"]["spec"]
        (container,) = web["containers"]
        assert f"services.{name}.app:create_app()" in container["command"]
        assert container["ports"] == [{"name": "http", "containerPort": web_port}]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in container["env"]}
        assert env["PROMETHEUS_MULTIPROC_DIR"]["value"] == "/tmp/metrics"
        assert env["WERKBRUG_PORT"]["value"] == str(web_port)
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/tmp/metrics"} <= mounts

        worker = deployments[f"{name}-worker"]["spec"]["template"]["spec"]
        (container,) = worker["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}.worker"]
        env = {e["name"]: e for e in container["env"]}
        assert env["WORKER_METRICS_PORT"]["value"] == str(worker_port)
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}

        for spec in (web, worker):
            assert spec["serviceAccountName"] == name
            assert spec["securityContext"]["runAsNonRoot"] is True
            (container,) = spec["containers"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"] and container["resources"]["limits"]
            mounted = {m["name"] for m in container["volumeMounts"]}
            assert all("emptyDir" in v for v in spec["volumes"] if v["name"] in mounted)


def test_k8s_workspace_deployment() -> None:
    docs = _kustomized_documents()
    spec = _deployments()["workspace-web"]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "workspace"
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert "services.workspace.app:create_app()" in container["command"]
    assert container["ports"] == [{"name": "http", "containerPort": WORKSPACE_PORT}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["WERKBRUG_PORT"]["value"] == str(WORKSPACE_PORT)
    assert env["PROMETHEUS_MULTIPROC_DIR"]["value"] == "/tmp/metrics"
    # In production the workspace refuses to start without its key instead of making one per pod.
    assert env["WERKBRUG_ENV"]["value"] == "production"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": DB_SECRET, "key": "workspace-database-url"}
    assert env["REGISTRY_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "registry-database-url"
    assert {"/tmp", "/tmp/metrics"} <= {m["mountPath"] for m in container["volumeMounts"]}
    config_maps = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
    referenced = [source["configMapRef"]["name"] for source in container["envFrom"]]
    assert referenced == ["werkbrug-config", "workspace-config"]
    settings = config_maps["workspace-config"]["data"]
    assert settings["WORKSPACE_SECURE_COOKIES"] == "true", "behind the Ingress's TLS"
    assert settings["WORKSPACE_PUBLIC_URL"].startswith("https://")
    # Every API it calls, through the Service of that name on the port the Service exposes.
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    for name, port in API_SERVICES.items():
        assert settings[f"{name.upper()}_API_URL"] == f"http://{name}:{port}"
        assert port in {p["port"] for p in services[name]["spec"]["ports"]}
    assert [p["port"] for p in services["workspace"]["spec"]["ports"]] == [WORKSPACE_PORT]


def test_k8s_has_a_service_account_and_service_per_service_and_a_migration_job() -> None:
    docs = _kustomized_documents()
    by_kind: dict[str, set[str]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    assert {*SERVICES, "workspace"} <= by_kind["ServiceAccount"]
    assert {*SERVICES, "workspace"} <= by_kind["Service"]
    assert "werkbrug" in by_kind["Namespace"]
    assert "werkbrug-config" in by_kind["ConfigMap"]
    (job,) = [doc for doc in docs if doc["kind"] == "Job"]
    script = " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "werkbrug db upgrade --registry" in script
    for name in SERVICES:
        assert f"werkbrug db upgrade --service {name}" in script
    assert 'DATABASE_URL="$WORKSPACE_DATABASE_URL" werkbrug workspace upgrade-db' in script


def test_strimzi_resources_describe_a_kraft_cluster_with_the_werkbrug_topics() -> None:
    docs = [doc for doc in _kustomized_documents() if doc["apiVersion"].startswith("kafka.strimzi.io/")]
    (kafka,) = [doc for doc in docs if doc["kind"] == "Kafka"]
    cluster = kafka["metadata"]["name"]
    pools = [doc for doc in docs if doc["kind"] == "KafkaNodePool"]
    assert pools
    assert {role for pool in pools for role in pool["spec"]["roles"]} == {"controller", "broker"}
    topics = {doc["spec"].get("topicName", doc["metadata"]["name"]): doc for doc in docs if doc["kind"] == "KafkaTopic"}
    for doc in [*pools, *topics.values()]:
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == cluster

    assert set(topics) == {spec.topic.value for spec in TOPIC_SPECS}
    for spec in TOPIC_SPECS:
        topic = topics[spec.topic.value]["spec"]
        assert topic["partitions"] == spec.partitions, spec.topic
        assert {k: str(v) for k, v in (topic.get("config") or {}).items()} == spec.config, spec.topic

    config_map = next(doc for doc in _kustomized_documents() if doc["kind"] == "ConfigMap")
    assert config_map["data"]["KAFKA_BOOTSTRAP_SERVERS"] == f"{cluster}-kafka-bootstrap:9092"
    assert config_map["data"]["WERKBRUG_HOST"] == "0.0.0.0"


def _assert_replication_fits_the_nodes(docs: list[dict[str, Any]]) -> None:
    """No replication factor above the number of Kafka nodes, no min.insync.replicas above a factor."""
    pools = [doc for doc in docs if doc["kind"] == "KafkaNodePool"]
    if not pools:
        return
    nodes = sum(pool["spec"]["replicas"] for pool in pools)
    (kafka,) = [doc for doc in docs if doc["kind"] == "Kafka"]
    config = kafka["spec"]["kafka"]["config"]
    factors = {key: value for key, value in config.items() if key.endswith("replication.factor")}
    factors |= {
        f"topic {doc['metadata']['name']}": doc["spec"]["replicas"] for doc in docs if doc["kind"] == "KafkaTopic"
    }
    assert all(1 <= factor <= nodes for factor in factors.values()), (nodes, factors)
    assert config["min.insync.replicas"] <= min(factors.values()), (config["min.insync.replicas"], factors)
    assert config["transaction.state.log.min.isr"] <= config["transaction.state.log.replication.factor"]


def test_kafka_replication_fits_the_kafka_nodes() -> None:
    kustomization = K8S_DIR / "kafka" / "kustomization.yaml"
    _assert_replication_fits_the_nodes([doc for path in _resource_files(kustomization) for doc in _load_all_yaml(path)])
