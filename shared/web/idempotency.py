"""``Idempotency-Key`` on every POST: a retried request gets the first answer again, and nothing happens twice.

The key is claimed (committed, visible to every replica) before the request runs; on a SQLite file, where
every replica runs on one host, it is held by a lock instead (:class:`shared.idempotency.KeyLocks`) and its
row is written only with the answer. A view that opens its unit of work with :func:`transaction` has its
commit deferred until the answer is known, and the answer is written into the key's row in that same
transaction: the effect and the stored answer exist together or not at all. A view that commits on its
own (``db.session()``) still works: its answer is stored right after, in a transaction of its own; a
process dying in between leaves the key free to a retry (at once when held by a lock, after
:data:`shared.idempotency.LEASE` when claimed by a row), so such views must be safe to run twice by their
own rules (a unique index, a state check), as the matching and notification POSTs are.

Only successful answers (2xx) are stored. A request that fails changed nothing, so a retry under the
same key runs again and may succeed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Response, g, make_response, request
from sqlalchemy.orm import Session
from webargs.flaskparser import abort  # flask-smorest's abort, imported where it is typed NoReturn

from shared import idempotency
from shared.db import Database
from shared.loops import Every
from shared.web.problems import VALIDATION_PROBLEM, problem

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# What a replay repeats besides status and body; rate-limit and other per-answer headers are fresh.
STORED_HEADERS = ("Content-Type", "Location", "ETag")
KEY_REUSED_PROBLEM = "https://werkbrug.nl/problems/idempotency-key-reused"
IN_PROGRESS_PROBLEM = "https://werkbrug.nl/problems/request-in-progress"
_purge = Every(600)


@dataclass
class _Pending:
    """The request's claim, and the session of its unit of work once the view opened one."""

    db: Database
    claim: idempotency.Claim | idempotency.HeldKey
    session: Session | None = None

    def give_up(self) -> None:
        """The request failed and changed nothing: a retry under the same key may run it again."""
        if isinstance(self.claim, idempotency.HeldKey):
            return  # nothing was written; letting go of the lock is enough
        with self.db.relaxed_transaction() as connection:
            idempotency.release(connection, self.claim)

    def let_go(self) -> None:
        if isinstance(self.claim, idempotency.HeldKey):
            self.claim.lock.release()


def key_error(key: str) -> str | None:
    """Why ``key`` cannot serve as an Idempotency-Key, or None."""
    if not key.strip():
        return "must not be empty"
    if len(key) > idempotency.MAX_KEY_LENGTH:
        return f"takes at most {idempotency.MAX_KEY_LENGTH} characters"
    if not all(32 <= ord(char) < 127 for char in key):
        return "takes printable ASCII characters only"
    return None


def principal_hash(api_key: str) -> str:
    """The caller's scope for keys: a hash of their API key (domain-separated from the registry's)."""
    return hashlib.sha256(b"werkbrug-idempotency\0" + api_key.encode("utf-8")).hexdigest()


def request_fingerprint() -> str:
    """Method, path, query and body; a JSON body canonically, so that a retry may reorder its members."""
    body = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode("utf-8")
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.query_string, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@contextlib.contextmanager
def transaction(db: Database) -> Iterator[Session]:
    """A view's unit of work, like ``db.session()``. Under an ``Idempotency-Key`` the commit waits until
    the answer is stored with it; the block's own errors still roll everything back."""
    pending: _Pending | None = g.get("werkbrug_idempotency")
    if pending is None or pending.db is not db:
        with db.session() as session:
            yield session
        return
    if pending.session is None:
        pending.session = db.new_session()
    try:
        yield pending.session
        pending.session.flush()
    except BaseException:
        pending.session.rollback()
        raise


def _replay(answer: idempotency.StoredAnswer) -> Response:
    response = Response(answer.body, status=answer.status_code)
    for name, value in answer.headers.items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _claim(db: Database, scope: str, key: str, fingerprint: str, clock: Callable) -> idempotency.Outcome:
    """The claim in its own transaction, committed before the request runs so that every replica sees it;
    on a SQLite file a lock that every process on the host sees, and a read."""
    if db.sqlite_file is not None:
        return idempotency.hold(db, scope, key, fingerprint, clock())
    with db.relaxed_transaction() as connection:
        return idempotency.claim(connection, scope, key, fingerprint, clock())


def run_idempotently(db: Database, clock: Callable, api_key: str, view: Callable[[], object]) -> Response:
    """Run ``view`` (a POST, already authorised) honouring the request's ``Idempotency-Key``."""
    key = request.headers.get(HEADER)
    if key is None:
        return make_response(view())
    error = key_error(key)
    if error is not None:
        return problem(422, f"The Idempotency-Key header {error}.", type_=VALIDATION_PROBLEM, errors={HEADER: [error]})
    outcome = _claim(db, principal_hash(api_key), key, request_fingerprint(), clock)
    if outcome.answer is not None:
        return _replay(outcome.answer)
    if outcome.refusal == "mismatch":
        return problem(
            422,
            "This Idempotency-Key was used with another request; send a new key for a new request.",
            type_=KEY_REUSED_PROBLEM,
            errors={HEADER: ["used with another request"]},
        )
    if outcome.refusal == "in_progress":
        response = problem(
            409,
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            type_=IN_PROGRESS_PROBLEM,
        )
        response.headers["Retry-After"] = "1"
        return response
    # claim() gives a claim whenever it gives neither an answer nor a refusal.
    assert outcome.claim is not None, "claim() gave no answer, no refusal and no claim"
    pending = _Pending(db, outcome.claim)
    g.werkbrug_idempotency = pending
    try:
        response = make_response(view())
        _settle(pending, response, clock)
    except BaseException:
        if pending.session is not None:
            pending.session.rollback()
        pending.give_up()
        raise
    finally:
        g.pop("werkbrug_idempotency", None)
        try:
            if pending.session is not None:
                pending.session.close()
        finally:
            # Only once the effect and its answer are committed (or undone): a retry then finds the answer.
            pending.let_go()
    if _purge.due():
        _purge_expired(db, clock)
    return response


def _settle(pending: _Pending, response: Response, clock: Callable) -> None:
    """Store a successful answer with the effect, or give the key up after a failure."""
    session = pending.session
    if not 200 <= response.status_code < 300:
        if session is not None:
            session.commit()
        pending.give_up()
        return
    headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
    answer = idempotency.answer_of(response.status_code, headers, response.get_data())
    if session is not None:
        if not idempotency.complete(session, pending.claim, answer, clock()):
            session.rollback()
            abort(409, message="A retry of this request took over its Idempotency-Key; this attempt was undone.")
        session.commit()
        return
    with pending.db.session() as own:
        idempotency.complete(own, pending.claim, answer, clock())


def _purge_expired(db: Database, clock: Callable) -> None:
    try:
        with db.session() as session:
            idempotency.purge_expired(session, clock())
    except Exception as exc:  # housekeeping must never fail the answer it follows
        log.warning("could not purge idempotency keys", extra={"ctx": {"error": type(exc).__name__}})
