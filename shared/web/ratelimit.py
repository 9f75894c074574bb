"""Rate limits per API key, by role, with per-region overrides: Flask-Limiter on shared counters.

Every request to ``/v1/...`` counts against its API key (a hash of it; requests without a valid key count
against the client address). The limit is the role's default below, or the region's own
(``werkbrug tenants set SLUG rate_limits='{"employer": "60/minute"}'``). Counters live in the service's
database (:mod:`shared.ratelimit`), or in Redis when ``RATELIMIT_STORAGE_URI`` names one, so that all
replicas share them.

Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the
window resets), as in the IETF httpapi rate-limit headers draft, on errors too; a refused request gets 429
problem+json with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter
from limits import parse

from shared.ratelimit import STORAGE_SCHEME, DatabaseStorage  # noqa: F401 - registers the storage scheme
from shared.web.auth import bearer_key
from shared.web.settings import WebSettings

DEFAULT_LIMITS: dict[str, str] = {
    "employer": "120/minute",
    "jobcoach": "300/minute",
    "operator": "600/minute",
}
# Requests without a valid key, per client address: enough for a person trying a key by hand, not for
# guessing keys.
ANONYMOUS_LIMIT = "30/minute"
FALLBACK_LIMIT = "120/minute"


@dataclass(frozen=True)
class RateLimitConfig:
    enabled: bool = True
    storage_uri: str | None = None
    defaults: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    anonymous: str = ANONYMOUS_LIMIT
    # Hits a process gathers before adding them to the shared counter (see shared.ratelimit).
    sync_hits: int = 10


def _key_hash(key: str) -> str:
    return hashlib.sha256(b"werkbrug-ratelimit\0" + key.encode("utf-8")).hexdigest()[:32]


def _principal():
    # Flask-Limiter asks for the bucket and for the limit separately: the key is looked up once a request.
    if "werkbrug_rate_limit_caller" not in g:
        key = bearer_key()
        principal = None if key is None else current_app.extensions["werkbrug"].registry.authenticate(key)
        g.werkbrug_rate_limit_caller = (key, principal)
    return g.werkbrug_rate_limit_caller


def _bucket() -> str:
    key, principal = _principal()
    if principal is None:
        return f"addr:{request.remote_addr or 'unknown'}"
    return f"key:{_key_hash(key)}"


def _limit_for_request() -> str:
    config: RateLimitConfig = current_app.extensions["werkbrug_ratelimit"]
    _, principal = _principal()
    if principal is None:
        return config.anonymous
    override = (
        current_app.extensions["werkbrug"]
        .registry.settings(principal.tenant, WebSettings)
        .rate_limits.get(principal.role)
    )
    return override or config.defaults.get(principal.role, FALLBACK_LIMIT)


def _exempt() -> bool:
    # Probes, metrics, the OpenAPI document and its page are for operators and tools, not the API.
    return not request.path.startswith("/v1/")


def init_rate_limits(app: Flask, config: RateLimitConfig, database) -> Limiter | None:
    app.extensions["werkbrug_ratelimit"] = config
    if not config.enabled:
        return None
    for limit in (*config.defaults.values(), config.anonymous):
        parse(limit)  # a malformed default fails at start-up, not at the first request
    limiter = Limiter(
        key_func=_bucket,
        application_limits=[
            ApplicationLimit(limit_provider=_limit_for_request, key_function=_bucket, exempt_when=_exempt)
        ],
        storage_uri=config.storage_uri or f"{STORAGE_SCHEME}://",
        storage_options={} if config.storage_uri else {"database": database, "sync_hits": config.sync_hits},
        strategy="fixed-window",
        headers_enabled=False,
        # A counter store that is away must not take the API down with it: requests pass uncounted (logged).
        swallow_errors=True,
        key_prefix="werkbrug",
    )
    limiter.init_app(app)

    @app.after_request
    def _rate_limit_headers(response: Response) -> Response:
        current = limiter.current_limit
        if current is None:
            return response
        try:
            reset_time, remaining = current.window
            reset_in = max(0, math.ceil(reset_time - time.time()))
        except Exception:  # the counters' store is away; the answer goes out without the headers
            return response
        response.headers["RateLimit-Limit"] = str(current.limit.amount)
        response.headers["RateLimit-Remaining"] = str(remaining)
        response.headers["RateLimit-Reset"] = str(reset_in)
        response.headers["RateLimit-Policy"] = f"{current.limit.amount};w={current.limit.get_expiry()}"
        if response.status_code == 429:
            response.headers["Retry-After"] = str(max(1, reset_in))
        return response

    return limiter
