"""Audit files as background jobs (portal/jobs): a patient-year binder renders for many seconds,
so the request form starts a job on the task queue and the page polls its progress."""
from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

from portal.audit_files.service import AuditFileError, build_audit_file
from portal.extensions import db
from portal.jobs import JobContext, JobFailed, register
from portal.models import BackgroundJob, Patient, User

KIND = "audit_file"


def describe(job: BackgroundJob) -> str:
    """The access-log line of a download: the patient's id and range, never a name."""
    p = json.loads(job.params)
    return f"DOWNLOAD audit file patient_id={p['patient_id']} dos={p['from']}..{p['to']}"


@register(KIND, title="Audit file", describe=describe)
def audit_file(ctx: JobContext) -> None:
    p = ctx.params
    patient = db.session.get(Patient, p["patient_id"])
    requester = db.session.get(User, ctx.user_id)
    if patient is None:
        raise JobFailed("The patient no longer exists; no audit file was made.")
    with tempfile.TemporaryDirectory(prefix="audit-file-") as tmp:
        try:
            result = build_audit_file(
                patient=patient, first=date.fromisoformat(p["from"]),
                last=date.fromisoformat(p["to"]), requester=requester,
                recipient=p["recipient"], purpose=p["purpose"], legal_basis=p["legal_basis"],
                consent_scope=p.get("consent_scope") or None, out_dir=Path(tmp),
                report=ctx.report)
        except AuditFileError as exc:
            raise JobFailed(str(exc)) from None
        ctx.save_result(result.path, filename=result.filename, mimetype="application/zip",
                        summary=(f"{result.entries} archive entries, {result.pages} binder "
                                 f"pages; recorded as disclosure #{result.disclosure_id}."))
