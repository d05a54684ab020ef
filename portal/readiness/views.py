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
from portal.auditors import access as auditor_access
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


def _date_range(default_last: date | None = None) -> tuple[date, date]:
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (program-local), default the last 30 days to today
    (or to ``default_last``)."""
    today = default_last or local_today(current_program().tz)
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
    scoped = auditor_access.scoped()
    if scoped and not auditor_access.scope().grants:
        return render_template("auditors/no_access.html", **_ended()), 200
    first, last = _date_range()
    facts = load_facts(program, first, last)
    patients_q = db.select(Patient).order_by(Patient.legal_last, Patient.legal_first)
    if scoped:  # only patients an active grant names, only dates of service it covers
        patients_q = patients_q.where(auditor_access.scope().patient_filter())
    patients = db.session.scalars(patients_q).all()
    visible = {p.id: p for p in patients}
    lines = [ln for ln in derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                                                 documentation=facts.documentation)
             if first <= ln.dos <= last and ln.patient_id in visible
             and (not scoped or auditor_access.scope().covers(
                 ln.patient_id, visible[ln.patient_id].payer_id, ln.dos))]
    by_patient: dict = {}
    for ln in lines:
        c = by_patient.setdefault(ln.patient_id, Counter())
        c[ln.status] += 1
    rows = [(p, by_patient.get(p.id, Counter())) for p in patients]
    rows.sort(key=lambda r: (-r[1]["blocked"], r[0].legal_last))
    return render_template("readiness/program.html", rows=rows, first=first, last=last,
                           totals=Counter(ln.status for ln in lines),
                           grants=auditor_access.scope().grants if scoped else (),
                           upcoming=_upcoming() if scoped else (),
                           witness_alarms=recent_alarms() if current_user.role == "admin" else ())


@bp.route("/patients/<int:patient_id>")
@allow(*READERS)
def patient(patient_id: int):
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        abort(404, description="There is no patient with that id.")
    program = current_program()
    grants, clamped = (), None
    if auditor_access.scoped():
        first, last, clamped = _auditor_range(patient, program)
        grants = auditor_access.scope().grants_for(patient)
    else:
        first, last = _date_range()
    g.patient_id = patient.id
    facts = load_facts(program, first, last, patient_ids=[patient.id])
    days = patient_readiness(patient.id, first, last, *facts.args(),
                             current_app.extensions["rulebook"], facts.documentation)
    from portal.no_shows.facts import classified_by_dos

    return render_template("readiness/patient.html", patient=patient, days=days, first=first,
                           last=last, documents=_documents_by_seq(patient.id), grants=grants,
                           clamped=clamped,
                           absences=classified_by_dos(program, patient.id, first, last))


def _auditor_range(patient: Patient, program) -> tuple[date, date, tuple[date, date] | None]:
    """The dates an auditor's page shows: inside one covering grant's date-of-service range.
    No grant names the patient, or the asked range lies wholly outside every covering grant:
    404 (never a hint that the patient or those dates exist). Without a range asked for, the
    last 30 days of the grant's range (up to today). Returns (first, last, the range asked for
    when it was narrowed, else None)."""
    scope = auditor_access.scope()
    grants = scope.grants_for(patient)
    if not grants:
        auditor_access.not_found()
    today = local_today(program.tz)
    if not request.args.get("from") and not request.args.get("to"):
        ends = [min(g.dos_to, today) if g.dos_to else today for g in grants]
        first, last = _date_range(default_last=max(ends))
    else:
        first, last = _date_range()
    allowed = scope.clamp(patient.id, patient.payer_id, first, last)
    if allowed is None:
        auditor_access.not_found()
    narrowed = (first, last) if allowed != (first, last) else None
    return allowed[0], allowed[1], narrowed


def _upcoming() -> list:
    """The auditor's grants that have not started yet (a start date later than now)."""
    from portal.auditors.service import grants_of, status_of

    return [g for g in grants_of(current_user._get_current_object()) if status_of(g) == "pending"]


def _ended() -> dict:
    """What the auditor's "access has ended / not started" page shows (no patient data)."""
    from portal.auditors.service import grants_of, status_of

    mine = grants_of(current_user._get_current_object())
    past = [(g, status_of(g)) for g in mine]
    # A grant still to start outweighs the ended ones: the auditor's access is coming, not over.
    return {"past": past, "ended": bool(past) and all(state != "pending" for _g, state in past),
            "tz": current_program().tz}


def _documents_by_seq(patient_id: int) -> dict[int, int]:
    from portal.models import ArchivedDocument, ArchivedDocumentPatient

    rows = db.session.execute(
        db.select(ArchivedDocument.entry_seq, ArchivedDocument.id)
        .join(ArchivedDocumentPatient).where(ArchivedDocumentPatient.patient_id == patient_id))
    return {seq: doc_id for seq, doc_id in rows}
