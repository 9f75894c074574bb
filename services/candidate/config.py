"""The candidate service's settings: only the shared ones so far."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shared.config import Settings, load_settings

SERVICE = "candidate"
# The local defaults; a deployment sets WERKBRUG_PORT and WORKER_METRICS_PORT.
PORT = 8101
WORKER_METRICS_PORT = 9101


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return load_settings(SERVICE, env, port=PORT, worker_metrics_port=WORKER_METRICS_PORT)
