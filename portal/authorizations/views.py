"""Authorization pages. Views parse input, call one service and pick the page; rules and
writes live in ``portal.services.authorizations``."""
from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.access_control import allow
from portal.auditors import access as auditor_access
from portal.authorizations import bp, timeline
from portal.authorizations.queue import build_queue
from portal.clock import local_today, now_utc
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import Authorization, CareEpisode, Patient, PayerLetter
from portal.program import current_program
from portal.rules import authorizations as ar
from portal.rules.claim_lines import derive_claim_lines
from portal.services import authorizations as svc
from portal.services.errors import ServiceError

WRITERS = ("clinician", "billing", "admin")
READERS = WRITERS + ("auditor",)
MAX_LETTER_BYTES = 5 * 1024 * 1024
TIMELINE_BACK_DAYS = 90
TIMELINE_AHEAD_DAYS = 45


def _patient(patient_id: int) -> Patient:
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        abort(404, description="There is no patient with that id.")
    # The page shows the patient's whole authorization history: an auditor needs a grant
    # naming the patient with no date-of-service limit (else 404, as for any other record).
    auditor_access.ensure_whole_history(patient)
    g.patient_id = patient.id
    return patient


def _auth(auth_id: int) -> Authorization:
    auth = db.session.get(Authorization, auth_id)
    if auth is None:
        abort(404, description="There is no such authorization.")
    _patient(auth.patient_id)
    return auth


@bp.route("/")
@allow(*WRITERS)
def queue():
    program = current_program()
    now = now_utc()
    items, alerts = build_queue(program, now)
    return render_template("authorizations/queue.html", items=items, alerts=alerts, now=now,
                           tz=program.tz, labels=ar.STATE_LABELS)


def _patient_page(patient: Patient, *, error: str | None = None, details=None,
                  status: int = 200, form_auth: int | None = None):
    program = current_program()
    now = now_utc()
    today = local_today(program.tz, now)
    auths = db.session.scalars(select(Authorization).where(
        Authorization.patient_id == patient.id).order_by(Authorization.start_date,
                                                          Authorization.id)).all()
    episodes = db.session.scalars(select(CareEpisode).where(
        CareEpisode.patient_id == patient.id).order_by(CareEpisode.start_date.is_(None).desc(),
                                                       CareEpisode.start_date)).all()
    first = today - timedelta(days=TIMELINE_BACK_DAYS)
    if auths:
        first = max(first, min(a.start_date for a in auths) - timedelta(days=7))
    last = today + timedelta(days=TIMELINE_AHEAD_DAYS)
    facts = load_facts(program, first, today, patient_ids=[patient.id], lookback_days=0)
    lines = derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                               documentation=facts.documentation)
    attended = {ln.dos: ln.status for ln in lines
                if ln.patient_id == patient.id and ln.status != "no_service"}
    used: dict[str, int] = {}
    for ln in lines:
        if ln.status == "ready" and ln.authorization_number:
            used[ln.authorization_number] = used.get(ln.authorization_number, 0) + ln.units
    picture = timeline.build(
        first, last, [(e.level, e.start_date, e.end_date) for e in episodes],
        [(a.label, a.start_date, a.end_date, a.status) for a in auths], attended)
    items, alerts = build_queue(program, now, patient_ids=[patient.id])
    return render_template(
        "authorizations/patient.html", patient=patient, auths=auths, episodes=episodes,
        used=used, picture=picture, items={i.auth.id: i for i in items},
        alerts={a.auth.id: a for a in alerts}, tz=program.tz, labels=ar.STATE_LABELS,
        transitions=ar.TRANSITIONS, levels=ar.LEVELS, step_down_from=ar.STEP_DOWN_FROM,
        approved_states=ar.APPROVED_STATES, approving=ar.APPROVING_STATES,
        needs_reason=ar.NEEDS_REASON, error=error, details=details or [],
        form_auth=form_auth, can_write=current_user.role in WRITERS, today=today), status


@bp.route("/patients/<int:patient_id>")
@allow(*READERS)
def patient(patient_id: int):
    return _patient_page(_patient(patient_id))


def _request_form() -> svc.RequestForm:
    f = request.form
    attachments = []
    for raw in f.getlist("attach"):
        if raw.isdigit():
            attachments.append(int(raw))
    extends = f.get("extends_id", "")
    return svc.RequestForm(
        level=f.get("level", ""), edition=f.get("edition", ""), code=f.get("code", ""),
        start=f.get("start", ""), end=f.get("end", ""), units=f.get("units", ""),
        units_per_week=f.get("units_per_week", ""), request_kind=f.get("request_kind", ""),
        diagnoses=f.get("diagnoses", ""), history=f.get("history", ""),
        ratings={i: f.get(f"rating_{i}", "") for i in range(1, 7)},
        rationales={i: f.get(f"rationale_{i}", "") for i in range(1, 7)},
        extends_id=int(extends) if extends.isdigit() else None,
        extension_reason=f.get("extension_reason", ""), attachments=attachments)


