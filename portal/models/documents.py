"""Archived documents: the portal's index into the audit archive's chain entries."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

DOCUMENT_KINDS = ("roster", "encounter_note", "treatment_plan", "authorization_decision",
                  "no_show_letter", "reconciliation", "no_show_policy",
                  "no_show_acknowledgment")


class ArchivedDocument(db.Model):
    __tablename__ = "archived_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_seq: Mapped[int] = mapped_column(Integer, unique=True)  # audit_entries.seq
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    dos: Mapped[date | None] = mapped_column(Date)
    doc_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    patients = relationship("ArchivedDocumentPatient", back_populates="document")


class ArchivedDocumentPatient(db.Model):
    """Which patients a document concerns, with each one's salted line (for scoped exports)."""

    __tablename__ = "archived_document_patients"

    document_id: Mapped[int] = mapped_column(ForeignKey("archived_documents.id"), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    line_json: Mapped[str | None] = mapped_column(Text)
    line_salt: Mapped[str | None] = mapped_column(String(64))

    document = relationship("ArchivedDocument", back_populates="patients")
    patient = relationship("Patient")
