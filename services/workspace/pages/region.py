"""The region's pages: for operators the load per jobcoach, escalations, who is out of sight and handing a
candidate over; the anonymous insights for councils and operators."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from services.workspace import charts, domain
from services.workspace.client import ApiError
from services.workspace.pages.common import api, context, current_person, is_htmx, render, signed_in
from services.workspace.pages.jobcoach import caseload_view

blp = Blueprint("region", __name__)

AGE_BANDS = {
    "under_3_months": "Korter dan 3 maanden",
    "3_to_6_months": "3 tot 6 maanden",
    "over_6_months": "Langer dan 6 maanden",
}
RETENTION = {"after_3_months": "Na 3 maanden", "after_6_months": "Na 6 maanden"}


@blp.get("/region")
@signed_in("operator")
def region():
    chosen = request.args.get("candidate_id") or ""
    return _region_page({"candidate_id": chosen}, {}, handed=request.args.get("handed"))


def _region_page(values: dict, errors: dict, status: int = 200, **extra):
    """Load per jobcoach, escalations to acknowledge, who is out of sight, and the handover form."""
    person_api = api()
    registry, tenant = context().registry, current_person().tenant
    view = caseload_view(
        None,
        lambda: person_api.escalations(unread=True, page_size=50),
        lambda: person_api.escalations(unread=False, page_size=10),
        # The signed-in operator's own region only: the registry holds every region's people.
        lambda: registry.people_of(tenant, "jobcoach"),
    )
    rows, loads, (unread, recent, coaches) = view.rows, view.loads, view.answers
    chosen = next((row for row in rows if row["candidate_id"] == values.get("candidate_id")), None)
    return render(
        "region.html",
        status,
        unread=unread["items"],
        unread_total=unread["total"],
        recent=recent["items"],
        loads=loads,
        out_of_sight=sum(load["out_of_sight"] for load in loads),
        candidates=sorted(rows, key=lambda row: (row["name"].casefold(), row["candidate_id"])),
        jobcoaches=domain.handover_choices(
            ((person.subject, person.email) for person in coaches), rows, chosen["jobcoach_id"] if chosen else None
        ),
        values=values,
        errors=errors,
        grafana_url=context().settings.grafana_url,
        **extra,
    )


@blp.post("/region/handover")
@signed_in("operator")
def hand_over():
    values = {name: (request.form.get(name) or "").strip() for name in domain.HANDOVER_FIELDS}
    errors: dict[str, list[str]] = {}
    if not values["candidate_id"]:
        errors["candidate_id"] = ["Kies een kandidaat."]
    if not values["jobcoach_id"]:
        errors["jobcoach_id"] = ["Kies een jobcoach."]
    if not errors:
        try:
            api().hand_over(values["candidate_id"], values["jobcoach_id"])
        except ApiError as exc:
            if exc.status == 404:
                errors["candidate_id"] = ["Deze kandidaat is er niet (meer) in deze regio."]
            elif exc.status == 422:
                errors = domain.field_errors(exc.errors, domain.HANDOVER_FIELDS)
            else:
                raise
    if errors:
        return _region_page(values, errors, 422)
    return redirect(url_for("region.region", handed=values["jobcoach_id"]) + "#overdracht", 303)


@blp.post("/region/escalations/<alert_id>/ack")
@signed_in("operator")
def acknowledge_escalation(alert_id: str):
    alert = api().acknowledge_escalation(alert_id)
    if is_htmx():
        return render("_alert.html", alert=alert, acknowledged_now=True, escalation=True)
    return redirect(url_for("region.region"))


def _count(cell: dict | None) -> float | None:
    if not cell or cell.get("suppressed"):
        return None
    return cell.get("value")


@blp.get("/insights")
@signed_in("council", "operator")
def insights():
    found = api().insights()
    ladder = [
        charts.Point(f"Trede {row['step']}", _count(row["count"])) for row in found["candidates"]["by_ladder_step"]
    ]
    needs = [charts.Point(row["label"], _count(row["candidates_needing"])) for row in found["support_gap"]]
    alerts = [
        charts.Point(domain.ALERT_TYPES.get(name, name), _count(cell)) for name, cell in found["alerts_by_type"].items()
    ]
    return render(
        "insights.html",
        insights=found,
        ladder_chart=charts.bar_chart("trede", "Kandidaten per trede van de participatieladder", ladder),
        needs_chart=charts.bar_chart("steun", "Kandidaten per soort ondersteuning", needs),
        ladder_rows=ladder,
        need_rows=found["support_gap"],
        alert_rows=alerts,
        age_bands=AGE_BANDS,
        retention=RETENTION,
    )
