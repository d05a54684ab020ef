"""SQLAlchemy models, one module per aggregate. Import them here so Alembic sees every table."""
from portal.models.access import AccessLogEntry
from portal.models.admin import AdminLogEntry, SetPasswordLink
from portal.models.attendance import AttendanceEntry, GroupSession
from portal.models.authorizations import (Authorization, AuthorizationTransition, CareEpisode,
                                          PayerLetter)
from portal.models.claims import ClaimExport, ClaimExportLine
from portal.models.disclosures import Disclosure
from portal.models.documents import ArchivedDocument, ArchivedDocumentPatient
from portal.models.jobs import BackgroundJob
from portal.models.notes import Addendum, EncounterNote, GroupNote, TreatmentPlan
from portal.models.no_shows import (AbsenceNotice, ClinicalReviewTask, FeeLedgerEntry, NoShowLetter,
                                    NoShowPolicy, OutreachAttempt, PolicyAcknowledgment)
from portal.models.people import Patient, User
from portal.models.program import Closure, Cohort, Enrollment, Payer, Program
from portal.auditors.models import AuditorGrant  # noqa: E402  (a feature package's table)

__all__ = [
    "AbsenceNotice", "AccessLogEntry", "Addendum", "AdminLogEntry", "ArchivedDocument",
    "ArchivedDocumentPatient", "AttendanceEntry", "AuditorGrant", "Authorization", "AuthorizationTransition",
    "BackgroundJob",
    "CareEpisode", "ClaimExport", "ClaimExportLine", "Disclosure", "ClinicalReviewTask", "Closure", "Cohort",
    "EncounterNote", "Enrollment", "FeeLedgerEntry", "GroupNote", "GroupSession", "NoShowLetter",
    "NoShowPolicy", "OutreachAttempt", "Patient", "Payer", "PayerLetter", "PolicyAcknowledgment",
    "Program", "SetPasswordLink", "TreatmentPlan", "User",
]
