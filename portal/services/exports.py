"""Export one patient's archived documents as a standalone-verifiable bundle.

Privacy rule: a patient's export never reveals another patient. Documents whose only patient
is this one are included whole; multi-patient documents (group rosters, reconciliations) are
withheld, and only this patient's own line is disclosed with the salt that proves it is the
line committed in the chain entry (docs/audit-format.md, "Line commitments").
Every export is a disclosure (42 CFR 2.25 accounting): it is written to the access log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from audit_archive.export import export
from portal.extensions import db
from audit_archive.export import ExportError as ArchiveExportError
from portal.models import AccessLogEntry, ArchivedDocument, ArchivedDocumentPatient, Patient
from portal.services.archive_index import IndexMismatch, read_entries
from portal.services.archiving import archive_store
from portal.part2 import REDISCLOSURE_NOTICE
from portal.services.checkpoints import checkpoint_now, public_key


class ExportError(ArchiveExportError):
    """The export cannot be made as asked (unknown MRN, bad range, nothing to export).  A
    subclass of the archive's ExportError, so one ``except`` catches both."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    entries: int
    documents: int
    withheld: int
    public_key: str


def export_patient(mrn: str, first: date, last: date, out: Path, *, recipient: str,
                   user_id: int | None = None) -> ExportResult:
    """Export the documents concerning patient ``mrn`` with a DOS in ``[first, last]``
    (program-local dates) to ``out`` (a directory, or a ``.zip`` file). Signs a fresh checkpoint
    first, so every entry is covered. Raises ``ExportError``."""
    if last < first:
        raise ExportError("--to is before --from.")
    patient = db.session.scalar(select(Patient).where(Patient.mrn == mrn.strip()))
    if patient is None:
        raise ExportError(f"No patient has MRN {mrn!r}.")
    links = db.session.execute(
        select(ArchivedDocument.entry_seq, ArchivedDocument.id, ArchivedDocumentPatient.line_json,
               ArchivedDocumentPatient.line_salt)
        .join(ArchivedDocumentPatient)
        .where(ArchivedDocumentPatient.patient_id == patient.id,
               ArchivedDocument.dos >= first, ArchivedDocument.dos <= last)
        .order_by(ArchivedDocument.entry_seq)).all()
    if not links:
        raise ExportError(f"Patient {mrn} has no archived documents from {first} to {last}.")
    doc_ids = [row.id for row in links]
    patient_counts = dict(db.session.execute(
        select(ArchivedDocumentPatient.document_id, func.count())
        .where(ArchivedDocumentPatient.document_id.in_(doc_ids))
        .group_by(ArchivedDocumentPatient.document_id)).all())
    seqs = [row.entry_seq for row in links]
    # Whole only if the chain entry, not just the editable index, commits to one patient line:
    # deleting the other patients' index rows must not release a group roster.
    try:
        entries = read_entries(db.session.connection(), seqs)
    except IndexMismatch as exc:
        raise ExportError(str(exc)) from None
    whole = {row.entry_seq for row in links
             if patient_counts[row.id] == 1 and len(entries[row.entry_seq]["line_commitments"]) <= 1}
    disclosures = {row.entry_seq: [(json.loads(row.line_json), bytes.fromhex(row.line_salt))]
                   for row in links if row.line_json and row.line_salt}
    db.session.rollback()
    signed = checkpoint_now()
    key = public_key()
    notice = (f"{REDISCLOSURE_NOTICE}\n\nDisclosed: archived records of patient MRN {patient.mrn}, "
              f"dates of service {first} to {last}, to {recipient}, for payer audit.\n")
    path = export(db.session.connection(), archive_store(), out, seqs, include_documents=whole,
                  line_disclosures=disclosures, public_key_text=key, checkpoint=signed.note,
                  notice=notice)
    db.session.rollback()
    db.session.add(AccessLogEntry(
        user_id=user_id, role=None, method="EXPORT", endpoint="audit.export",
        path=f"audit export MRN {mrn} DOS {first}..{last} to {recipient}"[:500],
        patient_id=patient.id, status_code=200, remote_addr=None))
    db.session.commit()
    return ExportResult(path=Path(path), entries=len(seqs), documents=len(whole),
                        withheld=len(seqs) - len(whole), public_key=key)
