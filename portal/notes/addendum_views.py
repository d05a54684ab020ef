"""Addenda: correct a signed note, a signed plan or a closed roster for one patient."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from portal.access_control import allow
from portal.extensions import db
from portal.models import ArchivedDocument, Patient
from portal.notes import bp
from portal.services import addenda as svc
from portal.services.errors import ServiceError

AUTHORS = ("facilitator", "clinician", "admin")


def _page(document_id: int, patient_id: int, *, status: int = 200, **extra):
    doc = db.session.get(ArchivedDocument, document_id)
    patient = db.session.get(Patient, patient_id)
    if doc is None or patient is None:
        abort(404, description="There is no such document or patient.")
    g.patient_id = patient.id
    try:
        _doc, target = svc._original(document_id, patient_id)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    _check_author(doc, target)
    chain = svc.chain(document_id, patient_id)
    values = svc.current_values(doc, target, patient_id)
    return render_template("notes/addendum.html", doc=doc, patient=patient, target=target,
                           chain=chain, values=values, labels=svc.FIELD_LABELS,
                           choices=svc.NOTE_CHOICES, statuses=svc.ROSTER_STATUSES,
                           head=chain[-1] if chain else None, **extra), status


def _check_author(doc, target: str) -> None:
    """Facilitators correct only their own groups' rosters and notes; plans are clinicians'."""
    if current_user.role != "facilitator":
        return
    from sqlalchemy import select

    from portal.models import EncounterNote, GroupSession
    if target == "roster":
        session = db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
    elif target == "note":
        note = db.session.scalar(select(EncounterNote).where(EncounterNote.document_id == doc.id))
        session = note.session if note else None
    else:
        abort(403, description="Clinicians correct treatment plans.")
    if session is None or session.facilitator_id != current_user.id:
        abort(403, description="This group is assigned to another facilitator.")


@bp.route("/addenda/<int:document_id>/patients/<int:patient_id>", methods=["GET", "POST"])
@allow(*AUTHORS)
def addendum(document_id: int, patient_id: int):
    if request.method == "GET":
        return _page(document_id, patient_id)
    _page(document_id, patient_id)  # same existence and author checks as the form
    based_on = request.form.get("based_on") or None
    try:
        based_on = int(based_on) if based_on else None
    except ValueError:
        abort(400, description="The form was damaged; reload the page.")
    fields = {k[len("f_"):]: v for k, v in request.form.items()
              if k.startswith("f_") and request.form.get("use_" + k[len("f_"):]) == "yes"}
    try:
        svc.add_addendum(document_id, patient_id, based_on=based_on,
                         author=current_user._get_current_object(),
                         reason=request.form.get("reason"), fields=fields)
    except ServiceError as exc:
        if exc.status not in (409, 422):
            abort(exc.status, description=exc.message)
        return _page(document_id, patient_id, status=exc.status, error=exc.message,
                     form=request.form)
    flash("Addendum archived. The original stays as it was; readiness uses the correction.")
    return redirect(url_for(".addendum", document_id=document_id, patient_id=patient_id))
