"""The request-side check every page an auditor reaches makes: is this patient (on this date of
service) inside the signed-in auditor's active grants? Out of scope answers 404 (never 403: no
hint that the record exists). Clinic roles pass through untouched (their own checks apply).

The auditor's grants are loaded once per request (``flask.g``)."""
from __future__ import annotations

from datetime import date

from flask import abort, g
from flask_login import current_user

from portal.access_scope import is_scoped
from portal.auditors.service import Scope

NOT_FOUND = "There is no such record."  # the same words whether it exists or not


def scoped() -> bool:
    return current_user.is_authenticated and is_scoped(current_user.role)


def scope() -> Scope:
    if "_auditor_scope" not in g:
        g._auditor_scope = Scope(current_user._get_current_object())
    return g._auditor_scope


def not_found():
    abort(404, description=NOT_FOUND)


def ensure_covered(patient, dos: date | None = None) -> None:
    """404 for an auditor whose active grants do not cover ``patient`` (on ``dos``)."""
    if scoped() and not scope().covers(patient.id, patient.payer_id, dos):
        not_found()


def ensure_whole_history(patient) -> None:
    """404 for an auditor unless a grant names ``patient`` with no date-of-service limit (pages
    that show a patient's whole history: authorizations, absences)."""
    if not scoped():
        return
    sc = scope()
    if not any(g.dos_from is None and g.dos_to is None for g in sc.grants_for(patient)):
        not_found()


def covers_document(doc) -> list[bool]:
    """For each patient on an archived document: is it covered on the document's DOS?"""
    sc = scope()
    return [sc.covers(link.patient_id, link.patient.payer_id, doc.dos) for link in doc.patients]
