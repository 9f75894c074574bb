"""The domain vocabulary every service shares: support codes, ladder steps, vacancy kinds."""

from __future__ import annotations

# One vocabulary for what a candidate needs and what a workplace offers, each with its Dutch label.
SUPPORT_CODES: dict[str, str] = {
    "jobcoach_on_site": "Jobcoach op de werkvloer",
    "work_buddy": "Werkmaatje",
    "fixed_routine": "Vaste structuur en routine",
    "quiet_workplace": "Rustige werkplek",
    "reduced_hours": "Minder uren",
    "flexible_hours": "Flexibele werktijden",
    "step_by_step_instructions": "Stapsgewijze instructies",
    "wheelchair_access": "Rolstoeltoegankelijk",
    "adapted_workstation": "Aangepaste werkplek",
    "no_customer_contact": "Geen klantcontact",
    "travel_support": "Hulp bij reizen",
    "fixed_supervisor": "Vaste begeleider",
}

SUPPORT_LEVELS = ("essential", "preferred")

LADDER_STEPS: dict[int, str] = {
    1: "Geïsoleerd",
    2: "Sociale contacten buitenshuis",
    3: "Deelname georganiseerde activiteiten",
    4: "Onbetaald werk",
    5: "Betaald werk met ondersteuning",
    6: "Betaald werk",
}

# The Participatieladder rung that each kind of vacancy stands on.
VACANCY_KIND_RUNG: dict[str, int] = {
    "work_experience": 4,
    "sheltered": 5,
    "supported_paid": 5,
    "regular_paid": 6,
}

VACANCY_STATUSES = ("open", "filled", "closed")

MAX_HOURS_PER_WEEK = 60
