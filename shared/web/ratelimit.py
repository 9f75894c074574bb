"""Rate limits per API key, by role, with per-region overrides: the ``limits`` package on shared counters.

Every request to ``/v1/...`` counts against its API key (a hash of it; requests without a valid key count
against the client address). The limit is the role's default below, or the region's own
(``werkbrug tenants set SLUG rate_limits='{"employer": "60/minute"}'``). Counters live in the service's
database (:mod:`shared.ratelimit`), or in Redis when ``RATELIMIT_STORAGE_URI`` names one, so that all
replicas share them.

Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the
window resets), as in the IETF httpapi rate-limit headers draft, on errors too; a refused request gets 429
problem+json with ``Retry-After``.

The counting is ``limits``' fixed-window strategy called from one ``before_request`` hook. Flask-Limiter,
built on the same package, did it before, but it resolved its declared limits, blueprints and exemptions
anew on every request, which cost three times the counting itself; the keys in the storage are the ones it
used, so counters carry over.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from shared.db import describe_error
from shared.ratelimit import STORAGE_SCHEME, DatabaseStorage  # noqa: F401 - registers the storage scheme
from shared.registry import Principal
from shared.web.auth import bearer_key
from shared.web.settings import WebSettings

log = logging.getLogger(__name__)

DEFAULT_LIMITS: dict[str, str] = {
    "employer": "120/minute",
    "jobcoach": "300/minute",
    "operator": "600/minute",
}
# Requests without a valid key, per client address: enough for a person trying a key by hand, not for
# guessing keys.
ANONYMOUS_LIMIT = "30/minute"
FALLBACK_LIMIT = "120/minute"
# The storage keys' prefix and scope, as Flask-Limiter named them for one application-wide limit.
KEY_PREFIX = "werkbrug"
SCOPE = "global"


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


def _bucket(key: str | None, principal: Principal | None) -> str:
    if key is None or principal is None:
        return f"addr:{request.remote_addr or 'unknown'}"
    return f"key:{_key_hash(key)}"


def _limit_for(config: RateLimitConfig, principal: Principal | None) -> str:
    if principal is None:
        return config.anonymous
    override = (
        current_app.extensions["werkbrug"]
        .registry.settings(principal.tenant, WebSettings)
        .rate_limits.get(principal.role)
    )
    return override or config.defaults.get(principal.role, FALLBACK_LIMIT)


@functools.lru_cache(maxsize=256)
def _parsed(limit: str) -> tuple[RateLimitItem, ...]:
    # Narrowest window first, as Flask-Limiter checked them: a burst is refused by its own limit.
    return tuple(sorted(parse_many(limit), key=lambda item: item.GRANULARITY.seconds))


def _exempt() -> bool:
    # Probes, metrics, the OpenAPI document and its page are for operators and tools, not the API; a path
    # that names no route (404, 405) was never counted either.
    return request.endpoint is None or not request.path.startswith("/v1/")


@dataclass(frozen=True)
class _Counted:
    """The limit a request was counted against, for its answer's headers."""

    item: RateLimitItem
    bucket: str


def init_rate_limits(app: Flask, config: RateLimitConfig, database) -> None:
    if not config.enabled:
        return
    for limit in (*config.defaults.values(), config.anonymous):
        parse(limit)  # a malformed default fails at start-up, not at the first request
    options = {} if config.storage_uri else {"database": database, "sync_hits": config.sync_hits}
    strategy = FixedWindowRateLimiter(storage_from_string(config.storage_uri or f"{STORAGE_SCHEME}://", **options))

    @app.before_request
    def _count_request() -> None:
        if _exempt():
            return
        try:
            key = bearer_key()
            principal = None if key is None else current_app.extensions["werkbrug"].registry.authenticate(key)
            bucket = _bucket(key, principal)
            items = _parsed(_limit_for(config, principal))
            for item in items:
                if not strategy.hit(item, KEY_PREFIX, bucket, SCOPE):
                    g.werkbrug_rate_limit = _Counted(item, bucket)
                    raise TooManyRequests(description=str(item))
        except TooManyRequests:
            raise
        except Exception as exc:
            # A counter store (or key registry) that is away must not take the API down with it: requests
            # pass uncounted, and their answers go out without the headers.
            log.warning(
                "rate-limit counters unavailable; request passed uncounted",
                extra={"ctx": {"error": describe_error(exc)}},
            )
            return
        # Unless one refused, the answer tells the narrowest limit.
        g.werkbrug_rate_limit = _Counted(items[0], bucket)

    @app.after_request
    def _rate_limit_headers(response: Response) -> Response:
        counted: _Counted | None = g.get("werkbrug_rate_limit")
        if counted is None:
            return response
        try:
            reset_time, remaining = strategy.get_window_stats(counted.item, KEY_PREFIX, counted.bucket, SCOPE)
            reset_in = max(0, math.ceil(reset_time - time.time()))
        except Exception:  # the counters' store is away; the answer goes out without the headers
            return response
        response.headers["RateLimit-Limit"] = str(counted.item.amount)
        response.headers["RateLimit-Remaining"] = str(remaining)
        response.headers["RateLimit-Reset"] = str(reset_in)
        response.headers["RateLimit-Policy"] = f"{counted.item.amount};w={counted.item.get_expiry()}"
        if response.status_code == 429:
            response.headers["Retry-After"] = str(max(1, reset_in))
        return response
