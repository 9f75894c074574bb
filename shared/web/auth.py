"""One decorator that enforces tenant, role and (where the path names one) subject on every request.

Another tenant's object, and a path naming another subject, are answered 404 as if they did not exist,
so that a key for one region cannot even learn what another region holds.
"""

from __future__ import annotations

import functools
from copy import deepcopy

from flask import current_app, g, request
from webargs.flaskparser import abort  # flask-smorest's abort, imported where it is typed NoReturn

from shared.registry import Principal
from shared.web.idempotency import run_idempotently


def bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def authorize(*roles: str, subject_arg: str | None = None):
    """Allow the listed roles of the path's tenant; with ``subject_arg``, only the subject the path names.

    A POST runs under its ``Idempotency-Key`` (see :mod:`shared.web.idempotency`), scoped to the key that
    authenticated it.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            context = current_app.extensions["werkbrug"]
            key = bearer_key()
            principal = context.registry.authenticate(key) if key else None
            if key is None or principal is None:
                abort(401, message="A valid API key is required (Authorization: Bearer <key>).")
            if principal.tenant != kwargs.get("tenant"):
                abort(404, message="Not found.")
            if principal.role not in roles:
                abort(403, message=f"The {principal.role} role may not do this.")
            if subject_arg is not None and kwargs.get(subject_arg) != principal.subject:
                abort(404, message="Not found.")
            g.principal = principal
            if request.method == "POST":
                return run_idempotently(context.db, context.clock, key, lambda: view(*args, **kwargs))
            return view(*args, **kwargs)

        # Read by the OpenAPI document: who may call, and so whether 403 can be answered. flask-smorest keeps
        # a view's documentation in its ``_apidoc`` attribute, which functools.wraps copied from the view.
        apidoc = deepcopy(getattr(view, "_apidoc", {}))
        apidoc["werkbrug_roles"] = list(roles)
        vars(wrapper)["_apidoc"] = apidoc
        return wrapper

    return decorator


def current_principal() -> Principal:
    return g.principal


def current_subject() -> str:
    """The calling employer's or jobcoach's own id, in a view only those roles may call."""
    subject = current_principal().subject
    # The registry refuses a key or a person of these roles without a subject (see ROLES_WITH_SUBJECT).
    assert subject is not None, "called from a view open to a role without a subject"
    return subject
