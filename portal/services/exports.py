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

from audit_archive.schema import audit_checkpoints

from audit_archive.export import export
from portal.extensions import db
from audit_archive.export import ExportError as ArchiveExportError
from portal.models import AccessLogEntry, ArchivedDocument, ArchivedDocumentPatient, Patient
from portal.services.archive_index import VERIFY_HINT, IndexMismatch, read_entries, verified_line
from portal.services.archiving import archive_store
from portal.part2 import REDISCLOSURE_NOTICE
from portal.services.checkpoints import checkpoint_now, public_key
from portal.services.witnesses import cosigned_note


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


def _checkpoint_id(signed) -> int:
    if signed.id is not None:
        return signed.id
    return db.session.scalar(select(func.max(audit_checkpoints.c.id))
                             .where(audit_checkpoints.c.tree_size == signed.size)) or 0


def _names_mrn(line_json: str | None, mrn: str) -> bool:
    try:
        line = json.loads(line_json or "null")
    except ValueError:
        return False
    return isinstance(line, dict) and line.get("mrn") == mrn


def _chosen_from_chain(patient: Patient, mrn: str, first: date, last: date):
    """Which entries, whole documents and lines go into ``mrn``'s export, chosen from the lines
    committed in the chain entries (the MRN inside each proven line), never from which patient
    the editable index files a line under. Every index line of every document in the range is
    proven against its entry's commitments; a line filed under this patient that is not proven,
    or proven but another patient's, and a proven line of this patient filed under someone else,
    mean the index disagrees with the chain: ``ExportError`` naming the entry, nothing written.
    Returns ``(seqs, whole seqs, {seq: [(line, salt)]})``."""
    docs = db.session.execute(
        select(ArchivedDocument.id, ArchivedDocument.entry_seq)
        .where(ArchivedDocument.dos >= first, ArchivedDocument.dos <= last)
        .order_by(ArchivedDocument.entry_seq)).all()
    seq_of = {d.id: d.entry_seq for d in docs}
    index_lines = db.session.execute(
        select(ArchivedDocumentPatient.document_id, ArchivedDocumentPatient.patient_id,
               ArchivedDocumentPatient.line_json, ArchivedDocumentPatient.line_salt)
        .where(ArchivedDocumentPatient.document_id.in_(list(seq_of)))).all() if docs else []
    try:
        entries = read_entries(db.session.connection(), sorted({seq_of[r.document_id] for r in index_lines}))
    except IndexMismatch as exc:
        raise ExportError(str(exc)) from None
    disclosures: dict[int, list] = {}
    for r in index_lines:
        seq = seq_of[r.document_id]
        try:
            proven = verified_line(line_json=r.line_json, line_salt=r.line_salt,
                                   patient_id=r.patient_id, entry=entries[seq])
        except IndexMismatch as exc:
            if r.patient_id == patient.id or _names_mrn(r.line_json, mrn):
                raise ExportError(f"Refusing to export MRN {mrn}: {exc}") from None
            continue  # another patient's unprovable line can disclose nothing of this patient
        ours = proven.line.get("mrn") == mrn
        if ours != (r.patient_id == patient.id):
            raise ExportError(
                f"Refusing to export MRN {mrn}: chain entry #{seq} commits a line of MRN "
                f"{proven.line.get('mrn')!r} that the archive index files under another patient; "
                f"the index disagrees with the chain. {VERIFY_HINT}")
        dos = proven.line.get("dos")  # the committed line's date of service, where it has one
        if ours and (dos is None or first.isoformat() <= dos <= last.isoformat()):
            disclosures.setdefault(seq, []).append((proven.line, proven.salt))
    if not disclosures:
        raise ExportError(f"Patient {mrn} has no archived documents from {first} to {last}.")
    seqs = sorted(disclosures)
    # Whole only if the chain entry commits to exactly this patient's one line: deleting the
    # other patients' index rows must not release a group roster.
    whole = {seq for seq in seqs if len(entries[seq]["line_commitments"]) == 1}
    return seqs, whole, disclosures


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
    seqs, whole, disclosures = _chosen_from_chain(patient, mrn.strip(), first, last)
    db.session.rollback()
    signed = checkpoint_now()
    key = public_key()
    notice = (f"{REDISCLOSURE_NOTICE}\n\nDisclosed: archived records of patient MRN {patient.mrn}, "
              f"dates of service {first} to {last}, to {recipient}, for payer audit.\n")
    # The export carries the witnesses' cosignatures: an auditor checks them with --witness-key.
    note = cosigned_note(_checkpoint_id(signed), signed.note)
    path = export(db.session.connection(), archive_store(), out, seqs, include_documents=whole,
                  line_disclosures=disclosures, public_key_text=key, checkpoint=note,
                  notice=notice)
    db.session.rollback()
    db.session.add(AccessLogEntry(
        user_id=user_id, role=None, method="EXPORT", endpoint="audit.export",
        path=f"audit export MRN {mrn} DOS {first}..{last} to {recipient}"[:500],
        patient_id=patient.id, status_code=200, remote_addr=None))
    db.session.commit()
    return ExportResult(path=Path(path), entries=len(seqs), documents=len(whole),
                        withheld=len(seqs) - len(whole), public_key=key)
