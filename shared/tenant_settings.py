"""Per-tenant settings: each region tunes thresholds, cadences and score weights for itself.

The mechanism only. Each service declares its own settings as a frozen dataclass deriving from
:class:`TenantSettings`, whose fields with their defaults are the settings and whose ``validate`` checks them.
All of them are stored together with the tenant in the registry database (one JSON object, one key per
setting), changed with ``werkbrug tenants set``, and read by the services through
:class:`shared.registry.Registry` (cached briefly, so a change reaches every process within seconds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from shared.errors import Refused

# Wide enough for any cadence or delay in days or hours, narrow enough to catch a typo.
WHOLE_NUMBER_RANGE = (1, 3650)


class SettingError(Refused):
    """A setting that does not exist or a value it cannot take."""


@dataclass(frozen=True)
class TenantSettings:
    """A service's settings of one tenant. On its own: a service without any."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any] | None) -> Self:
        """This service's settings from what is stored; the other services' and defaults for the missing."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (stored or {}).items() if key in known})

    def with_changes(self, changes: Mapping[str, str]) -> Self:
        """Apply ``name=value`` text from the command line, checking every value."""
        current = self.to_dict()
        declared = {f.name: str(f.type) for f in dataclasses.fields(self)}
        for name, text in changes.items():
            if name not in current:
                raise SettingError(f"unknown setting {name!r}; known: {', '.join(sorted(current))}")
            current[name] = _parse(name, text, declared[name])
        updated = type(self)(**current)
        updated.validate()
        return updated

    def validate(self) -> None:
        """Raise :class:`SettingError` for a value the service cannot work with."""


def combine(*declarations: type[TenantSettings]) -> type[TenantSettings]:
    """Several services' settings as one declaration, their fields in the order given: what the admin command
    line shows and changes, and what a process running several services reads."""
    fields: list[tuple[str, Any, dataclasses.Field[Any]]] = []
    for declaration in declarations:
        for f in dataclasses.fields(declaration):
            if any(name == f.name for name, _, _ in fields):
                raise ValueError(f"two services declare the tenant setting {f.name!r}")
            fields.append((f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory)))

    def validate(self: TenantSettings) -> None:
        for declaration in declarations:
            declaration.from_dict(self.to_dict()).validate()

    return dataclasses.make_dataclass(
        "CombinedTenantSettings", fields, bases=(TenantSettings,), frozen=True, namespace={"validate": validate}
    )


def require_fractions(settings: TenantSettings, *names: str) -> None:
    for name in names:
        if not 0 <= getattr(settings, name) <= 1:
            raise SettingError(f"{name} must be between 0 and 1")


def require_whole_numbers(settings: TenantSettings, *names: str) -> None:
    low, high = WHOLE_NUMBER_RANGE
    for name in names:
        if not low <= getattr(settings, name) <= high:
            raise SettingError(f"{name} must be a whole number from {low} to {high}")


def _parse(name: str, text: str, declared: str) -> Any:
    # The declared type says how to read the text: a JSON object of numbers or of texts, true or false, a
    # whole number or a number.
    try:
        if declared.startswith("dict"):
            value = json.loads(text)
            if not isinstance(value, dict):
                raise SettingError(f"{name} takes a JSON object")
            if declared.replace(" ", "") == "dict[str,str]":
                return {str(key): str(item) for key, item in value.items()}
            return {key: float(item) for key, item in value.items()}
        if declared == "bool":
            if text.lower() not in ("true", "false"):
                raise SettingError(f"{name} takes true or false")
            return text.lower() == "true"
        if declared == "int":
            return int(text)
        return float(text)
    except (ValueError, TypeError) as exc:
        raise SettingError(f"{name}: cannot read {text!r}") from exc
