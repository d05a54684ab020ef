"""Facilitator tablet flow: today's sessions, the roster, signing, marking, closing.

Views parse input, call one service, and pick the page or the partial; all rules and writes
live in ``portal.services.roster``.
"""
from __future__ import annotations

import base64
import binascii

from flask import (abort, current_app, make_response, redirect, render_template, request,
                   url_for)
from flask_login import current_user

from portal.access_control import allow
from portal.clock import local_today
from portal.documents.roster import STATUS_LABEL
from portal.errors import is_partial_request
from portal.program import current_program
from portal.rosters import bp
from portal.services import roster as svc
from portal.services.errors import Invalid, ServiceError
from portal.services.roster import RosterClosed
from portal.services.schedule import ensure_sessions

STAFF = ("facilitator", "clinician", "admin")
DATA_URI_PREFIX = "data:image/png;base64,"


def _decode_png(field: str) -> bytes:
    """The pad sends ``data:image/png;base64,...``; a file upload is accepted too."""
    upload = request.files.get(field)
    if upload:
        return upload.read(current_app.config["MAX_SIGNATURE_BYTES"] + 1)
    raw = request.form.get(field, "")
    if not raw:
        return b""
    if not raw.startswith(DATA_URI_PREFIX):
        raise Invalid("The signature must be a PNG image from the signing pad.", field="signature")
    try:
        return base64.b64decode(raw[len(DATA_URI_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Invalid("The signature data was damaged in transit; please sign again.",
                          field="signature") from exc


def _session_or_404(session_id: int):
    try:
        session = svc.get_session(session_id)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    if current_user.role == "facilitator" and session.facilitator_id != current_user.id:
        # Name who has it: a regular facilitator whose group is covered today must know by whom.
        who = session.facilitator.name if session.facilitator else "someone else"
        abort(403, description=f"This group is assigned to another facilitator: {who} has "
                               f"{session.cohort.name} on {session.dos:%A, %B %-d}.")
    return session


def _tz():
    return current_program().tz


def _closed_elsewhere(session_id: int, reason: str = "tap", message: str = ""):
    """The roster was closed (on another tablet, or a moment ago on this one): send the tablet
    to the closed, read-only view, which says what happened, instead of answering every tap
    with an error the user cannot see. htmx follows ``HX-Redirect`` whatever the status."""
    target = url_for(".roster", session_id=session_id, closed=reason)
    if is_partial_request():
        # The body says it too, for a client that does not follow the header.
        resp = make_response(render_template("_flash.html", m=message or
                                             "This roster is closed and can no longer change."),
                             409)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target, code=303)


@bp.route("/today")
@allow(*STAFF)
def today():
    program = current_program()
    day = local_today(program.tz)
    sessions = ensure_sessions(program, day)
    earlier = svc.open_rosters_before(program, day)
    if current_user.role == "facilitator":
        sessions = [s for s in sessions if s.facilitator_id == current_user.id]
        earlier = [s for s in earlier if s.facilitator_id == current_user.id]
    recent = svc.recent_rosters(program, day, facilitator_id=current_user.id
                                if current_user.role == "facilitator" else None)
    return render_template("rosters/today.html", sessions=sessions, earlier=earlier, day=day,
                           tz=program.tz, recent=[s for s in recent if s.is_closed],
                           recent_days=svc.RECENT_DAYS)


@bp.route("/sessions/<int:session_id>")
@allow(*STAFF)
def roster(session_id: int):
    session = _session_or_404(session_id)
    return render_template("rosters/roster.html", session=session, tz=_tz(),
                           problems=svc.closing_problems(session),
                           closed_notice=request.args.get("closed") if session.is_closed else None)


@bp.route("/sessions/<int:session_id>/state")
@allow(*STAFF)
def state(session_id: int):
    """Polled by an open roster page (every minute and when the tablet wakes): 204 while the
    roster is open, else the tablet is sent to the closed view."""
    session = _session_or_404(session_id)
    if session.is_closed:
        return _closed_elsewhere(session_id, "elsewhere")
    return "", 204


@bp.app_template_global()
def unsigned_attendees(session):
    return svc.unsigned_attendees(session)


@bp.app_template_global()
def preclose_warnings(session):
    return svc.preclose_warnings(session)


@bp.app_template_global()
def signing_opens(session):
    """When signing opens, if that is still ahead (program-local clock time), else None."""
    from datetime import timedelta

    from portal.clock import now_utc

    opens = session.scheduled_start - timedelta(minutes=svc.margins().sign_early)
    if now_utc() < opens:
        return opens.astimezone(session.cohort.program.tz).strftime("%-I:%M %p")
    return None


@bp.app_template_global()
def roster_order(entries):
    return svc.roster_order(entries)


@bp.app_template_filter()
def status_label(status: str) -> str:
    """The same words on the tablet as on the archived PDF."""
    return STATUS_LABEL[status]


@bp.route("/sessions/<int:session_id>/entries/<int:entry_id>/sign")
@allow(*STAFF)
def sign_panel(session_id: int, entry_id: int):
    session = _session_or_404(session_id)
    entry = next((e for e in session.entries if e.id == entry_id), None)
    if entry is None:
        abort(404, description="That patient is not on this session's roster.")
    if session.is_closed:
        return _closed_elsewhere(session_id)
    if not session.is_signing_day:
        abort(409, description="Patients sign only on the date of service "
                               f"({session.dos:%A, %B %-d}).")
    early = svc.signing_not_open(session)
    if early:
        abort(409, description=early)
    if not is_partial_request():
        return redirect(url_for(".roster", session_id=session_id))
    return render_template("rosters/_sign_panel.html", session=session, entry=entry)


@bp.route("/sessions/<int:session_id>/entries/<int:entry_id>/signature", methods=["POST"])
@allow(*STAFF)
def sign(session_id: int, entry_id: int):
    session = _session_or_404(session_id)
    try:
        png = _decode_png("signature_png")
        entry = svc.sign_attendance(session_id, entry_id, png=png,
                                    strokes=request.form.get("strokes"),
                                    user_agent=request.headers.get("User-Agent"),
                                    max_png_bytes=current_app.config["MAX_SIGNATURE_BYTES"])
    except RosterClosed as exc:
        return _closed_elsewhere(session_id, message=exc.message)
    except ServiceError as exc:
        entry = next((e for e in session.entries if e.id == entry_id), None)
        if entry is not None and exc.status in (409, 422):
            # Answer inside the full-screen panel: the page's flash area is hidden behind it.
            return render_template("rosters/_sign_panel.html", session=session, entry=entry,
                                   error=exc.message, final=exc.status == 409), exc.status
        abort(exc.status, description=exc.message)
    session = entry.session
    return render_template("rosters/_signed.html", session=session, entry=entry, tz=_tz(),
                           problems=svc.closing_problems(session))


@bp.route("/sessions/<int:session_id>/entries/<int:entry_id>/mark", methods=["POST"])
@allow(*STAFF)
def mark(session_id: int, entry_id: int):
    session = _session_or_404(session_id)
    try:
        entry = svc.mark_attendance(session_id, entry_id, status=request.form.get("status", ""),
                                    arrival=request.form.get("arrival"),
                                    departure=request.form.get("departure"))
    except RosterClosed as exc:
        return _closed_elsewhere(session_id, message=exc.message)
    except ServiceError as exc:
        if exc.status == 422:
            entry = next((e for e in session.entries if e.id == entry_id), None)
            if entry is None:
                abort(404)
            return render_template("rosters/_row.html", session=session, entry=entry, tz=_tz(),
                                   error=exc.message, form=request.form), 422
        abort(exc.status, description=exc.message)
    return _row_with_status(entry)


def _with_close_status(html: str, session) -> str:
    """Append the "Before closing" checklist as an out-of-band swap: every change to the roster
    can change what is left to do."""
    return html + render_template("rosters/_close_status.html", session=session,
                                  problems=svc.closing_problems(session), oob=True)


def _row_with_status(entry):
    return _with_close_status(
        render_template("rosters/_row.html", session=entry.session, entry=entry, tz=_tz()),
        entry.session)


@bp.route("/sessions/<int:session_id>/times", methods=["POST"])
@allow(*STAFF)
def times(session_id: int):
    _session_or_404(session_id)
    try:
        session = svc.set_session_times(session_id, start=request.form.get("start"),
                                        end=request.form.get("end"),
                                        modality=request.form.get("modality"),
                                        patient_location=request.form.get("patient_location"),
                                        break_minutes=request.form.get("break_minutes"))
    except RosterClosed as exc:
        return _closed_elsewhere(session_id, message=exc.message)
    except ServiceError as exc:
        if exc.status == 422:
            session = svc.get_session(session_id)
            return render_template("rosters/_times.html", session=session, tz=_tz(),
                                   error=exc.message, form=request.form), 422
        abort(exc.status, description=exc.message)
    return _with_close_status(
        render_template("rosters/_times.html", session=session, tz=_tz(), saved=True), session)


@bp.route("/sessions/<int:session_id>/close", methods=["POST"])
@allow(*STAFF)
def close(session_id: int):
    session = _session_or_404(session_id)
    by_password = request.form.get("sign_method") == "password"
    try:
        png = b"" if by_password else _decode_png("signature_png")
        svc.close_roster(session_id, facilitator=current_user._get_current_object(),
                         typed_name=request.form.get("typed_name", ""),
                         attested=request.form.get("attest") == "yes", signature_png=png,
                         acknowledge_unsigned=request.form.get("ack_unsigned") == "yes",
                         max_png_bytes=current_app.config["MAX_SIGNATURE_BYTES"],
                         password=request.form.get("password", "") if by_password else None)
    except RosterClosed as exc:
        return _closed_elsewhere(session_id, message=exc.message)
    except ServiceError as exc:
        if exc.status == 422:
            session = svc.get_session(session_id)
            return render_template("rosters/_close.html", session=session, error=exc.message,
                                   errors=exc.details or [exc.message], form=request.form), 422
        abort(exc.status, description=exc.message)
    # Closing hands the facilitator straight to this session's notes (issue 11).
    target = (url_for("notes.queue", session_id=session_id)
              if "notes.queue" in current_app.view_functions
              else url_for(".roster", session_id=session_id))
    if is_partial_request():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)

