"""Where a placement's end leaves the candidate on the Participatieladder: pure, no I/O.

``step_up`` is one rung up, at most 6. ``moved_to_paid_work`` is paid work: with support (rung 5) when the
vacancy was sheltered, supported paid or a work-experience place, else regular paid work (rung 6); never
lower than the rung the candidate stood on. Other outcomes leave the step where it is (None: nothing to raise).
"""

from __future__ import annotations

SUPPORTED_KINDS = frozenset({"sheltered", "supported_paid", "work_experience"})


def step_after(outcome: str, step: int, vacancy_kind: str | None) -> int | None:
    if outcome == "step_up":
        return min(step + 1, 6)
    if outcome == "moved_to_paid_work":
        return max(step, 5 if vacancy_kind in SUPPORTED_KINDS else 6)
    return None
