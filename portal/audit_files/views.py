"""Audit-file pages.

- ``GET  /patients/<id>/disclosures``        the patient's accounting of disclosures (last 3 years)
- ``GET  /patients/<id>/disclosures.pdf``    the same, printable (PDF)
- ``GET  /patients/<id>/audit-file``         admin, billing: the request form (DOS range, recipient,
                                             purpose, legal basis, consent scope)
- ``POST /patients/<id>/audit-file``         validate, then build the audit file on the task queue
                                             and show its progress (htmx polling)
- ``GET/POST /auditor/patients/<id>/audit-file``  an auditor's request under their grant: the one
                                             named exception to the auditor's read-only rule
                                             (``portal.access_control.AUDITOR_WRITES``). Only the
                                             dates are theirs to choose; recipient, purpose, legal
                                             basis and consent scope are the covering grant's.

Thin: the service builds and records; the rules check the request.
"""
from __future__ import annotations

import io
from datetime import date

from flask import Blueprint, abort, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from markupsafe import Markup

from portal.access_control import allow, auditor_write
from portal.audit_files import jobs as _jobs, rules  # noqa: F401  (jobs: registers the "audit_file" kind in every process)
from portal.auditors import access as auditor_access
from portal.auditors.service import grant_covering
from portal.clock import fmt_local, local_today, now_utc
from portal.errors import is_partial_request
from portal.extensions import db
from portal.input_dates import DateInputError, read_date
from portal.models import Patient
from portal.patient_access import patient_for_page
from portal.program import current_program

bp = Blueprint("audit_files", __name__)

ACCOUNTING_ROLES = ("clinician", "billing", "admin")
REQUESTERS = ("billing", "admin")


def _accounting_context(patient) -> dict:
    from portal.audit_files.service import disclosures_for

    program = current_program()
    today = local_today(program.tz)
    window_from, window_to = rules.accounting_window(today)
    rows = [{
        "when": fmt_local(d.disclosed_at, program.tz, "%b %-d, %Y %-I:%M %p %Z"),
        "recipient": d.recipient, "description": d.description, "purpose": d.purpose,
        "legal_basis": d.legal_basis, "requester": d.requester_name,
    } for d in disclosures_for(patient, window_from)]
    return {"patient": {"id": patient.id, "name": patient.full_name, "mrn": patient.mrn},
            "program": {"name": program.name}, "disclosures": rows, "window_from": window_from,
            "window_to": window_to,
            "prepared_at": fmt_local(now_utc(), program.tz, "%b %-d, %Y %-I:%M %p %Z")}


@bp.route("/patients/<int:patient_id>/disclosures")
@allow(*ACCOUNTING_ROLES)
def accounting(patient_id: int):
    patient = patient_for_page(patient_id)
    return render_template("audit_files/accounting.html", p=patient, **_accounting_context(patient))


@bp.route("/patients/<int:patient_id>/disclosures.pdf")
@allow(*ACCOUNTING_ROLES)
def accounting_pdf(patient_id: int):
    from portal.documents.audit_file import render_accounting

    patient = patient_for_page(patient_id)
    context = _accounting_context(patient)
    db.session.rollback()  # plain data in hand: no read transaction over the layout
    pdf = render_accounting(context)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=f"accounting-of-disclosures-MRN{context['patient']['mrn']}.pdf")


def _form_defaults(patient) -> dict:
    today = local_today(current_program().tz)
    return {"dos_from": date(today.year, 1, 1).isoformat(), "dos_to": today.isoformat(),
            "recipient": "", "purpose": "Payer audit", "legal_basis": "audit_2_53",
            "consent_scope": ""}


def _read_dates(values: dict) -> tuple[dict, list[str]]:
    """``dos_from``/``dos_to`` as dates, and the problems with them, for both request forms."""
    dates, problems = {}, []
    for key, label in (("dos_from", "first date of service"), ("dos_to", "last date of service")):
        try:
            dates[key] = read_date(values[key], label)
        except DateInputError as exc:
            problems.append(str(exc))
    return dates, problems


def read_request(form) -> tuple[dict, list[str]]:
    """The form's fields as the service takes them, and the problems found (clear words)."""
    values = {k: (form.get(k) or "").strip() for k in
              ("dos_from", "dos_to", "recipient", "purpose", "legal_basis", "consent_scope")}
    dates, problems = _read_dates(values)
    if len(values["consent_scope"]) > 5000:
        problems.append("The consent scope is longer than 5,000 characters.")
    if not problems:
        problems += rules.check_request(dates["dos_from"], dates["dos_to"],
                                        today=local_today(current_program().tz),
                                        recipient=values["recipient"], purpose=values["purpose"],
                                        legal_basis=rules.legal_basis_text(values["legal_basis"]))
    return {**values, **dates}, problems


