"""One check for pages about a single patient: may the signed-in user see this patient?

Auditors see what their active grants cover (``portal.auditors``; out of scope is 404, never
403) and facilitators the groups they run (``portal.access_scope``); other clinic roles see the
whole program. Used by every per-patient
page outside the roster and readiness flows (plans, no-shows), which have their own checks."""
from __future__ import annotations

from flask import abort, g
from flask_login import current_user
from sqlalchemy import select

from portal.access_scope import facilitator_may_see
from portal.auditors import access as auditor_access
from portal.extensions import db
from portal.models import AttendanceEntry, Cohort, Enrollment, GroupSession, Patient


def patient_for_page(patient_id: int) -> Patient:
    """The patient a page is about: 404 when there is none (or, for an auditor, when no grant
    covers the patient's whole history: these pages show all of it), 403 when out of a clinic
    user's access; marks the request with the patient for the access log."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        abort(404, description="There is no patient with that id.")
    auditor_access.ensure_whole_history(patient)
    ensure_may_see_patient(patient)
    g.patient_id = patient.id
    return patient


def ensure_may_see_patient(patient: Patient) -> None:
    """403 (nothing shown, nothing written) when a facilitator may not see ``patient``; 404 for
    an auditor whose grants do not cover the patient."""
    auditor_access.ensure_covered(patient)
    if current_user.role == "facilitator" and not facilitator_may_see(
            current_user.id, _group_facilitators(patient.id)):
        abort(403, description="This patient is not in a group you run.")


def _group_facilitators(patient_id: int) -> set[int]:
    """Facilitators of the patient's cohorts and of sessions the patient is on (covering)."""
    cohorts = select(Cohort.facilitator_id).join(
        Enrollment, Enrollment.cohort_id == Cohort.id).where(Enrollment.patient_id == patient_id)
    sessions = select(GroupSession.facilitator_id).join(
        AttendanceEntry, AttendanceEntry.session_id == GroupSession.id).where(
        AttendanceEntry.patient_id == patient_id)
    return {fid for fid in db.session.scalars(cohorts.union(sessions)) if fid is not None}
