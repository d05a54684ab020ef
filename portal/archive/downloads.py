"""Archived documents: the stamped PDF exactly as stored, or, for a scoped auditor, one
patient's extract of a multi-patient document (never another patient's name). For an auditor
anything outside their active grants (patient, date of service) answers 404, never 403.

The portal's index tables are editable; the chain entry is not. So every download takes the
document hash from the chain entry and refuses when the index row disagrees with it, and an
extract is rendered only from a line whose commitment is in the entry
(``portal.services.archive_index``)."""
from __future__ import annotations

import hashlib
import io
from typing import NoReturn

from flask import Blueprint, abort, current_app, g, send_file
from flask_login import current_user
from sqlalchemy import select

from audit_archive.entry import chain_hash
from portal.access_control import allow
from portal.access_scope import may_download_whole
from portal.auditors import access as auditor_access
from portal.clock import now_utc
from portal.documents.extract import NOT_COVERED, SIGNATURE_NOT_COVERED, extract_facts
from portal.documents.render import render_pdf
from portal.documents.roster import MODALITY_LABEL
from portal.extensions import db
from portal.models import ArchivedDocument, ArchivedDocumentPatient, AttendanceEntry, GroupSession, Patient
from portal.part2 import REDISCLOSURE_NOTICE
from portal.services.archive_index import (VERIFY_HINT, IndexMismatch, document_problems,
                                           read_entry, verified_line)
from portal.services.archiving import archive_store

bp = Blueprint("documents", __name__, url_prefix="/documents")

READERS = ("facilitator", "clinician", "billing", "auditor", "admin")


def _document(document_id: int) -> ArchivedDocument:
    doc = db.session.get(ArchivedDocument, document_id)
    if doc is None:
        abort(404, description="There is no archived document with that number.")
    return doc


def may_download(doc: ArchivedDocument) -> bool:
    """Whole-document access for the current user (used by views and templates)."""
    if current_user.role == "facilitator":
        # Facilitators see the rosters they closed, nothing else.
        session = db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
        return session is not None and session.facilitator_id == current_user.id
    if not auditor_access.scoped():
        return True
    return may_download_whole(current_user.role, auditor_access.covers_document(doc))


@bp.app_template_global()
def can_download(doc_id: int) -> bool:
    doc = db.session.get(ArchivedDocument, doc_id)
    return doc is not None and may_download(doc)


def _refuse(doc: ArchivedDocument, why: str) -> NoReturn:
    current_app.logger.error("archived document %s (entry %s) not served: %s", doc.id,
                             doc.entry_seq, why)
    abort(500, description=why)


def checked_entry(doc: ArchivedDocument) -> tuple[bytes, dict]:
    """``(bytes, fields)`` of the chain entry ``doc`` names, once the index row agrees with it;
    otherwise a 500 page saying the index disagrees with the chain (nothing is served)."""
    try:
        raw, entry = read_entry(db.session.connection(), doc.entry_seq)
    except IndexMismatch as exc:
        _refuse(doc, str(exc))
    problems = document_problems(kind=doc.kind, doc_sha256=doc.doc_sha256, dos=doc.dos,
                                 entry=entry, patients=len(doc.patients))
    if problems:
        _refuse(doc, f"The archive index disagrees with the chain for this document (entry "
                     f"#{doc.entry_seq}: {'; '.join(problems)}), so it is not served. {VERIFY_HINT}")
    return raw, entry


@bp.route("/<int:document_id>.pdf")
@allow(*READERS)
def download(document_id: int):
    doc = _document(document_id)
    if not may_download(doc):
        if auditor_access.scoped():  # no hint that the document exists
            auditor_access.not_found()
        abort(403, description="This document names patients outside your access. Open the "
                               "patient's readiness page for their own extract of it.")
    if len(doc.patients) == 1:
        g.patient_id = doc.patients[0].patient_id
    _raw, entry = checked_entry(doc)
    sha = entry["doc"]["sha256"]  # the chain's word, never the index's
    store = archive_store()
    if not store.exists(sha):
        _refuse(doc, f"The archived file is missing. {VERIFY_HINT}")
    data = store.get(sha)
    if hashlib.sha256(data).hexdigest() != sha:
        # Never hand out a copy that no longer matches its chain entry.
        _refuse(doc, f"The archived file does not match its chain entry. {VERIFY_HINT}")
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{doc.kind}-{doc.dos or ''}-entry{doc.entry_seq}.pdf")


