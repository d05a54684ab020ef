"""The program, its payers, cohorts (recurring groups) and enrollments."""
from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo

from sqlalchemy import Date, ForeignKey, Integer, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

PAYER_KINDS = ("medicaid", "commercial", "medicare", "self_pay")
MODALITIES = ("in_person", "video", "audio_only")


class Program(db.Model):
    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64), default="America/Chicago")
    billing_npi: Mapped[str] = mapped_column(String(10))
    tax_id: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(300))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class Payer(db.Model):
    __tablename__ = "payers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # ``rule_key`` names the payer's rule file in portal/rules/payers/ (without .yaml).
    rule_key: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))


class Cohort(db.Model):
    """A recurring group, e.g. "AM IOP": meets on ``weekdays`` at a local start time."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    name: Mapped[str] = mapped_column(String(100))
    # ISO weekday numbers, Monday=1, comma separated ("1,2,3,4" = Mon-Thu).
    weekdays: Mapped[str] = mapped_column(String(20), default="1,2,3,4,5")
    start_local: Mapped[time] = mapped_column(Time)
    duration_minutes: Mapped[int] = mapped_column(Integer, default=180)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    capacity: Mapped[int] = mapped_column(Integer, default=12)
    modality: Mapped[str] = mapped_column(String(20), default="in_person")
    place_of_service: Mapped[str] = mapped_column(String(2), default="57")

    program = relationship("Program")
    facilitator = relationship("User")

    __table_args__ = (UniqueConstraint("program_id", "name"),)

    @property
    def weekday_set(self) -> set[int]:
        return {int(d) for d in self.weekdays.split(",") if d.strip()}


class Enrollment(db.Model):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    primary_counselor: Mapped[str | None] = mapped_column(String(200))

    patient = relationship("Patient", back_populates="enrollments")
    cohort = relationship("Cohort")

    __table_args__ = (UniqueConstraint("patient_id", "cohort_id", "start_date"),)

    def active_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)