@bp.route("/patients/<int:patient_id>/audit-file", methods=["GET", "POST"])
@allow(*REQUESTERS)
def request_form(patient_id: int):
    patient = patient_for_page(patient_id)
    if request.method == "GET":
        return render_template("audit_files/request.html", p=patient, values=_form_defaults(patient),
                               problems=[], bases=rules.LEGAL_BASES)
    values, problems = read_request(request.form)
    if problems:
        return render_template("audit_files/request.html", p=patient, values=request.form,
                               problems=problems, bases=rules.LEGAL_BASES), 400
    params = {"patient_id": patient.id, "from": values["dos_from"].isoformat(),
              "to": values["dos_to"].isoformat(), "recipient": values["recipient"],
              "purpose": values["purpose"], "legal_basis": values["legal_basis"],
              "consent_scope": values["consent_scope"]}
    return start_build(params)


def start_build(params: dict):
    """Start the build on the task queue (portal/audit_files/jobs.py) and go to its progress
    page (through htmx: its progress component in place of the form's panel); the file is the
    requester's only and expires like every job result."""
    from portal.audit_files.jobs import KIND
    from portal.jobs import JobLimit, progress_partial, start

    try:
        job = start(KIND, user_id=current_user.id, params=params)
    except JobLimit as exc:
        abort(429, description=str(exc))
    if is_partial_request():
        # The form swaps #audit-file-panel out of the answer: a redirect to the job's page
        # would leave it nothing to select, and the form would vanish without a word.
        return render_template("audit_files/_started.html",
                               progress=Markup(progress_partial(job))), 202
    return redirect(url_for("jobs.progress", job_id=job.id), code=303)


# ----------------------------------------------------------------------------------------
# The auditor's request (issue 14): the named exception to the read-only rule
# ----------------------------------------------------------------------------------------

CLIPPED = ("Your access covers dates of service {lo} to {hi} of the range you asked for, so "
           "the dates above now show only those. Nothing was requested yet: check them and "
           "choose Download audit file again.")


def _auditor_patient(patient_id: int) -> Patient:
    """The patient, when an active grant of the signed-in auditor names them; else 404 (the
    same words whether the patient exists or not)."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        auditor_access.not_found()
    auditor_access.ensure_covered(patient)
    g.patient_id = patient.id
    return patient


def _auditor_defaults(patient, grants) -> dict:
    """The covering grant's dates of service, up to today (this year when it has no start)."""
    today = local_today(current_program().tz)
    grant = max(grants, key=lambda gr: (gr.expires_at, gr.id))
    last = min(grant.dos_to, today) if grant.dos_to else today
    first = grant.dos_from or date(last.year, 1, 1)
    allowed = auditor_access.scope().clamp(patient.id, patient.payer_id, min(first, last), last)
    first, last = allowed or (first, last)
    return {"dos_from": first.isoformat(), "dos_to": last.isoformat()}


def _auditor_page(patient, values: dict, problems: list[str], status: int = 200):
    return render_template("audit_files/auditor_request.html", p=patient, values=values,
                           problems=problems,
                           grants=auditor_access.scope().grants_for(patient)), status


@bp.route("/auditor/patients/<int:patient_id>/audit-file", methods=["GET", "POST"])
@allow("auditor")
@auditor_write
def auditor_request(patient_id: int):
    """An auditor asks for a covered patient's audit file for dates their grant covers.

    Only ``dos_from`` and ``dos_to`` are read from the form. A range no active grant touches is
    404 (as every page out of scope); one reaching past the grant's dates is refused with the
    covered part proposed (nothing written); a good one starts the job with the grant's id, and
    the worker takes the disclosure's recipient, purpose and legal basis from that grant."""
    patient = _auditor_patient(patient_id)
    if request.method == "GET":
        return _auditor_page(patient, _auditor_defaults(patient,
                                                        auditor_access.scope().grants_for(patient)), [])
    values = {k: (request.form.get(k) or "").strip()[:40] for k in ("dos_from", "dos_to")}
    dates, problems = _read_dates(values)
    if not problems:
        problems = rules.check_range(dates["dos_from"], dates["dos_to"],
                                     today=local_today(current_program().tz))
    if problems:
        return _auditor_page(patient, values, problems, 400)
    first, last = dates["dos_from"], dates["dos_to"]
    allowed = auditor_access.scope().clamp(patient.id, patient.payer_id, first, last)
    if allowed is None:
        auditor_access.not_found()  # no active grant covers any of these dates
    if allowed != (first, last):
        lo, hi = allowed
        return _auditor_page(patient, {"dos_from": lo.isoformat(), "dos_to": hi.isoformat()},
                             [CLIPPED.format(lo=lo, hi=hi)], 400)
    grant = grant_covering(current_user._get_current_object(), patient, first, last)
    if grant is None:  # the grant ended between the two checks above
        auditor_access.not_found()
    return start_build({"patient_id": patient.id, "from": first.isoformat(),
                        "to": last.isoformat(), "grant_id": grant.id})
