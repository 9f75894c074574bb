"""Believing a reverse proxy's word about the client, for exactly as many hops as the deployment has."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask, hops: int) -> None:
    # Without this, every request behind an Ingress comes from the Ingress: one client's failures would
    # throttle everyone. Believing more hops than exist would let a client forge its address.
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
