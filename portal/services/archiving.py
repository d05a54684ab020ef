"""Put a rendered document into the audit archive, inside the caller's transaction.

Order (docs/audit-format.md): the caller has rendered the PDF outside any transaction; here we
take the chain lock (via ``audit_archive.append``), stamp, write the file durably, insert the
chain entry, then index it for the portal. The caller commits once for all of it.
"""
from __future__ import annotations

import errno
import secrets
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app

import audit_archive.canonical as canonical
from audit_archive.filestore import FileStore
from audit_archive.ledger import append
from portal.extensions import db
from portal.models import ArchivedDocument, ArchivedDocumentPatient
from portal.services.errors import Unavailable


@dataclass(frozen=True)
class PatientLine:
    """One patient's line of a (possibly multi-patient) document, disclosed only to that patient's
    scoped exports. ``line`` must be JSON-ready (strings and ints)."""
    patient_id: int
    line: dict


def archive_store() -> FileStore:
    return FileStore(current_app.config["PORTAL_ARCHIVE_DIR"])


def _why(exc: OSError) -> str:
    return {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read-only",
            errno.EACCES: "not writable", errno.EPERM: "not writable"}.get(
        exc.errno or 0, "unavailable")


# Set only while history is archived on purpose long after its events (the demo's past weeks,
# an import): every entry archived meanwhile carries this reason as its ``backfill`` marker, so
# verify reports them in one summary line instead of one late-archived warning each. The
# entries' archived times stay the server's true clock (docs/audit-format.md §1).
_BACKFILL: ContextVar[str | None] = ContextVar("portal_archive_backfill", default=None)


@contextmanager
def backfilling(reason: str):
    """Mark every entry archived inside the block as backfilled history, with ``reason``."""
    token = _BACKFILL.set(reason)
    try:
        yield
    finally:
        _BACKFILL.reset(token)


def archive_document(*, kind: str, title: str, dos: date | None, subject: dict[str, str],
                     actor: str, record: dict, pdf: bytes, occurred_at: datetime,
                     patient_lines: list[PatientLine]) -> ArchivedDocument:
    """Append ``pdf`` to the chain and index it; returns the (flushed, uncommitted) document.

    Each patient line is committed in the entry with a fresh 32-byte salt, so a patient's export
    can prove their own line without revealing anyone else's. Raises whatever the archive raises
    (``StampError`` for a non-PDF, database errors); the caller's rollback then undoes everything
    but an unreferenced file, which ``audit verify`` reports. After committing, callers call
    ``portal.services.checkpoints.checkpoint_if_due()`` so a signed head exists at least daily.
    """
    salted = []
    for pl in patient_lines:
        salt = secrets.token_bytes(canonical.SALT_SIZE)
        salted.append((pl, salt, canonical.commit_line(pl.line, salt)))
    try:
        store = archive_store()
        result = append(
            db.session.connection(), store, kind=kind, subject=subject, actor=actor,
            record=record, pdf_bytes=pdf, occurred_at=occurred_at,
            line_commitments=[c for _, _, c in salted],
            verify_base_url=current_app.config["PORTAL_BASE_URL"],
            origin=current_app.config["PORTAL_ARCHIVE_ORIGIN"],
            label=(record.get("program", {}).get("name")
                   if isinstance(record.get("program"), dict) else None),
            backfill=_BACKFILL.get(),
        )
    except OSError as exc:
        # Disk full, read-only or missing archive folder. The caller rolls back, so the record
        # stays as it was (a roster stays open); at most an unreferenced temp file remains.
        current_app.logger.error("archive folder unusable while archiving a %s: %s", kind,
                                 exc.strerror or type(exc).__name__)
        raise Unavailable(
            "The archive could not store this document (its disk is "
            f"{_why(exc)}). Nothing was saved and the record is unchanged; tell your "
            "administrator, then try again.") from exc
    doc = ArchivedDocument(entry_seq=result.seq, kind=kind, title=title, dos=dos,
                           doc_sha256=result.doc_sha256)
    db.session.add(doc)
    for pl, salt, _ in salted:
        db.session.add(ArchivedDocumentPatient(
            document=doc, patient_id=pl.patient_id,
            # The canonical (RFC 8785) bytes the commitment covers, so readers can hash the
            # stored text as it is (portal/archive_binding.py reads every line of a page).
            line_json=canonical.line_bytes(pl.line).decode("utf-8"), line_salt=salt.hex()))
    db.session.flush()
    return doc
