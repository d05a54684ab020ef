"""Payer-audit readiness: per patient and date of service, is the claim provable?

Both pages call ``portal.rules`` through the same fact loader the billing board uses, so a
verdict here and on the reconciliation board can never disagree.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from flask import Blueprint, abort, current_app, g, render_template, request
from flask_login import current_user

from portal.access_control import allow
from portal.access_scope import may_see_patient, sees_all_patients
from portal.clock import local_today
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.input_dates import DateInputError, read_date
from portal.models import Patient
from portal.program import current_program
from portal.services.witnesses import recent_alarms
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.readiness import patient_readiness

bp = Blueprint("readiness", __name__, url_prefix="/readiness")

READERS = ("clinician", "billing", "auditor", "admin")
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _date_range() -> tuple[date, date]:
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (program-local), default the last 30 days to today."""
    today = local_today(current_program().tz)
    try:
        last = read_date(request.args["to"], "end date") if request.args.get("to") else today
        first = (read_date(request.args["from"], "start date") if request.args.get("from")
                 else last - timedelta(days=DEFAULT_DAYS - 1))
    except DateInputError as exc:
        abort(400, description=str(exc))
    if first > last:
        abort(400, description="The start date is after the end date.")
    if (last - first).days >= MAX_DAYS:
        abort(400, description="Choose a range of at most one year.")
    return first, last


@bp.route("/")
@allow(*READERS)
def program():
    program = current_program()
    first, last = _date_range()
    facts = load_facts(program, first, last)
    patients_q = db.select(Patient).order_by(Patient.legal_last, Patient.legal_first)
    if not sees_all_patients(current_user.role, current_user.payer_scope_id):
        patients_q = patients_q.where(Patient.payer_id == current_user.payer_scope_id)
    patients = db.session.scalars(patients_q).all()
    visible = {p.id for p in patients}
    lines = [ln for ln in derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                                                 documentation=facts.documentation)
             if first <= ln.dos <= last and ln.patient_id in visible]
    by_patient: dict = {}
    for ln in lines:
        c = by_patient.setdefault(ln.patient_id, Counter())
        c[ln.status] += 1
    rows = [(p, by_patient.get(p.id, Counter())) for p in patients]
    rows.sort(key=lambda r: (-r[1]["blocked"], r[0].legal_last))
    return render_template("readiness/program.html", rows=rows, first=first, last=last,
                           totals=Counter(ln.status for ln in lines),
                           witness_alarms=recent_alarms() if current_user.role == "admin" else ())


@bp.route("/patients/<int:patient_id>")
@allow(*READERS)
def patient(patient_id: int):
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        abort(404, description="There is no patient with that id.")
    if not may_see_patient(current_user.role, current_user.payer_scope_id, patient.payer_id):
        abort(403, description="This patient is outside your access.")
    g.patient_id = patient.id
    program = current_program()
    first, last = _date_range()
    facts = load_facts(program, first, last, patient_ids=[patient.id])
    days = patient_readiness(patient.id, first, last, *facts.args(),
                             current_app.extensions["rulebook"], facts.documentation)
    from portal.no_shows.facts import classified_by_dos

    return render_template("readiness/patient.html", patient=patient, days=days, first=first,
                           last=last, documents=_documents_by_seq(patient.id),
                           absences=classified_by_dos(program, patient.id, first, last))


def _documents_by_seq(patient_id: int) -> dict[int, int]:
    from portal.models import ArchivedDocument, ArchivedDocumentPatient

    rows = db.session.execute(
        db.select(ArchivedDocument.entry_seq, ArchivedDocument.id)
        .join(ArchivedDocumentPatient).where(ArchivedDocumentPatient.patient_id == patient_id))
    return {seq: doc_id for seq, doc_id in rows}
