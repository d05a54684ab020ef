"""Audit-file pages.

- ``GET  /patients/<id>/disclosures``        the patient's accounting of disclosures (last 3 years)
- ``GET  /patients/<id>/disclosures.pdf``    the same, printable (PDF)
- ``GET  /patients/<id>/audit-file``         admin, billing: the request form (DOS range, recipient,
                                             purpose, legal basis, consent scope)
- ``POST /patients/<id>/audit-file``         validate, then build the audit file on the task queue
                                             and show its progress (htmx polling)

Thin: the service builds and records; the rules check the request.
"""
from __future__ import annotations

import io
from datetime import date

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from markupsafe import Markup

from portal.access_control import allow
from portal.audit_files import jobs as _jobs, rules  # noqa: F401  (jobs: registers the "audit_file" kind in every process)
from portal.clock import fmt_local, local_today, now_utc
from portal.errors import is_partial_request
from portal.extensions import db
from portal.input_dates import DateInputError, read_date
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


def read_request(form) -> tuple[dict, list[str]]:
    """The form's fields as the service takes them, and the problems found (clear words)."""
    values = {k: (form.get(k) or "").strip() for k in
              ("dos_from", "dos_to", "recipient", "purpose", "legal_basis", "consent_scope")}
    problems = []
    dates = {}
    for key, label in (("dos_from", "first date of service"), ("dos_to", "last date of service")):
        try:
            dates[key] = read_date(values[key], label)
        except DateInputError as exc:
            problems.append(str(exc))
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
    return start_build(patient, values)


def start_build(patient, values: dict):
    """Start the build on the task queue (portal/audit_files/jobs.py) and go to its progress
    page; the file is the requester's only and expires like every job result."""
    from portal.audit_files.jobs import KIND
    from portal.jobs import JobLimit, progress_partial, start

    params = {"patient_id": patient.id, "from": values["dos_from"].isoformat(),
              "to": values["dos_to"].isoformat(), "recipient": values["recipient"],
              "purpose": values["purpose"], "legal_basis": values["legal_basis"],
              "consent_scope": values["consent_scope"]}
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
