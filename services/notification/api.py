"""The notification routes: the jobcoach's inbox and channels."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from services.notification import store
from services.notification.schemas import (
    AlertPageSchema,
    AlertQuerySchema,
    AlertSchema,
    ChannelsInputSchema,
    ChannelsSchema,
)
from shared.web.auth import authorize, current_principal
from shared.web.resources import not_found, page_bounds, page_of

blp = Blueprint("notifications", __name__, url_prefix="/v1/tenants/<tenant>", description="Alerts and channels")


def _db():
    return current_app.extensions["werkbrug"].db


def _channels_view(row: dict) -> dict:
    return {
        "webhook_url": row["webhook_url"],
        "webhook_secret_set": bool(row["webhook_secret"]),
        "email": row["email"],
        "updated_at": row["updated_at"],
    }


@blp.route("/alerts")
class Alerts(MethodView):
    @authorize("jobcoach")
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertPageSchema)
    def get(self, query, tenant):
        """The calling jobcoach's alert inbox, newest first"""
        offset, limit = page_bounds(query)
        with _db().session() as session:
            items, total = store.list_alerts(
                session,
                tenant,
                current_principal().subject,
                unread=query.get("unread"),
                alert_type=query.get("type"),
                offset=offset,
                limit=limit,
            )
        return page_of(items, total, query)


@blp.route("/alerts/<alert_id>/ack")
class AlertAck(MethodView):
    @authorize("jobcoach")
    @blp.response(200, AlertSchema)
    def post(self, tenant, alert_id):
        """Acknowledge an alert; acknowledging twice keeps the first time"""
        jobcoach_id = current_principal().subject
        with _db().session() as session:
            if store.get_alert(session, tenant, jobcoach_id, alert_id) is None:
                not_found()
            store.acknowledge_alert(session, tenant, alert_id)
            return store.get_alert(session, tenant, jobcoach_id, alert_id)


@blp.route("/jobcoaches/<jobcoach_id>/channels")
class Channels(MethodView):
    @authorize("jobcoach", subject_arg="jobcoach_id")
    @blp.response(200, ChannelsSchema)
    def get(self, tenant, jobcoach_id):
        """The jobcoach's alert channels"""
        with _db().session() as session:
            row = store.get_channels(session, tenant, jobcoach_id)
        if row is None:
            not_found()
        return _channels_view(row)

    @authorize("jobcoach", subject_arg="jobcoach_id")
    @blp.arguments(ChannelsInputSchema)
    @blp.response(200, ChannelsSchema)
    def put(self, channels, tenant, jobcoach_id):
        """Set the jobcoach's webhook (URL and signing secret) and e-mail address"""
        with _db().session() as session:
            return _channels_view(store.put_channels(session, tenant, jobcoach_id, channels))
