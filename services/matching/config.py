"""The matching service's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shared.config import Settings, load_settings

SERVICE = "matching"


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return load_settings(SERVICE, env)


def proposal_threshold(settings: Settings, env: Mapping[str, str] = os.environ) -> float:
    from services.matching.domain import DEFAULT_PROPOSAL_THRESHOLD

    return settings.float_setting("MATCH_PROPOSAL_THRESHOLD", DEFAULT_PROPOSAL_THRESHOLD, env)
