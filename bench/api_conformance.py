"""Schemathesis at length against every service's OpenAPI document: the test suite's check
(``tests/integration/test_openapi_conformance.py``) with at least 1,000 generated requests per service."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from shared.db import Database, upgrade
from shared.devstack.conformance import run_conformance
from shared.registry import Registry
from shared.web.app import ServiceContext

SERVICES = ("candidate", "vacancy", "matching", "notification")
TENANT = "noord-limburg"


def run(cases: int = 1000) -> dict:
    results = {}
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-conformance-") as scratch:
        root = Path(scratch)
        registry = Registry(Database(f"sqlite:///{root / 'registry.db'}"), cache_seconds=0)
        registry.migrate()
        registry.create_tenant(TENANT)
        keys = {
            "employer": registry.create_key(TENANT, "employer", "emp-1"),
            "jobcoach": registry.create_key(TENANT, "jobcoach", "jc-1"),
            "operator": registry.create_key(TENANT, "operator", None),
        }
        for service in SERVICES:
            url = f"sqlite:///{root / f'{service}.db'}"
            upgrade(importlib.import_module(f"services.{service}.store").MIGRATIONS, url)
            settings = importlib.import_module(f"services.{service}.config").load(
                {"DATABASE_URL": url, "RATELIMIT_ENABLED": "false"}
            )
            app = importlib.import_module(f"services.{service}.app").create_app(
                ServiceContext(settings, Database(url), registry)
            )
            report = run_conformance(app, service, tenant=TENANT, keys=keys, cases=cases, seed=1)
            results[service] = report.as_dict()
            print(service, results[service], flush=True)
    return results
