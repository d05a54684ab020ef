"""837P export history: what was billed, when, by whom, and what the payer acknowledged."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

FREQUENCY_LABELS = {"1": "original", "7": "replacement", "8": "void"}


class ClaimExport(db.Model):
    """One 837P interchange as sent: the exact bytes (``content``, SHA-256 ``sha256``), its
    control numbers, and the chain entry that archived it (``document``). ``ack_status``
    (accepted | partially accepted | rejected) and ``ack_detail`` (JSON) come from a 999."""

    __tablename__ = "claim_exports"
    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    payer_key: Mapped[str] = mapped_column(String(80))
    first_dos: Mapped[date] = mapped_column(Date)
    last_dos: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    user_name: Mapped[str] = mapped_column(String(200))
    interchange: Mapped[int] = mapped_column(Integer)
    group_number: Mapped[int] = mapped_column(Integer)
    transaction_number: Mapped[int] = mapped_column(Integer)
    usage: Mapped[str] = mapped_column(String(1))
    frequency: Mapped[str] = mapped_column(String(1), default="1")
    replaces_export_id: Mapped[int | None] = mapped_column(ForeignKey("claim_exports.id"))
    claims: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))
    ack_status: Mapped[str | None] = mapped_column(String(20))
    ack_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_detail: Mapped[str | None] = mapped_column(Text)

    document = relationship("ArchivedDocument")
    export_lines = relationship("ClaimExportLine", back_populates="export", order_by="ClaimExportLine.id")

    @property
    def frequency_label(self) -> str:
        return FREQUENCY_LABELS.get(self.frequency, self.frequency)

    @property
    def label(self) -> str:
        return f"export #{self.id} ({self.created_at:%Y-%m-%d %H:%M} UTC by {self.user_name}, ISA13 {self.interchange:09d})"


class ClaimExportLine(db.Model):
    """One patient/DOS line of an export, with the claim (CLM01) it went out in."""

    __tablename__ = "claim_export_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int] = mapped_column(ForeignKey("claim_exports.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    dos: Mapped[date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(10))
    units: Mapped[int] = mapped_column(Integer)
    charge_cents: Mapped[int] = mapped_column(Integer)
    claim_ref: Mapped[str] = mapped_column(String(38))

    export = relationship("ClaimExport", back_populates="export_lines")
    patient = relationship("Patient")
    __table_args__ = (UniqueConstraint("export_id", "patient_id", "dos"),)
