"""Archived documents: the stamped PDF exactly as stored, or, for a scoped auditor, one
patient's extract of a multi-patient document (never another patient's name)."""
from __future__ import annotations

import hashlib
import io
import json

from flask import Blueprint, abort, g, send_file
from flask_login import current_user
from sqlalchemy import select

from audit_archive.entry import EntryFormatError, chain_hash, parse_entry
from audit_archive.ledger import entry_bytes
from portal.access_control import allow
from portal.access_scope import may_download_whole, may_see_patient
from portal.clock import now_utc
from portal.documents.render import render_pdf
from portal.documents.roster import MODALITY_LABEL
from portal.extensions import db
from portal.models import ArchivedDocument, ArchivedDocumentPatient, AttendanceEntry, GroupSession, Patient
from portal.part2 import REDISCLOSURE_NOTICE
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
    return may_download_whole(current_user.role, current_user.payer_scope_id,
                              [link.patient.payer_id for link in doc.patients])


@bp.app_template_global()
def can_download(doc_id: int) -> bool:
    doc = db.session.get(ArchivedDocument, doc_id)
    return doc is not None and may_download(doc)


@bp.route("/<int:document_id>.pdf")
@allow(*READERS)
def download(document_id: int):
    doc = _document(document_id)
    if not may_download(doc):
        abort(403, description="This document names patients outside your access. Open the "
                               "patient's readiness page for their own extract of it.")
    if len(doc.patients) == 1:
        g.patient_id = doc.patients[0].patient_id
    store = archive_store()
    if not store.exists(doc.doc_sha256):
        abort(500, description="The archived file is missing. Run `flask --app portal audit verify`.")
    data = store.get(doc.doc_sha256)
    if hashlib.sha256(data).hexdigest() != doc.doc_sha256:
        # Never hand out a copy that no longer matches its chain entry.
        abort(500, description="The archived file does not match its chain entry. "
                               "Run `flask --app portal audit verify`.")
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{doc.kind}-{doc.dos or ''}-entry{doc.entry_seq}.pdf")


@bp.route("/<int:document_id>/patients/<int:patient_id>/extract.pdf")
@allow("clinician", "billing", "auditor", "admin")
def extract(document_id: int, patient_id: int):
    """One patient's line of an archived document, with what an auditor needs to check it
    against the chain: the entry, the line commitment and its salt (docs/audit-format.md §4).
    Rendered on request, not archived; it carries the Part 2 redisclosure notice."""
    doc = _document(document_id)
    link = db.session.get(ArchivedDocumentPatient, (document_id, patient_id))
    patient = db.session.get(Patient, patient_id)
    if link is None or patient is None or not link.line_json:
        abort(404, description="That patient is not on this document.")
    if not may_see_patient(current_user.role, current_user.payer_scope_id, patient.payer_id):
        abort(403, description="This patient is outside your access.")
    g.patient_id = patient.id
    raw = entry_bytes(db.session.connection(), doc.entry_seq)
    if raw is None:
        abort(500, description="The chain entry for this document is missing. Run `flask --app portal audit verify`.")
    try:
        entry = parse_entry(raw)
    except EntryFormatError:
        abort(500, description="The chain entry for this document is damaged. Run `flask --app portal audit verify`.")
    line = json.loads(link.line_json)
    session = db.session.scalar(select(GroupSession).where(GroupSession.document_id == doc.id))
    signature = None
    if session is not None:
        signature = db.session.scalar(select(AttendanceEntry.signature_png).where(
            AttendanceEntry.session_id == session.id, AttendanceEntry.patient_id == patient.id))
    context = {
        "doc": {"kind": doc.kind, "title": doc.title, "dos": doc.dos, "entry_seq": doc.entry_seq},
        "entry": entry, "entry_hash": chain_hash(raw), "line": line,
        "line_json": link.line_json, "salt": link.line_salt,
        "patient": {"full_name": patient.full_name, "mrn": patient.mrn},
        "session": None if session is None else {
            "cohort": session.cohort.name, "modality": MODALITY_LABEL[session.modality],
            "place_of_service": session.place_of_service,
            "facilitator": session.facilitator.name_with_credential,
            "facilitator_npi": session.facilitator.npi},
        "signature": signature, "notice": REDISCLOSURE_NOTICE,
        "generated_at": now_utc().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "generated_for": current_user.name,
    }
    download_name = f"{doc.kind}-{doc.dos or ''}-entry{doc.entry_seq}-MRN{patient.mrn}.pdf"
    # Plain data in hand: end the read transaction (on SQLite it holds the write lock) before
    # the layout work.
    db.session.rollback()
    pdf = render_pdf("documents/extract.html", context)
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=True,
                     download_name=download_name)
