"""The four services' public APIs, called as the signed-in person with their short-lived key.

Every rule of the API therefore holds in the workspace too: what the API refuses, the page refuses.
Answers come back as plain JSON; a refusal raises :class:`ApiError` carrying the problem document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the APIs' largest page
# A region's whole caseload in one view: 50 pages of 100 candidates is far beyond any region today.
MOST_PAGES = 50


class ApiError(Exception):
    """The API refused (4xx) or failed (5xx); ``status`` 503 also stands for a service that did not answer."""

    def __init__(self, status: int, problem: dict | None = None) -> None:
        super().__init__(f"API answered {status}")
        self.status = status
        self.problem = problem or {}

    @property
    def errors(self) -> dict:
        return self.problem.get("errors") or {}


class Caseload(NamedTuple):
    entries: list[dict]
    loads: list[dict]
    # Matching's answer for the region; None from a matching that does not send it yet, and then nobody is
    # called out of sight rather than by a guessed number.
    contact_days: int | None


@dataclass(frozen=True)
class Tagged:
    """A resource with the ``ETag`` it was read with (None where the API gives none). A form that changes the
    resource carries the tag and sends it back as If-Match, so the change goes through only if nobody
    changed the resource since the form was shown."""

    body: dict
    etag: str | None


class ApiClient:
    """One connection pool per process for all four services."""

    def __init__(self, base_urls: dict[str, str], timeout_s: float) -> None:
        self.base_urls = base_urls
        self.timeout_s = timeout_s
        self.http = requests.Session()
        self.http.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=16))
        self.http.mount("https://", HTTPAdapter(pool_connections=8, pool_maxsize=16))
        self._pool: ThreadPoolExecutor | None = None

    def together(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run independent reads side by side: a page that needs two answers waits for the slower one only.
        The threads are made on first use, inside the gunicorn worker, never before it forks."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="api")
        futures = [self._pool.submit(call) for call in calls]
        return [future.result() for future in futures]

    def as_person(self, api_key: str, tenant: str) -> Api:
        return Api(self, api_key, tenant)

    def call(self, method: str, service: str, path: str, key: str, **kwargs) -> Any:
        response = self.send(method, service, path, key, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def send(
        self, method: str, service: str, path: str, key: str, *, if_match: str | None = None, **kwargs
    ) -> requests.Response:
        """The API's answer; a refusal raises :class:`ApiError`. ``if_match``: the ETag the change was
        based on, sent as If-Match (nothing is sent without one)."""
        url = f"{self.base_urls[service]}{path}"
        headers = {"Authorization": f"Bearer {key}"}
        if if_match:
            headers["If-Match"] = if_match
        try:
            response = self.http.request(method, url, headers=headers, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            log.warning("API unreachable", extra={"ctx": {"service": service, "error": type(exc).__name__}})
            raise ApiError(503) from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            if response.status_code >= 500:
                log.warning("API failed", extra={"ctx": {"service": service, "status": response.status_code}})
            raise ApiError(response.status_code, problem if isinstance(problem, dict) else {})
        return response


class Api:
    """The calls the pages make, for one person in one tenant."""

    def __init__(self, client: ApiClient, key: str, tenant: str) -> None:
        self.client = client
        self.key = key
        self.tenant = tenant

    def _call(self, method: str, service: str, path: str, **kwargs) -> Any:
        return self.client.call(method, service, f"/v1/tenants/{self.tenant}{path}", self.key, **kwargs)

    def _read_tagged(self, service: str, path: str) -> Tagged:
        response = self.client.send("GET", service, f"/v1/tenants/{self.tenant}{path}", self.key)
        return Tagged(response.json(), response.headers.get("ETag"))

    def every_page(self, fetch: Callable[[int], dict], most: int = MOST_PAGES) -> list[dict]:
        """All items of a paged list (up to ``most`` pages of the largest size the APIs give)."""
        items: list[dict] = []
        for page in range(1, most + 1):
            found = fetch(page)
            items.extend(found["items"])
            if page * found["page_size"] >= found["total"]:
                break
        return items

    # candidate
    def candidate(self, candidate_id: str) -> Tagged:
        return self._read_tagged("candidate", f"/candidates/{candidate_id}")

    def register_candidate(self, payload: dict) -> dict:
        return self._call("POST", "candidate", "/candidates", json=payload)

    def change_candidate(self, candidate_id: str, payload: dict, if_match: str | None = None) -> dict:
        return self._call("PATCH", "candidate", f"/candidates/{candidate_id}", json=payload, if_match=if_match)

    def candidates(self, jobcoach_id: str | None = None) -> list[dict]:
        params: dict[str, Any] = {"page_size": PAGE_SIZE}
        if jobcoach_id:
            params["jobcoach_id"] = jobcoach_id
        return self.every_page(
            lambda page: self._call("GET", "candidate", "/candidates", params={**params, "page": page})
        )

    def hand_over(self, candidate_id: str, jobcoach_id: str) -> dict:
        return self._call(
            "POST", "candidate", f"/candidates/{candidate_id}/handover", json={"jobcoach_id": jobcoach_id}
        )

    # vacancy
    def vacancies(self, page: int = 1, page_size: int = 50) -> dict:
        return self._call("GET", "vacancy", "/vacancies", params={"page": page, "page_size": page_size})

    def vacancy(self, vacancy_id: str) -> Tagged:
        return self._read_tagged("vacancy", f"/vacancies/{vacancy_id}")

    def post_vacancy(self, payload: dict) -> dict:
        return self._call("POST", "vacancy", "/vacancies", json=payload)

    def change_vacancy(self, vacancy_id: str, payload: dict, if_match: str | None = None) -> dict:
        return self._call("PATCH", "vacancy", f"/vacancies/{vacancy_id}", json=payload, if_match=if_match)

    # matching
    def candidate_matches(self, candidate_id: str, limit: int = 10) -> dict:
        return self._call("GET", "matching", f"/candidates/{candidate_id}/matches", params={"limit": limit})

    def vacancy_matches(self, vacancy_id: str, limit: int = 10) -> dict:
        return self._call("GET", "matching", f"/vacancies/{vacancy_id}/matches", params={"limit": limit})

    def start_placement(self, payload: dict) -> dict:
        return self._call("POST", "matching", "/placements", json=payload)

    def placements(self, status: str | None = None, page: int = 1, page_size: int = 100) -> dict:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if status:
            params["status"] = status
        return self._call("GET", "matching", "/placements", params=params)

    def placement(self, placement_id: str) -> Tagged:
        return self._read_tagged("matching", f"/placements/{placement_id}")

    def check_in(self, placement_id: str, payload: dict, if_match: str | None = None) -> dict:
        path = f"/placements/{placement_id}/checkins"
        return self._call("POST", "matching", path, json=payload, if_match=if_match)

    def insights(self) -> dict:
        return self._call("GET", "matching", "/insights")

    def caseload(self, jobcoach_id: str | None = None) -> Caseload:
        """Every candidate's status, for an operator each jobcoach's load (counted over all pages), and the
        region's ``contact_days``."""
        params: dict[str, Any] = {"page_size": PAGE_SIZE}
        if jobcoach_id:
            params["jobcoach_id"] = jobcoach_id
        first: dict = {}

        def fetch(page: int) -> dict:
            found = self._call("GET", "matching", "/caseload", params={**params, "page": page})
            if page == 1:
                first.update(found)
            return found

        entries = self.every_page(fetch)
        return Caseload(entries, first.get("jobcoaches") or [], first.get("contact_days"))

    def introductions(self, page: int = 1, page_size: int = 50) -> dict:
        return self._call("GET", "matching", "/introductions", params={"page": page, "page_size": page_size})

    def answer_introduction(self, introduction_id: str, answer: str) -> dict:
        return self._call("POST", "matching", f"/introductions/{introduction_id}/{answer}")

    def express_interest(self, vacancy_id: str, profile_ref: str) -> dict:
        return self._call("POST", "matching", f"/vacancies/{vacancy_id}/interest", json={"profile_ref": profile_ref})

    def vacancy_introductions(self, vacancy_id: str) -> dict:
        return self._call("GET", "matching", f"/vacancies/{vacancy_id}/introductions", params={"page_size": PAGE_SIZE})

    # notification
    def alerts(self, *, unread: bool | None = None, page: int = 1, page_size: int = 50) -> dict:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if unread is not None:
            params["unread"] = "true" if unread else "false"
        return self._call("GET", "notification", "/alerts", params=params)

    def acknowledge(self, alert_id: str) -> dict:
        return self._call("POST", "notification", f"/alerts/{alert_id}/ack")

    def escalations(self, *, unread: bool | None = None, page: int = 1, page_size: int = 50) -> dict:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if unread is not None:
            params["unread"] = "true" if unread else "false"
        return self._call("GET", "notification", "/escalations", params=params)

    def acknowledge_escalation(self, alert_id: str) -> dict:
        return self._call("POST", "notification", f"/escalations/{alert_id}/ack")

    def channels(self, jobcoach_id: str) -> Tagged | None:
        try:
            return self._read_tagged("notification", f"/jobcoaches/{jobcoach_id}/channels")
        except ApiError as exc:
            if exc.status == 404:
                return None  # none set yet
            raise

    def set_channels(self, jobcoach_id: str, payload: dict, if_match: str | None = None) -> dict:
        path = f"/jobcoaches/{jobcoach_id}/channels"
        return self._call("PUT", "notification", path, json=payload, if_match=if_match)
