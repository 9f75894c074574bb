"""Schemathesis against a service's own OpenAPI document, in-process: every answer must be as documented.

Used by the test suite (a few hundred cases per service) and by ``make bench`` (a thousand or more). Cases
come from the document itself, positive and negative; each is sent with a key of a role the operation
allows (and now and then one it does not), for the test's own region, and now and then with the id of an
object that exists, so that the checks see more than 401 and 404. Checks: no server error; status codes,
content types, headers and bodies as documented; invalid input refused with a 4xx.

Needs the dev extras (schemathesis); nothing in the services imports this.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROLES_EXTENSION = "x-werkbrug-roles"


@dataclass
class ConformanceReport:
    service: str
    operations: int = 0
    cases: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "operations": self.operations,
            "cases": self.cases,
            "seconds": round(self.seconds, 1),
            "cases_per_second": round(self.cases / self.seconds, 1) if self.seconds else None,
            "statuses": dict(sorted(self.statuses.items())),
            "failures": self.failures,
        }


def _checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]


def run_conformance(
    app,
    service: str,
    *,
    tenant: str,
    keys: Mapping[str, str],
    known_ids: Mapping[str, list[str]] | None = None,
    cases: int = 300,
    seed: int = 0,
) -> ConformanceReport:
    """Send about ``cases`` generated requests, spread over the document's operations, and collect every
    failed check. ``keys`` maps a role to a key of the test's region; ``known_ids`` a path parameter's
    name to ids that exist."""
    import schemathesis
    from schemathesis.core.result import Err
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes in a way schemathesis cannot use
            raise result.err()
        operations.append(result.ok())
    report = ConformanceReport(service, operations=len(operations))
    per_operation = max(1, math.ceil(cases / max(1, len(operations)) / 2))
    checks = _checks()
    known_ids = known_ids or {}
    started = time.perf_counter()
    for operation in operations:
        roles = operation.definition.raw.get(ROLES_EXTENSION) or list(keys)
        others = [role for role in keys if role not in roles]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed = [{"tenant": tenant}]
            for name, ids in known_ids.items():
                if "{" + name + "}" in operation.path:
                    fixed += [{"tenant": tenant, name: value} for value in ids]
            strategies = [operation.as_strategy(generation_mode=mode, path_parameters=params) for params in fixed]
            _run_operation(
                report, st.one_of(*strategies), roles, others, keys, checks, per_operation, seed, operation.label
            )
    report.seconds = time.perf_counter() - started
    return report


def _run_operation(report, strategy, roles, others, keys, checks, examples, seed, label) -> None:
    rng = random.Random(f"{seed}:{label}")

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def exercise(case):
        role = rng.choice(others) if others and rng.random() < 0.1 else rng.choice(roles)
        # A negative case may leave the bearer header out on purpose: it is then sent without one.
        headers = {"Authorization": f"Bearer {keys[role]}"} if "Authorization" in (case.headers or {}) else {}
        response = case.call(headers=headers)
        report.cases += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:  # every failed check is reported, the run goes on
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            message = f"{label}: {' / '.join(lines[:6])[:500]}"
            if message not in report.failures:
                report.failures.append(message)

    exercise()
