"""Audit files as background jobs (portal/jobs): a patient-year binder renders for many seconds,
so the request form starts a job on the task queue and the page polls its progress.

Two kinds of request start the same job: clinic staff's (billing, admin), who type the
recipient, purpose and legal basis; and an auditor's (the named exception to the auditor's
read-only rule, ``portal.access_control.AUDITOR_WRITES``), whose job carries only the patient, the
dates and the id of the grant it was asked under. The worker takes that grant's recipient,
purpose, legal basis and consent scope, and builds only while the grant still covers the request;
its owner sees the job and takes the file only while it still does too."""
from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

from portal.audit_files.service import AuditFileError, build_audit_file
from portal.auditors.service import ROLE as AUDITOR, grant_still_covering
from portal.extensions import db
from portal.jobs import JobContext, JobFailed, register
from portal.models import BackgroundJob, Patient, User

KIND = "audit_file"
ACCESS_ENDED = ("Your access to these records ended (the grant this audit file was requested "
                "under expired or was revoked), so no audit file was made and nothing was recorded.")


def describe(job: BackgroundJob) -> str:
    """The access-log line of a download: the patient's id and range, never a name."""
    p = json.loads(job.params)
    under = f" grant={p['grant_id']}" if p.get("grant_id") is not None else ""
    return f"DOWNLOAD audit file patient_id={p['patient_id']} dos={p['from']}..{p['to']}{under}"


def patient_of(job: BackgroundJob) -> int | None:
    return json.loads(job.params).get("patient_id")


def _grant_for(params: dict, requester: User | None, patient: Patient | None):
    """The auditor's grant the job was asked under, if it still covers it; else None."""
    if requester is None or patient is None or params.get("grant_id") is None:
        return None
    return grant_still_covering(requester, int(params["grant_id"]), patient,
                                date.fromisoformat(params["from"]), date.fromisoformat(params["to"]))


def still_allowed(job: BackgroundJob) -> bool:
    """Clinic staff's jobs: always (their owner check is enough). An auditor's: only while the
    grant it was asked under still covers the patient and the dates."""
    requester = db.session.get(User, job.user_id)
    if requester is None or requester.role != AUDITOR:
        return True
    p = json.loads(job.params)
    return _grant_for(p, requester, db.session.get(Patient, p["patient_id"])) is not None


@register(KIND, title="Audit file", describe=describe, still_allowed=still_allowed,
          patient_of=patient_of)
def audit_file(ctx: JobContext) -> None:
    p = ctx.params
    patient = db.session.get(Patient, p["patient_id"])
    requester = db.session.get(User, ctx.user_id)
    if patient is None:
        raise JobFailed("The patient no longer exists; no audit file was made.")
    if requester is not None and requester.role == AUDITOR:
        grant = _grant_for(p, requester, patient)
        if grant is None:
            raise JobFailed(ACCESS_ENDED)
        # The disclosure is what the grant says, whatever was sent with the request.
        recipient, purpose = grant.recipient, grant.purpose
        legal_basis, consent_scope = grant.legal_basis, grant.consent_scope or None
    else:
        recipient, purpose = p["recipient"], p["purpose"]
        legal_basis, consent_scope = p["legal_basis"], p.get("consent_scope") or None
    with tempfile.TemporaryDirectory(prefix="audit-file-") as tmp:
        try:
            result = build_audit_file(
                patient=patient, first=date.fromisoformat(p["from"]),
                last=date.fromisoformat(p["to"]), requester=requester,
                recipient=recipient, purpose=purpose, legal_basis=legal_basis,
                consent_scope=consent_scope, out_dir=Path(tmp), report=ctx.report)
        except AuditFileError as exc:
            raise JobFailed(str(exc)) from None
        ctx.save_result(result.path, filename=result.filename, mimetype="application/zip",
                        summary=(f"{result.entries} archive entries, {result.pages} binder "
                                 f"pages; recorded as disclosure #{result.disclosure_id}."))
