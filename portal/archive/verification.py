"""The page a stamp's QR code opens: one archive entry and whether it verifies."""
from __future__ import annotations

from flask import Blueprint, current_app, g, render_template
from sqlalchemy import select

from audit_archive.entry import EntryFormatError, utc_instant
from audit_archive.verify import verify_entry
from portal.access_control import allow
from portal.auditors import access as auditor_access
from portal.extensions import db
from portal.models import ArchivedDocument
from portal.services.archive_index import document_problems
from portal.services.archiving import archive_store
from portal.services.checkpoints import SigningKeyMissing, existing_public_key, late_archive_limit

bp = Blueprint("verification", __name__)


def late_archived_days(entry: dict | None) -> tuple[float | None, float]:
    """``(days between event and archiving, when beyond the limit, else None; the limit)``."""
    try:
        limit = late_archive_limit().total_seconds() / 86400
    except ValueError as exc:  # a bad setting must not break the page; `audit verify` names it
        current_app.logger.error("verification page: %s", exc)
        limit = 7.0
    if not entry or not entry.get("archived_at"):
        return None, limit
    try:
        gap = utc_instant(entry["archived_at"]) - utc_instant(entry["occurred_at"])
    except EntryFormatError:
        return None, limit
    days = gap.total_seconds() / 86400
    return (days if days > limit else None), limit


@bp.route("/verify/<int(unbounded=True):seq>")
@allow("facilitator", "clinician", "billing", "auditor", "admin")
def entry(seq: int):
    # A read-only page: it never creates a signing key. When the key file is gone although
    # checkpoints were signed with it, or is damaged (SigningKeyDamaged is a SigningKeyMissing),
    # the entry is still checked, with the checkpoint's signature shown as not checked (the
    # details go to the log, not to the page).
    key_missing = False
    try:
        key = existing_public_key()
    except SigningKeyMissing as exc:
        current_app.logger.error("verification page: %s", exc)
        key, key_missing = None, True
    # verify_entry answers found=False for a seq no row can have (0, or beyond the format's
    # 12 digits), so such a number never reaches the database (SQLite would overflow).
    # Checkpoint files count as covering checkpoints too: a deleted checkpoint row must not
    # turn a tampered entry into "awaiting checkpoint".
    doc = None
    if auditor_access.scoped():
        # An auditor sees the entry of a document about a patient their grants cover (on its
        # date of service), nothing else: 404 before any check runs.
        doc = db.session.scalar(select(ArchivedDocument).where(ArchivedDocument.entry_seq == seq)) \
            if 0 < seq < 10**12 else None
        if doc is None or not any(auditor_access.covers_document(doc)):
            auditor_access.not_found()
        covered = [link.patient_id for link, ok in zip(doc.patients,
                                                        auditor_access.covers_document(doc)) if ok]
        g.patient_id = covered[0] if len(covered) == 1 else None
    result = verify_entry(db.session.connection(), archive_store(), seq, key,
                          checkpoint_dir=current_app.config["PORTAL_CHECKPOINT_DIR"])
    index_problems = []
    if result.found:
        doc = doc or db.session.scalar(select(ArchivedDocument).where(ArchivedDocument.entry_seq == seq))
        if doc is not None and result.entry is not None:
            # The portal's index row for this entry must agree with it, or downloads refuse.
            index_problems = document_problems(kind=doc.kind, doc_sha256=doc.doc_sha256,
                                               dos=doc.dos, entry=result.entry,
                                               patients=len(doc.patients))
    late_days, late_limit = late_archived_days(result.entry)
    signature_unchecked = key_missing and result.checkpoint_size is not None
    status = 200 if result.found else 404
    return render_template("verification/entry.html", seq=seq, result=result, doc=doc,
                           index_problems=index_problems, key_missing=key_missing,
                           signature_unchecked=signature_unchecked, late_days=late_days,
                           late_limit=late_limit), status
