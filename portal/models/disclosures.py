"""Disclosures of a patient's records (audit files), for the accounting of disclosures
(42 CFR 2.24 / 2.25). Written only by ``portal.audit_files.service``; never edited."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime


class Disclosure(db.Model):
    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recipient: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(300))
    legal_basis: Mapped[str] = mapped_column(String(300))
    consent_scope: Mapped[str | None] = mapped_column(Text)
    dos_from: Mapped[date] = mapped_column(Date)
    dos_to: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text)  # what was disclosed: documents, DOS range
    documents: Mapped[int] = mapped_column(Integer)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requester_name: Mapped[str] = mapped_column(String(200))  # as it was then
    file_sha256: Mapped[str | None] = mapped_column(String(64))  # of the audit file handed out
    entry_seq: Mapped[int | None] = mapped_column(Integer)  # archive entry, when archived

    patient = relationship("Patient")
