"""Pure logic of the pages: forms into API bodies, the API's field errors into Dutch next to the right
field, labels in plain Dutch. No I/O, so that all of it is tested without a browser or a service."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shared.vocabulary import LADDER_STEPS, SUPPORT_CODES, SUPPORT_LEVELS

FORM_ERROR = "_form"

# The hidden field in which a form that changes a resource carries the ETag it was shown with.
ETAG_FIELD = "etag"
# The API's answers to a change based on an old read: 412, someone else changed the resource since the form
# was shown; 428, the region requires If-Match and the form carried no tag (a page shown before the tag was
# given). Both change nothing, and the form is shown again as it was filled in.
CHANGED_MEANWHILE = 412
TAG_REQUIRED = 428
STALE_FORM = (CHANGED_MEANWHILE, TAG_REQUIRED)
# A strong entity-tag as the APIs give them (RFC 9110 section 8.8.3).
_ENTITY_TAG = re.compile(r'"[\x21\x23-\x7e]{1,100}"')

# The check-in signal codes of the placement API, in the words a jobcoach uses.
SIGNALS: dict[str, str] = {
    "conflict_with_supervisor": "Conflict met leidinggevende",
    "missed_shift": "Dienst gemist",
    "support_not_provided": "Afgesproken ondersteuning niet geboden",
    "debt_stress": "Zorgen over schulden",
    "housing_stress": "Zorgen over wonen",
    "health_setback": "Terugval in gezondheid",
    "travel_problems": "Problemen met reizen",
    "positive_feedback": "Positieve feedback van de werkplek",
}

VACANCY_KINDS: dict[str, str] = {
    "work_experience": "Werkervaringsplek",
    "sheltered": "Beschut werk",
    "supported_paid": "Betaald werk met begeleiding",
    "regular_paid": "Betaald werk",
}

VACANCY_STATUSES: dict[str, str] = {"open": "Open", "filled": "Vervuld", "closed": "Gesloten"}

ALERT_TYPES: dict[str, str] = {
    "match_proposed": "Nieuwe match",
    "placement_at_risk": "Plaatsing loopt risico",
    "checkin_overdue": "Check-in is te laat",
    "placement_at_risk_escalated": "Risico niet op tijd gezien",
    "checkin_overdue_escalated": "Te late check-in niet op tijd gezien",
    "out_of_sight": "Al lang geen contact",
    "employer_interest": "Een werkgever wil kennismaken",
    "caseload_over_limit": "Jobcoach heeft te veel kandidaten",
}

SUPPORT_LEVEL_LABELS = {"essential": "Nodig", "preferred": "Liever wel"}

CASELOAD_STATUSES: dict[str, str] = {
    "at_risk": "Loopt risico",
    "checkin_overdue": "Check-in te laat",
    "out_of_sight": "Uit beeld",
    "placed": "Geplaatst",
    "unmatched": "Nog geen match",
    "proposed": "Match voorgesteld",
    "ended": "Plaatsing afgelopen",
}
# The chips that ask the jobcoach to act, for their colour.
URGENT_CHIPS = ("at_risk", "checkin_overdue", "out_of_sight")

# A jobcoach's view of an introduction; an employer's shows "not now" for both declined and cancelled.
INTRODUCTION_STATUSES: dict[str, str] = {
    "pending": "Wacht op antwoord",
    "accepted": "Kandidaat wil kennismaken",
    "declined": "Kandidaat wil nu niet",
    "cancelled": "Vervallen",
    "not now": "Nu niet",
}

# The API speaks English to programs; people read these. Anything not listed is shown as the API said it.
_MESSAGES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^Missing data for required field\.$"), "Dit veld is verplicht."),
    (re.compile(r"^Not a valid integer\.$"), "Vul een heel getal in."),
    (re.compile(r"^Not a valid number\.$"), "Vul een getal in."),
    (re.compile(r"^Not a valid boolean\.$"), "Kies ja of nee."),
    (re.compile(r"^Not a valid date\.$"), "Vul een datum in, bijvoorbeeld 2026-12-01."),
    (re.compile(r"^Not a valid email address\.$"), "Vul een geldig e-mailadres in."),
    (re.compile(r"^Unknown field\.$"), "Dit veld kennen we niet."),
    (re.compile(r"^Must be one of: .*\.$"), "Kies een van de mogelijkheden."),
    (re.compile(r"^String does not match expected pattern\.$"), "Dit klopt niet. Kijk naar het voorbeeld."),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
        "Kies een getal van {0} tot en met {1}.",
    ),
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), "Kies {0} of meer."),
    (re.compile(r"^Must be less than or equal to (\S+)\.$"), "Kies {0} of minder."),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), "Dit veld is verplicht."),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), "Dit is te lang: gebruik hoogstens {0} tekens of regels."),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"), "Gebruik {0} tot {1} tekens."),
    (re.compile(r"^must be at least hours_min$"), "Dit moet minstens zo veel zijn als het minimum aantal uren."),
    (re.compile(r"^each (support )?code may appear once$"), "Kies elke mogelijkheid maar één keer."),
    (re.compile(r"^must not lie in the future$"), "Deze datum ligt in de toekomst."),
    (
        re.compile(r"^must not lie before the placement's start date \((.+)\)$"),
        "Deze datum ligt voor de start van de plaatsing ({0}).",
    ),
    (re.compile(r"^must not lie before the last check-in \((.+)\)$"), "Deze datum ligt voor de vorige check-in ({0})."),
    (re.compile(r"^must lie within (\d+) days of today$"), "Kies een datum binnen {0} dagen van vandaag."),
    (re.compile(r"^The candidate is already this jobcoach's\.$"), "Deze kandidaat hoort al bij deze jobcoach."),
    (
        re.compile(r"^Must be letters, digits, dots, dashes or underscores \(at most (\d+)\)\.$"),
        "Gebruik alleen letters, cijfers, punten, streepjes of lage streepjes (hoogstens {0}).",
    ),
    (
        re.compile(r"^a webhook needs a secret of at least 16 characters$"),
        "Een webhook heeft een geheim van minstens 16 tekens nodig.",
    ),
    (
        re.compile(r"^a digest is sent by e-mail: set email too$"),
        "De dagelijkse samenvatting gaat per e-mail: vul ook een e-mailadres in.",
    ),
]

# A field whose pattern error needs its own words.
_FIELD_MESSAGES = {
    "location.postcode": {
        "Dit klopt niet. Kijk naar het voorbeeld.": "Vul de 4 cijfers van de postcode in, bijvoorbeeld 5912."
    }
}


def form_etag(form: Mapping[str, str]) -> str | None:
    """The ETag the form was shown with, to send as If-Match; None for a resource that had none, or for a
    value that is no entity-tag (sent on, it would make the API refuse the change with 400)."""
    tag = (form.get(ETAG_FIELD) or "").strip()
    return tag if _ENTITY_TAG.fullmatch(tag) else None


def dutch(message: str, field: str = "") -> str:
    for pattern, text in _MESSAGES:
        found = pattern.match(message)
        if found:
            translated = text.format(*found.groups())
            return _FIELD_MESSAGES.get(field, {}).get(translated, translated)
    return message


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """The problem document's nested ``errors`` as dotted field paths: ``location.postcode``,
    ``support_needs.0.code``."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_errors(value, path).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(errors, list | tuple):
        if all(isinstance(item, str) for item in errors):
            flat[prefix or FORM_ERROR] = list(errors)
        else:
            for index, item in enumerate(errors):
                for field, messages in flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                    flat.setdefault(field, []).extend(messages)
    elif errors is not None:
        flat[prefix or FORM_ERROR] = [str(errors)]
    return flat


