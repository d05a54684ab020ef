"""Write one access-log row per authenticated request (HIPAA 45 CFR 164.312(b) audit controls;
42 CFR Part 2 requires knowing who read SUD records). Views that show one patient's records set
``g.patient_id`` so the row names the patient."""
from __future__ import annotations

from flask import current_app, g, make_response, request
from flask_login import current_user
from sqlalchemy.exc import OperationalError

from portal.extensions import db
from portal.models.access import AccessLogEntry


def log_access(response):
    """``after_request`` hook. Never logs request bodies: no note text, no signatures."""
    if request.endpoint in (None, "static") or not current_user.is_authenticated:
        return response
    # Whatever a view left uncommitted was not meant to persist (services commit their own work);
    # roll it back so the log row cannot carry it along.
    db.session.rollback()
    db.session.add(AccessLogEntry(
        user_id=current_user.id, role=current_user.role, method=request.method,
        path=request.full_path.rstrip("?").replace("\x00", "%00")[:500], endpoint=request.endpoint,
        patient_id=g.get("patient_id"), status_code=response.status_code,
        remote_addr=(request.remote_addr or "")[:64],
    ))
    try:
        db.session.commit()
    except OperationalError as exc:
        # No log row, no page: a read of patient records must not go unlogged. The database
        # was busy or away (SQLite's lock wait ran out; PostgreSQL restarting): say so, as the
        # view's own database errors do, instead of a 500.
        db.session.rollback()
        from portal.errors import error_response

        reason = (str(getattr(exc, "orig", exc)).splitlines() or [""])[0][:120]
        current_app.logger.error("database unavailable on %s %s (access log): %s", request.method,
                                 request.path, reason)
        return make_response(error_response(503, "The database is busy or restarting, so this "
                                                 "page could not be recorded in the access log "
                                                 "and is not shown. Try again in a minute."))
    return response
