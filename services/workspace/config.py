"""The workspace's settings, from the environment, with defaults that run locally.

The workspace calls the four services' public APIs, so it needs their base URLs; it signs its session
cookies, so it needs a secret key: required in production, generated once and kept under var/ for a
local run (every gunicorn worker must sign with the same one).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import ConfigError, _float, _int, registry_database_url, var_dir

SERVICE = "workspace"
DEFAULT_PORT = 8100
API_SERVICES = {"candidate": 8101, "vacancy": 8102, "matching": 8103, "notification": 8104}
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class WorkspaceSettings:
    database_url: str
    registry_database_url: str
    port: int
    log_level: str
    secret_key: str
    # Behind HTTPS the session cookie must never travel in clear; a local run speaks plain HTTP.
    secure_cookies: bool
    public_url: str
    api_urls: dict[str, str]
    api_timeout_s: float
    grafana_url: str
    idle_minutes: int
    key_ttl_minutes: int
    theme_dir: Path
    # Sign-in throttling: so many failures within the window lock the account (or the address) until it ends.
    throttle_window_s: int = 900
    max_failures_per_account: int = 5
    max_failures_per_address: int = 30

    @property
    def service(self) -> str:
        return SERVICE


def _secret_key(env: Mapping[str, str]) -> str:
    configured = env.get("WORKSPACE_SECRET_KEY", "").strip()
    if configured:
        if len(configured) < 32:
            raise ConfigError("WORKSPACE_SECRET_KEY must have at least 32 characters")
        return configured
    if env.get("WERKBRUG_ENV", "").strip().lower() == "production":
        raise ConfigError("WORKSPACE_SECRET_KEY is required in production (at least 32 random characters)")
    path = var_dir(env) / "workspace-secret-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of several workers starting at once, one writes the key and the others read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        raise ConfigError(f"{path} is empty; delete it to have a new key made") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        key = secrets.token_urlsafe(48)
        handle.write(key)
    return key


def public_url(env: Mapping[str, str] = os.environ) -> str:
    """Where people reach the workspace: the base of the links in invitations."""
    default = f"http://127.0.0.1:{_int(env, 'WERKBRUG_PORT', DEFAULT_PORT)}"
    return env.get("WORKSPACE_PUBLIC_URL", default).strip().rstrip("/")


def database_url(env: Mapping[str, str] = os.environ) -> str:
    return env.get("DATABASE_URL") or f"sqlite:///{var_dir(env) / 'workspace.db'}"


def load(env: Mapping[str, str] = os.environ) -> WorkspaceSettings:
    port = _int(env, "WERKBRUG_PORT", DEFAULT_PORT)
    idle = _int(env, "WORKSPACE_IDLE_MINUTES", 8 * 60)
    key_ttl = _int(env, "WORKSPACE_KEY_TTL_MINUTES", 60)
    if idle < 1 or key_ttl < 5:
        raise ConfigError("WORKSPACE_IDLE_MINUTES must be at least 1 and WORKSPACE_KEY_TTL_MINUTES at least 5")
    api_urls = {}
    for name, api_port in API_SERVICES.items():
        url = env.get(f"{name.upper()}_API_URL", f"http://127.0.0.1:{api_port}").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{name.upper()}_API_URL must be an http(s) URL, got {url!r}")
        api_urls[name] = url
    return WorkspaceSettings(
        database_url=database_url(env),
        registry_database_url=registry_database_url(env),
        port=port,
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        secret_key=_secret_key(env),
        secure_cookies=env.get("WORKSPACE_SECURE_COOKIES", "false").strip().lower() in _TRUE,
        public_url=public_url(env),
        api_urls=api_urls,
        api_timeout_s=_float(env, "WORKSPACE_API_TIMEOUT_SECONDS", 10.0),
        grafana_url=env.get("GRAFANA_URL", "http://127.0.0.1:3000").strip(),
        idle_minutes=idle,
        key_ttl_minutes=key_ttl,
        theme_dir=Path(env.get("WORKSPACE_THEME_DIR") or var_dir(env) / "themes"),
        throttle_window_s=_int(env, "WORKSPACE_THROTTLE_WINDOW_SECONDS", 900),
        max_failures_per_account=_int(env, "WORKSPACE_MAX_FAILURES_PER_ACCOUNT", 5),
        max_failures_per_address=_int(env, "WORKSPACE_MAX_FAILURES_PER_ADDRESS", 30),
    )
