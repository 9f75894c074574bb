"""Request bodies the end-to-end tests post, as a jobcoach and an employer would write them."""

from __future__ import annotations

GARDENER = {
    "display_name": "Tulp",
    "talents": ["planten verzorgen", "buiten werken"],
    "preferences": ["groenonderhoud"],
    "support_needs": [
        {"code": "quiet_workplace", "level": "essential"},
        {"code": "work_buddy", "level": "preferred"},
    ],
    "hours_min": 12,
    "hours_max": 24,
    "ladder_step": 3,
    "location": {"postcode": "5912", "lat": 51.37, "lon": 6.17, "max_travel_km": 20},
    "consent": {"matching": True, "share_with_employers": True},
}

GREEN_VACANCY = {
    "title": "Medewerker groenonderhoud",
    "description": "Parken en plantsoenen onderhouden in een vast team.",
    "tasks": ["planten verzorgen", "onkruid wieden"],
    "skills": ["groenonderhoud"],
    "supports_offered": ["quiet_workplace", "work_buddy"],
    "hours_min": 16,
    "hours_max": 24,
    "kind": "work_experience",
    "positions": 2,
    "location": {"postcode": "5911", "lat": 51.37, "lon": 6.16},
}

NOISY_CALL_CENTRE = {
    **GREEN_VACANCY,
    "title": "Klantenservice medewerker",
    "description": "Telefoon aannemen in een druk callcenter.",
    "tasks": ["telefoon aannemen", "klanten te woord staan"],
    "skills": ["klantcontact"],
    "supports_offered": ["flexible_hours"],
}