def _signature(line: dict, png: bytes | None, doc: ArchivedDocument) -> tuple[bytes | None, str | None]:
    """The patient's signature image to print and how to label it. A line that records the
    signature's SHA-256 is checked against the stored PNG (a mismatch refuses the extract); a
    line that records none leaves the image, if any, labelled as not covered by the proof."""
    if "signature_sha256" not in line:
        return (png, SIGNATURE_NOT_COVERED) if png else (None, None)
    want = line["signature_sha256"]
    if not want:
        return None, None  # the archived line says: not signed
    if png is None:
        return None, ("The signature image is not in the portal's records; the archived line "
                      "records its SHA-256 above.")
    if hashlib.sha256(png).hexdigest() != want:
        _refuse(doc, f"The signature image on record does not match the signature hash in the "
                     f"archived line of chain entry #{doc.entry_seq}: the archive index "
                     f"disagrees with the chain. {VERIFY_HINT}")
    return png, None


@bp.route("/<int:document_id>/patients/<int:patient_id>/extract.pdf")
@allow("clinician", "billing", "auditor", "admin")
def extract(document_id: int, patient_id: int):
    """One patient's line of an archived document, with what an auditor needs to check it
    against the chain: the entry, the line commitment and its salt (docs/audit-format.md §4).
    Rendered on request, not archived; it carries the Part 2 redisclosure notice. Every fact the
    line (or the entry) holds is printed from the verified line; anything else is labelled as
    coming from the portal's records."""
    doc = _document(document_id)
    link = db.session.get(ArchivedDocumentPatient, (document_id, patient_id))
    patient = db.session.get(Patient, patient_id)
    if link is None or patient is None or not link.line_json:
        abort(404, description="That patient is not on this document.")
    auditor_access.ensure_covered(patient, doc.dos)
    g.patient_id = patient.id
    raw, entry = checked_entry(doc)
    try:
        verified = verified_line(line_json=link.line_json, line_salt=link.line_salt,
                                 patient_id=patient.id, entry=entry)
    except IndexMismatch as exc:
        _refuse(doc, str(exc))
    line = verified.line
    session = db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
    png = None
    if session is not None:
        png = db.session.scalar(select(AttendanceEntry.signature_png).where(
            AttendanceEntry.session_id == session.id, AttendanceEntry.patient_id == patient.id))
    signature, signature_note = _signature(line, png, doc)
    records = {"patient": patient.full_name, "mrn": patient.mrn, "dos": doc.dos}
    if session is not None:
        records.update(cohort=session.cohort.name, modality=MODALITY_LABEL[session.modality],
                       place_of_service=session.place_of_service,
                       facilitator=session.facilitator.name_with_credential,
                       facilitator_npi=session.facilitator.npi)
    mrn = line.get("mrn") or patient.mrn
    context = {
        "mrn": mrn, "doc": {"kind": doc.kind, "title": doc.title, "entry_seq": doc.entry_seq},
        "entry": entry, "entry_hash": chain_hash(raw),
        "facts": extract_facts(line, entry, records=records), "not_covered": NOT_COVERED,
        "line_canonical": verified.canonical.decode("utf-8"), "salt": verified.salt.hex(),
        "commitment": verified.commitment,
        "signature": signature, "signature_note": signature_note, "notice": REDISCLOSURE_NOTICE,
        "generated_at": now_utc().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "generated_for": current_user.name,
    }
    download_name = f"{doc.kind}-{doc.dos or ''}-entry{doc.entry_seq}-MRN{mrn}.pdf"
    # Plain data in hand: end the read transaction (on SQLite it holds the write lock) before
    # the layout work.
    db.session.rollback()
    pdf = render_pdf("documents/extract.html", context)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=download_name)
