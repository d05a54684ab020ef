"""Group sessions (one per cohort per date of service) and their attendance roster rows."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (Date, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime

# "expected" = on the roster, not yet signed or marked. The rest are the field's statuses;
# "absent" is a no-show, "cancelled" a (late) cancellation.
ATTENDANCE_STATUSES = ("expected", "present", "late", "left_early", "absent", "cancelled")
ATTENDED = ("present", "late", "left_early")


class GroupSession(db.Model):
    __tablename__ = "group_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    dos: Mapped[date] = mapped_column(Date, index=True)  # date of service, program-local
    scheduled_start: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime] = mapped_column(UTCDateTime)
    actual_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    modality: Mapped[str] = mapped_column(String(20), default="in_person")
    # A location the session itself records (in person: e.g. "11" vs "57"; telehealth 10/02).
    # None lets the payer's rule decide (its in-person POS).
    place_of_service: Mapped[str | None] = mapped_column(String(2))
    # Break time inside the session: not direct service time (12VAC30-130-5090).
    break_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # Telehealth only: where the patients were (home -> POS 10, other -> POS 02; CMS CR 12427).
    patient_location: Mapped[str | None] = mapped_column(String(10))
    topic: Mapped[str | None] = mapped_column(String(200))
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | closed | cancelled
    cancel_reason: Mapped[str | None] = mapped_column(String(200))  # set by an admin's cancel
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attestation: Mapped[str | None] = mapped_column(Text)
    facilitator_signature_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    facilitator_signature_sha256: Mapped[str | None] = mapped_column(String(64))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))

    cohort = relationship("Cohort")
    facilitator = relationship("User")
    entries = relationship("AttendanceEntry", back_populates="session",
                           order_by="AttendanceEntry.id")
    document = relationship("ArchivedDocument", foreign_keys=[document_id])

    __table_args__ = (UniqueConstraint("cohort_id", "dos"),)

    @property
    def is_closed(self) -> bool:
        return self.status == "closed"

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def is_signing_day(self) -> bool:
        """Patients sign only on the date of service (program-local), never afterwards."""
        from portal.clock import local_today

        return local_today(self.cohort.program.tz) == self.dos


class AttendanceEntry(db.Model):
    __tablename__ = "attendance_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("group_sessions.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="expected")
    arrival: Mapped[datetime | None] = mapped_column(UTCDateTime)
    departure: Mapped[datetime | None] = mapped_column(UTCDateTime)
    minutes_attended: Mapped[int | None] = mapped_column(Integer)
    # Signature: the raw pad strokes (JSON), the PNG the pad exported, and its SHA-256.
    # Deferred: roster pages list rows without pulling every signature image.
    signature_strokes: Mapped[str | None] = mapped_column(Text, deferred=True)
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(400))

    session = relationship("GroupSession", back_populates="entries")
    patient = relationship("Patient")

    __table_args__ = (UniqueConstraint("session_id", "patient_id"),)

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None
