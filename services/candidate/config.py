"""The candidate service's settings: only the shared ones so far."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shared.config import Settings, load_settings

SERVICE = "candidate"


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return load_settings(SERVICE, env)