def field_errors(errors: Any, fields: Iterable[str]) -> dict[str, list[str]]:
    """Each API error in Dutch under the form field it belongs to: the longest known field that is the error's
    path or a prefix of it; what belongs to no field goes to the form as a whole."""
    known = sorted(set(fields), key=len, reverse=True)
    placed: dict[str, list[str]] = {}
    for path, messages in flatten_errors(errors).items():
        target = next((f for f in known if path == f or path.startswith(f + ".")), FORM_ERROR)
        for message in messages:
            text = dutch(message, path)
            if text not in placed.setdefault(target, []):
                placed[target].append(text)
    return placed


def _number(raw: str | None) -> Any:
    """A typed number where the text is one; otherwise the text itself, so that the API says what is wrong."""
    text = (raw or "").strip().replace(",", ".")
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _whole(raw: str | None) -> Any:
    value = _number(raw)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _lines(raw: str | None) -> list[str]:
    return [part.strip() for part in re.split(r"[\n;]", raw or "") if part.strip()]


def _checked(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def _set(payload: dict, key: str, value: Any) -> None:
    if value is not None:
        payload[key] = value


CANDIDATE_FIELDS = (
    "display_name",
    "talents",
    "preferences",
    "support_needs",
    "hours_min",
    "hours_max",
    "ladder_step",
    "location.postcode",
    "location.max_travel_km",
    "location",
    "consent",
    "target_group_register",
)


def candidate_payload(form: Mapping[str, str]) -> dict:
    """The candidate form as the API's body. Empty number fields are left out, so the API names them."""
    payload: dict[str, Any] = {
        "display_name": (form.get("display_name") or "").strip(),
        "talents": _lines(form.get("talents")),
        "preferences": _lines(form.get("preferences")),
        "support_needs": [
            {"code": code, "level": form[f"need.{code}"]}
            for code in SUPPORT_CODES
            if form.get(f"need.{code}") in SUPPORT_LEVELS
        ],
        "consent": {
            "matching": _checked(form, "consent.matching"),
            "share_with_employers": _checked(form, "consent.share_with_employers"),
        },
        "target_group_register": _checked(form, "target_group_register"),
    }
    if not payload["display_name"]:
        del payload["display_name"]
    for name in ("hours_min", "hours_max", "ladder_step"):
        _set(payload, name, _whole(form.get(name)))
    location: dict[str, Any] = {"postcode": (form.get("location.postcode") or "").strip()}
    for name in ("max_travel_km", "lat", "lon"):
        _set(location, name, _number(form.get(f"location.{name}")))
    payload["location"] = location
    return payload


def candidate_form(candidate: Mapping[str, Any]) -> dict[str, str]:
    """A stored candidate as the form's values (the inverse of :func:`candidate_payload`)."""
    location = candidate.get("location") or {}
    consent = candidate.get("consent") or {}
    values = {
        "display_name": candidate.get("display_name") or "",
        "talents": "\n".join(candidate.get("talents") or []),
        "preferences": "\n".join(candidate.get("preferences") or []),
        "hours_min": _text(candidate.get("hours_min")),
        "hours_max": _text(candidate.get("hours_max")),
        "ladder_step": _text(candidate.get("ladder_step")),
        "location.postcode": location.get("postcode") or "",
        "location.max_travel_km": _text(location.get("max_travel_km")),
        "location.lat": _text(location.get("lat")),
        "location.lon": _text(location.get("lon")),
    }
    for need in candidate.get("support_needs") or []:
        values[f"need.{need['code']}"] = need["level"]
    for name in ("matching", "share_with_employers"):
        if consent.get(name):
            values[f"consent.{name}"] = "on"
    if candidate.get("target_group_register"):
        values["target_group_register"] = "on"
    return values


VACANCY_FIELDS = (
    "title",
    "description",
    "tasks",
    "skills",
    "supports_offered",
    "hours_min",
    "hours_max",
    "kind",
    "positions",
    "location.postcode",
    "location",
    "banenafspraak",
    "status",
)


def vacancy_payload(form: Mapping[str, str], supports: Iterable[str]) -> dict:
    payload: dict[str, Any] = {
        "title": (form.get("title") or "").strip(),
        "description": (form.get("description") or "").strip(),
        "tasks": _lines(form.get("tasks")),
        "skills": _lines(form.get("skills")),
        "supports_offered": [code for code in SUPPORT_CODES if code in set(supports)],
        "banenafspraak": _checked(form, "banenafspraak"),
        "location": {"postcode": (form.get("location.postcode") or "").strip()},
    }
    if not payload["title"]:
        del payload["title"]
    if form.get("kind"):
        payload["kind"] = form["kind"]
    for name in ("hours_min", "hours_max", "positions"):
        _set(payload, name, _whole(form.get(name)))
    for name in ("lat", "lon"):
        _set(payload["location"], name, _number(form.get(f"location.{name}")))
    if form.get("status") in ("open", "filled"):
        payload["status"] = form["status"]
    return payload


def vacancy_form(vacancy: Mapping[str, Any]) -> dict[str, Any]:
    location = vacancy.get("location") or {}
    values: dict[str, Any] = {
        "title": vacancy.get("title") or "",
        "description": vacancy.get("description") or "",
        "tasks": "\n".join(vacancy.get("tasks") or []),
        "skills": "\n".join(vacancy.get("skills") or []),
        "hours_min": _text(vacancy.get("hours_min")),
        "hours_max": _text(vacancy.get("hours_max")),
        "kind": vacancy.get("kind") or "",
        "positions": _text(vacancy.get("positions")),
        "location.postcode": location.get("postcode") or "",
        "location.lat": _text(location.get("lat")),
        "location.lon": _text(location.get("lon")),
        "status": vacancy.get("status") or "open",
        "supports_offered": list(vacancy.get("supports_offered") or []),
    }
    if vacancy.get("banenafspraak"):
        values["banenafspraak"] = "on"
    return values


CHECKIN_FIELDS = ("date", "wellbeing", "hours_worked", "absence_days", "signals")


def checkin_payload(form: Mapping[str, str], signals: Iterable[str]) -> dict:
    payload: dict[str, Any] = {"signals": [code for code in SIGNALS if code in set(signals)]}
    if (form.get("date") or "").strip():
        payload["date"] = form["date"].strip()
    _set(payload, "wellbeing", _whole(form.get("wellbeing")))
    _set(payload, "hours_worked", _number(form.get("hours_worked")))
    _set(payload, "absence_days", _whole(form.get("absence_days")))
    return payload


PLACEMENT_FIELDS = ("vacancy_id", "start_date", "agreed_hours", "supports_agreed")


def placement_payload(candidate_id: str, form: Mapping[str, str], supports: Iterable[str]) -> dict:
    payload: dict[str, Any] = {
        "candidate_id": candidate_id,
        "vacancy_id": (form.get("vacancy_id") or "").strip(),
        "supports_agreed": [code for code in SUPPORT_CODES if code in set(supports)],
    }
    if (form.get("start_date") or "").strip():
        payload["start_date"] = form["start_date"].strip()
    _set(payload, "agreed_hours", _whole(form.get("agreed_hours")))
    return payload


CHANNEL_FIELDS = ("webhook_url", "webhook_secret", "email", "digest")


def channels_payload(form: Mapping[str, str]) -> dict:
    def text(name: str) -> str | None:
        return (form.get(name) or "").strip() or None

    return {
        "webhook_url": text("webhook_url"),
        "webhook_secret": text("webhook_secret"),
        "email": text("email"),
        "digest": _checked(form, "digest"),
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def inbox_order(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Unacknowledged first, then newest first within each group."""
    ordered = sorted(alerts, key=lambda alert: alert.get("created_at") or "", reverse=True)
    return sorted(ordered, key=lambda alert: alert.get("acknowledged_at") is not None)


def support_label(code: str) -> str:
    return SUPPORT_CODES.get(code, code)


def ladder_label(step: Any) -> str:
    try:
        return f"{int(step)}. {LADDER_STEPS[int(step)]}"
    except (TypeError, ValueError, KeyError):
        return "onbekend"


def percent(value: Any) -> str:
    if value is None:
        return "nog niet bekend"
    return f"{round(float(value) * 100)}%"


def match_summary(explanation: Mapping[str, Any]) -> dict[str, Any]:
    """What a jobcoach reads in a match: talents met, supports, hours, ladder step, distance."""
    supports = explanation.get("supports") or {}
    hours = explanation.get("hours") or {}
    ladder = explanation.get("ladder") or {}
    overlap = hours.get("overlap")
    return {
        "talents": [
            {"talent": pair.get("talent", ""), "matched": pair.get("matched", "")}
            for pair in explanation.get("talents_matched") or []
        ],
        "essential_met": [support_label(c) for c in supports.get("essential_met") or []],
        "preferred_met": [support_label(c) for c in supports.get("preferred_met") or []],
        "preferred_missing": [support_label(c) for c in supports.get("preferred_missing") or []],
        "hours": (
            f"{_text(overlap[0])} tot {_text(overlap[1])} uur per week past bij allebei"
            if overlap
            else "De uren passen niet bij elkaar"
        ),
        "ladder": (
            f"Van trede {ladder.get('from')} naar trede {ladder.get('to')}"
            if ladder.get("from") is not None
            else "onbekend"
        ),
        "distance": (
            f"{explanation['distance_km']:.1f} km".replace(".", ",")
            if explanation.get("distance_km") is not None
            else "Afstand onbekend"
        ),
    }


# The caseload


CASELOAD_SORTS = ("status", "name", "contact", "alerts", "jobcoach")
DEFAULT_SORT = "status"
_CHIP_RANK = {code: rank for rank, code in enumerate(CASELOAD_STATUSES)}
UPDATING = "updating"


def caseload_rows(
    candidates: Iterable[Mapping[str, Any]], entries: Iterable[Mapping[str, Any]], contact_days: int | None
) -> list[dict[str, Any]]:
    """One row per candidate of the caseload, with the chips a jobcoach reads at a glance.

    The candidate service says whose candidate someone is, so it decides the rows: right after a handover
    the new jobcoach already sees the candidate while matching catches up (status "updating"), and the
    former jobcoach no longer does. Out of sight is the region's ``contact_days`` without contact, as
    matching's own sweep counts it; without that number (None) nobody is marked out of sight.
    """
    by_id = {entry["candidate_id"]: entry for entry in entries}
    rows = []
    for candidate in candidates:
        entry = by_id.get(candidate["id"])
        chips = []
        if entry is not None:
            chips.append(entry["status"])
            days = entry.get("days_since_contact")
            if contact_days is not None and days is not None and days >= contact_days:
                chips.insert(0, "out_of_sight")
        chips.sort(key=lambda code: _CHIP_RANK.get(code, len(_CHIP_RANK)))
        rows.append(
            {
                "candidate_id": candidate["id"],
                "name": candidate.get("display_name") or "",
                "jobcoach_id": candidate.get("jobcoach_id") or "",
                "ladder_step": candidate.get("ladder_step"),
                "chips": chips or [UPDATING],
                "last_contact": entry.get("last_contact") if entry else None,
                "days_since_contact": entry.get("days_since_contact") if entry else None,
                "open_alerts": entry.get("open_alerts", 0) if entry else 0,
            }
        )
    return rows


def caseload_sort(raw_sort: str | None, raw_order: str | None) -> tuple[str, bool]:
    """The sort column and whether it runs downwards, from the query string; anything unknown is the default:
    the most urgent first."""
    column = raw_sort if raw_sort in CASELOAD_SORTS else DEFAULT_SORT
    if raw_order in ("asc", "desc"):
        return column, raw_order == "desc"
    # Each column's natural first direction: the most pressing first, names from A.
    return column, column in ("contact", "alerts")


def sort_caseload(rows: list[dict[str, Any]], column: str, descending: bool) -> list[dict[str, Any]]:
    """Stable: ties keep the name order, so the list never shuffles between two views."""

    def urgency(row: Mapping[str, Any]) -> tuple:
        return (
            min(_CHIP_RANK.get(chip, len(_CHIP_RANK)) for chip in row["chips"]),
            -(row["days_since_contact"] or 0),
        )

    keys = {
        "status": urgency,
        "name": lambda row: row["name"].casefold(),
        "contact": lambda row: row["days_since_contact"] if row["days_since_contact"] is not None else -1,
        "alerts": lambda row: row["open_alerts"],
        "jobcoach": lambda row: row["jobcoach_id"],
    }
    by_name = sorted(rows, key=lambda row: (row["name"].casefold(), row["candidate_id"]))
    return sorted(by_name, key=keys[column], reverse=descending)


def region_loads(loads: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each jobcoach's load as matching counts it, with how many of their candidates are out of sight."""
    out_of_sight: dict[str, int] = {}
    for row in rows:
        if "out_of_sight" in row["chips"]:
            out_of_sight[row["jobcoach_id"]] = out_of_sight.get(row["jobcoach_id"], 0) + 1
    return [{**load, "out_of_sight": out_of_sight.get(load["jobcoach_id"], 0)} for load in loads]


CHIP_LABELS = {**CASELOAD_STATUSES, UPDATING: "Wordt bijgewerkt"}


def handover_choices(
    accounts: Iterable[tuple[str | None, str]], rows: Iterable[Mapping[str, Any]], current: str | None = None
) -> list[dict[str, Any]]:
    """The jobcoaches a candidate can be handed to, sorted by id: the region's jobcoach accounts (subject,
    e-mail) and everyone who has candidates now, also without an account (a case-management system's key).
    Each shows how many candidates they have, as the candidate service counts them, so the operator sees who
    has room; ``current``, the chosen candidate's own jobcoach, is marked rather than left out, so the list
    still shows the choice that was made when the API refuses it."""
    emails: dict[str, list[str]] = {}
    for subject, email in accounts:
        if subject:
            emails.setdefault(subject, []).append(email)
    counts: dict[str, int] = {}
    for row in rows:
        if row.get("jobcoach_id"):
            counts[row["jobcoach_id"]] = counts.get(row["jobcoach_id"], 0) + 1
    choices = []
    for jobcoach_id in sorted(emails.keys() | counts.keys(), key=lambda found: (found.casefold(), found)):
        count = counts.get(jobcoach_id, 0)
        parts = [jobcoach_id]
        if emails.get(jobcoach_id):
            parts[0] += f" ({', '.join(sorted(emails[jobcoach_id]))})"
        parts.append({0: "geen kandidaten", 1: "1 kandidaat"}.get(count, f"{count} kandidaten"))
        if jobcoach_id == current:
            parts.append("nu de jobcoach van deze kandidaat")
        choices.append(
            {
                "jobcoach_id": jobcoach_id,
                "candidates": count,
                "current": jobcoach_id == current,
                "label": ", ".join(parts),
            }
        )
    return choices


HANDOVER_FIELDS = ("candidate_id", "jobcoach_id")