def _request_page(patient, form, *, prior=None, docs=(), error=None, details=None, status=200):
    auths = db.session.scalars(select(Authorization).where(
        Authorization.patient_id == patient.id,
        Authorization.status.in_(ar.APPROVED_STATES))).all()
    return render_template(
        "authorizations/request.html", patient=patient, form=form, prior=prior, docs=docs,
        dimensions=ar.ASAM_DIMENSIONS, levels=ar.LEVELS, error=error, details=details or [],
        extendable=auths), status


@bp.route("/patients/<int:patient_id>/new", methods=["GET", "POST"])
@allow(*WRITERS)
def new_request(patient_id: int):
    patient = _patient(patient_id)
    if request.method == "GET":
        form = svc.RequestForm(edition=patient.asam_edition or "3",
                               diagnoses=(patient.diagnoses or "").replace(",", ", "))
        return _request_page(patient, form)
    form = _request_form()
    try:
        auth = svc.create_request(patient.id, form, actor=current_user)
    except ServiceError as exc:
        return _request_page(patient, form, error=exc.message, details=exc.details,
                             status=exc.status)
    return redirect(url_for(".patient", patient_id=patient.id, _anchor=f"auth-{auth.id}"))


@bp.route("/<int:auth_id>/step-down", methods=["GET", "POST"])
@allow(*WRITERS)
def step_down(auth_id: int):
    prior_auth = _auth(auth_id)
    patient = prior_auth.patient
    try:
        prior, prefill, docs = svc.step_down_prefill(auth_id)
    except ServiceError as exc:
        return _patient_page(patient, error=exc.message, status=exc.status)
    if request.method == "GET":
        return _request_page(patient, prefill, prior=prior, docs=docs)
    form = _request_form()
    try:
        auth = svc.create_request(patient.id, form, actor=current_user,
                                  prior_authorization_id=prior.id)
    except ServiceError as exc:
        return _request_page(patient, form, prior=prior, docs=docs, error=exc.message,
                             details=exc.details, status=exc.status)
    return redirect(url_for(".patient", patient_id=patient.id, _anchor=f"auth-{auth.id}"))


def _decision() -> svc.Decision:
    f = request.form
    return svc.Decision(at=f.get("at", ""), note=f.get("note", ""), number=f.get("number", ""),
                        start=f.get("start", ""), end=f.get("end", ""), units=f.get("units", ""),
                        units_per_week=f.get("units_per_week", ""))


@bp.route("/<int:auth_id>/transition", methods=["POST"])
@allow(*WRITERS)
def transition(auth_id: int):
    return _record(auth_id, request.form.get("to", ""), amend=False)


@bp.route("/<int:auth_id>/amend", methods=["POST"])
@allow(*WRITERS)
def amend(auth_id: int):
    return _record(auth_id, None, amend=True)


def _record(auth_id: int, target: str | None, *, amend: bool):
    """A transition to ``target`` (or, with ``amend``, a change within the current state); on
    refusal the patient page again with the message beside that authorization."""
    auth = _auth(auth_id)
    patient_id = auth.patient_id
    try:
        svc.transition(auth_id, auth.status if amend else target, _decision(),
                       actor=current_user, amend=amend)
    except ServiceError as exc:
        db.session.rollback()
        return _patient_page(db.session.get(Patient, patient_id), error=exc.message,
                             details=exc.details, status=exc.status, form_auth=auth_id)
    return redirect(url_for(".patient", patient_id=patient_id, _anchor=f"auth-{auth_id}"))


@bp.route("/<int:auth_id>/letters", methods=["POST"])
@allow(*WRITERS)
def upload_letter(auth_id: int):
    auth = _auth(auth_id)
    patient_id = auth.patient_id
    upload = request.files.get("letter")
    try:
        if upload is None or not upload.filename:
            raise svc.Invalid("Choose the payer's letter (a PDF file) to upload.")
        limit = current_app.config.get("MAX_LETTER_BYTES", MAX_LETTER_BYTES)
        try:
            data = upload.stream.read(limit + 1)
        finally:
            upload.close()  # a large upload is spooled to a temporary file
        svc.upload_letter(auth_id, upload.filename, data, actor=current_user,
                          max_bytes=limit)
    except ServiceError as exc:
        db.session.rollback()
        return _patient_page(db.session.get(Patient, patient_id), error=exc.message,
                             status=exc.status, form_auth=auth_id)
    return redirect(url_for(".patient", patient_id=patient_id, _anchor=f"auth-{auth_id}"))


@bp.route("/letters/<int:letter_id>.pdf")
@allow(*READERS)
def letter(letter_id: int):
    import io

    letter = db.session.get(PayerLetter, letter_id)
    if letter is None:
        abort(404, description="There is no such letter.")
    _auth(letter.authorization_id)
    data = letter.decrypted if letter.decrypted is not None else letter.original
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"payer-letter-{letter.id}.pdf")
