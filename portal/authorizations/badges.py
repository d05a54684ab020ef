"""Template helpers other pages use: the tablet roster's "no authorization today" badge and the
overdue-authorization list on the billing board and program page. Reads only, cached per
request so a roster of twelve costs one query."""
from __future__ import annotations

from flask import current_app, g
from sqlalchemy import select

from portal.clock import now_utc
from portal.extensions import db
from portal.models import AttendanceEntry, Authorization, Patient, Payer
from portal.rules.authorizations import APPROVED_STATES, HOLDING_STATES


def _gaps(session) -> dict[int, str]:
    """patient id -> "none" | "pending" for the session's patients whose payer requires an
    authorization and whom no approved one covers on the session's date."""
    rows = db.session.execute(
        select(AttendanceEntry.patient_id, Payer.rule_key)
        .join(Patient, Patient.id == AttendanceEntry.patient_id)
        .join(Payer, Payer.id == Patient.payer_id)
        .where(AttendanceEntry.session_id == session.id)).all()
    if not rows:
        return {}
    rulebook = current_app.extensions["rulebook"]
    required = set()
    for pid, key in rows:
        try:
            if rulebook.rules_for(key, session.dos).authorization_required:
                required.add(pid)
        except LookupError:
            required.add(pid)  # unknown payer: the claim rules block it anyway
    status: dict[int, set] = {}
    for pid, st in db.session.execute(
            select(Authorization.patient_id, Authorization.status).where(
                Authorization.patient_id.in_(required or {-1}),
                Authorization.start_date <= session.dos, Authorization.end_date >= session.dos)):
        status.setdefault(pid, set()).add(st)
    out = {}
    for pid in required:
        st = status.get(pid, set())
        if st & APPROVED_STATES:
            continue
        out[pid] = "pending" if st & HOLDING_STATES else "none"
    return out


def auth_gap(entry, session) -> str | None:
    """"none"/"pending" when no approved authorization covers this roster row's date."""
    cache = g.setdefault("_auth_gaps", {})
    if session.id not in cache:
        cache[session.id] = _gaps(session)
    return cache[session.id].get(entry.patient_id)


def overdue_authorizations():
    from portal.authorizations.queue import overdue_items
    from portal.program import current_program

    if "_auth_overdue" not in g:
        g._auth_overdue = overdue_items(current_program(), now_utc())
    return g._auth_overdue
