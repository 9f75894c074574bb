"""The region's pages: escalations for operators, and the anonymous insights for councils and operators."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for

from services.workspace import charts, domain
from services.workspace.pages.common import api, context, is_htmx, render, signed_in

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
    person_api = api()
    unread, recent = context().api.together(
        lambda: person_api.escalations(unread=True, page_size=50),
        lambda: person_api.escalations(unread=False, page_size=10),
    )
    return render(
        "region.html",
        unread=unread["items"],
        unread_total=unread["total"],
        recent=recent["items"],
        grafana_url=context().settings.grafana_url,
    )


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
