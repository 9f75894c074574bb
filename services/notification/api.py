"""The notification routes: the jobcoach's inbox and channels, and the operators' inbox (escalations and
caseloads over the limit)."""

from __future__ import annotations

from datetime import timedelta

from flask import request
from flask.views import MethodView
from webargs.flaskparser import abort  # flask-smorest's abort, imported where it is typed NoReturn

from services.notification import commands, store
from services.notification.schemas import (
    AlertPageSchema,
    AlertQuerySchema,
    AlertSchema,
    ChannelsInputSchema,
    ChannelsSchema,
    OperatorAlertQuerySchema,
    RotateSecretInputSchema,
)
from shared.web.app import current_context
from shared.web.audit import Auditor, from_answer, from_items
from shared.web.auth import authorize, current_subject
from shared.web.blueprint import Blueprint
from shared.web.conditional import IF_MATCH, STALE_DETAIL, etag, expected_version, parse_if_match
from shared.web.openapi import mark_etag
from shared.web.resources import invalid, not_found, page_bounds, page_of

blp = Blueprint("notifications", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Alerts and channels")
audit = Auditor(store.audit_log)


def _db():
    return current_context().db


def _now():
    return current_context().clock()


CHANNELS = "channels"


def _channels_etag(row: dict) -> dict[str, str]:
    return {"ETag": etag(CHANNELS, row["jobcoach_id"], row["version"])}


def _channels_version(current: dict | None, tenant: str) -> int | None:
    """The version a PUT must still find, from If-Match. Setting channels for the first time needs no
    If-Match (there is nothing to overwrite), but a tag then matches nothing: 412, as RFC 9110 says."""
    if current is None:
        header = request.headers.get(IF_MATCH)
        if header is not None:
            parse_if_match(header)  # a malformed one is 400 first
            abort(412, message=STALE_DETAIL)
        return None
    return expected_version(CHANNELS, {"id": current["jobcoach_id"], "version": current["version"]}, tenant)


def _channels_view(row: dict) -> dict:
    until = row["webhook_secret_previous_until"]
    return {
        "webhook_url": row["webhook_url"],
        "webhook_secret_set": bool(row["webhook_secret"]),
        "previous_secret_valid_until": until if row["webhook_secret_previous"] and until > _now() else None,
        "email": row["email"],
        "digest": row["digest"],
        "updated_at": row["updated_at"],
    }


@blp.route("/alerts")
class Alerts(MethodView):
    @authorize("jobcoach")
    @audit("read", from_items())
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertPageSchema)
    def get(self, query, tenant):
        """The calling jobcoach's alert inbox, newest first, with each alert's delivery per channel"""
        offset, limit = page_bounds(query)
        with _db().session() as session:
            items, total = store.list_alerts(
                session,
                tenant,
                current_subject(),
                unread=query.get("unread"),
                alert_type=query.get("type"),
                offset=offset,
                limit=limit,
            )
        return page_of(items, total, query)


@blp.route("/alerts/<id:alert_id>/ack")
class AlertAck(MethodView):
    @authorize("jobcoach")
    @audit("change", from_answer())
    @blp.response(200, AlertSchema)
    def post(self, tenant, alert_id):
        """Acknowledge an alert; acknowledging twice keeps the first time"""
        with _db().session() as session:
            alert = commands.acknowledge(session, tenant, current_subject(), alert_id, _now())
        if alert is None:
            not_found()
        return alert


@blp.route("/escalations")
class Escalations(MethodView):
    @authorize("operator")
    @audit("read", from_items())
    @blp.arguments(OperatorAlertQuerySchema, location="query")
    @blp.response(200, AlertPageSchema)
    def get(self, query, tenant):
        """The region operators' inbox, newest first: at-risk and check-in-overdue alerts no jobcoach
        acknowledged in time, and jobcoaches whose caseload passed the region's limit"""
        offset, limit = page_bounds(query)
        with _db().session() as session:
            items, total = store.list_operator_alerts(
                session, tenant, unread=query.get("unread"), alert_type=query.get("type"), offset=offset, limit=limit
            )
        return page_of(items, total, query)


@blp.route("/escalations/<id:alert_id>/ack")
class EscalationAck(MethodView):
    @authorize("operator")
    @audit("change", from_answer())
    @blp.response(200, AlertSchema)
    def post(self, tenant, alert_id):
        """Acknowledge an escalation for the region's operators; acknowledging twice keeps the first time"""
        with _db().session() as session:
            alert = commands.acknowledge_operator_alert(session, tenant, alert_id, _now())
        if alert is None:
            not_found()
        return alert


@blp.route("/jobcoaches/<id:jobcoach_id>/channels")
class Channels(MethodView):
    @mark_etag
    @authorize("jobcoach", subject_arg="jobcoach_id")
    @blp.response(200, ChannelsSchema)
    def get(self, tenant, jobcoach_id):
        """The jobcoach's alert channels"""
        with _db().session() as session:
            row = store.get_channels(session, tenant, jobcoach_id)
        if row is None:
            not_found()
        return _channels_view(row), 200, _channels_etag(row)

    @mark_etag
    @authorize("jobcoach", subject_arg="jobcoach_id")
    @blp.arguments(ChannelsInputSchema)
    @blp.response(200, ChannelsSchema)
    def put(self, channels, tenant, jobcoach_id):
        """Set the jobcoach's webhook (URL and signing secret), e-mail address and whether mail comes as a
        daily digest"""
        with _db().session() as session:
            current = store.get_channels(session, tenant, jobcoach_id)
            version = _channels_version(current, tenant)
            row = commands.set_channels(session, tenant, jobcoach_id, channels, version)
        return _channels_view(row), 200, _channels_etag(row)


@blp.route("/jobcoaches/<id:jobcoach_id>/channels/rotate-secret")
class ChannelsSecretRotation(MethodView):
    @authorize("jobcoach", subject_arg="jobcoach_id")
    @blp.arguments(RotateSecretInputSchema)
    @blp.response(200, ChannelsSchema)
    def post(self, rotation, tenant, jobcoach_id):
        """Give the webhook a new signing secret, signing with the old one as well for
        ``previous_valid_hours`` (24 by default), so that the receiver can switch without refusing a delivery"""
        until = _now() + timedelta(hours=rotation["previous_valid_hours"])
        with _db().session() as session:
            try:
                row = commands.rotate_webhook_secret(session, tenant, jobcoach_id, rotation["webhook_secret"], until)
            except commands.SameSecret:
                invalid({"webhook_secret": ["is the secret in use already"]})
        if row is None:
            not_found()
        return _channels_view(row), 200, _channels_etag(row)
