"""One check for pages about a single patient: may the signed-in user see this patient?

Auditors are scoped to their payer and facilitators to the groups they run
(``portal.access_scope``); other clinic roles see the whole program. Used by every per-patient
page outside the roster and readiness flows (plans, no-shows), which have their own checks."""
from __future__ import annotations

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from portal.access_scope import facilitator_may_see, may_see_patient
from portal.extensions import db
from portal.models import AttendanceEntry, Cohort, Enrollment, GroupSession, Patient


def ensure_may_see_patient(patient: Patient) -> None:
    """403 (nothing shown, nothing written) when the user may not see ``patient``."""
    if not may_see_patient(current_user.role, current_user.payer_scope_id, patient.payer_id):
        abort(403, description="This patient is outside your access.")
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
