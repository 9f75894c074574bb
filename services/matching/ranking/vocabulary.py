"""The matching service's view of the shared vocabulary: support codes, ladder steps and vacancy kinds.

The codes and their Dutch labels are defined once, in :mod:`shared.vocabulary`, because the candidate
and vacancy services validate their events against the same lists; this module re-exports them and adds
what matching needs on top: a bit per support code, so that "offers every essential support" is a single
integer test over thousands of vacancies, and the ladder arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from shared.vocabulary import (
    LADDER_STEPS,
    MAX_HOURS_PER_WEEK,
    SUPPORT_CODES,
    SUPPORT_LEVELS,
    VACANCY_KIND_RUNG,
    VACANCY_STATUSES,
)

__all__ = [
    "ESSENTIAL",
    "LADDER_STEPS",
    "MAX_HOURS_PER_WEEK",
    "PREFERRED",
    "SUPPORT_BITS",
    "SUPPORT_CODES",
    "SUPPORT_LEVELS",
    "TOP_LADDER_STEP",
    "VACANCY_KIND_LABELS",
    "VACANCY_KIND_RUNG",
    "VACANCY_STATUSES",
    "codes_from_mask",
    "is_support_code",
    "ladder_label",
    "rung_for_kind",
    "support_label",
    "support_mask",
]

ESSENTIAL: Final = "essential"
PREFERRED: Final = "preferred"

TOP_LADDER_STEP: Final = max(LADDER_STEPS)

VACANCY_KIND_LABELS: Final[dict[str, str]] = {
    "work_experience": "Werkervaringsplek",
    "sheltered": "Beschut werk",
    "supported_paid": "Betaald werk met begeleiding",
    "regular_paid": "Regulier betaald werk",
}

# Masks live only in memory, inside one process, and are never stored: the bit order may follow the
# shared list and change with it.
SUPPORT_BITS: Final[dict[str, int]] = {code: 1 << position for position, code in enumerate(SUPPORT_CODES)}

if len(SUPPORT_BITS) > 63:  # pragma: no cover - guards the int64 arrays in the matching index
    raise RuntimeError("support masks are stored in int64 arrays: at most 63 support codes")


def is_support_code(code: object) -> bool:
    return isinstance(code, str) and code in SUPPORT_BITS


def support_label(code: str) -> str:
    """Dutch label of a support code; an unknown code is shown as itself rather than hidden."""
    return SUPPORT_CODES.get(code, code)


def support_mask(codes: Iterable[str]) -> int:
    """One integer with a bit set per support code; raises ValueError on a code outside the vocabulary."""
    mask = 0
    for code in codes:
        try:
            mask |= SUPPORT_BITS[code]
        except KeyError:
            raise ValueError(f"unknown support code {code!r}") from None
    return mask


def codes_from_mask(mask: int) -> list[str]:
    return [code for code, bit in SUPPORT_BITS.items() if mask & bit]


def rung_for_kind(kind: str) -> int:
    """The Participatieladder rung a vacancy of this kind stands on."""
    try:
        return VACANCY_KIND_RUNG[kind]
    except KeyError:
        raise ValueError(f"unknown vacancy kind {kind!r}") from None


def ladder_label(step: int) -> str:
    try:
        return LADDER_STEPS[step]
    except KeyError:
        raise ValueError(f"ladder step must be between 1 and {TOP_LADDER_STEP}, got {step!r}") from None
