"""The program, its payers, cohorts (recurring groups) and enrollments."""
from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo

from sqlalchemy import (Boolean, Date, ForeignKey, Integer, String, Text, Time, UniqueConstraint,
                        false)
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
    # Billing demographics for the 837P (loop 2010AA/2010AB, PRV*BI, PER) and the clinic file.
    taxonomy_code: Mapped[str | None] = mapped_column(String(10))
    service_line1: Mapped[str | None] = mapped_column(String(55))
    service_line2: Mapped[str | None] = mapped_column(String(55))
    service_city: Mapped[str | None] = mapped_column(String(30))
    service_state: Mapped[str | None] = mapped_column(String(2))
    service_zip: Mapped[str | None] = mapped_column(String(9))  # 9 digits, no dash
    pay_to_line1: Mapped[str | None] = mapped_column(String(55))
    pay_to_line2: Mapped[str | None] = mapped_column(String(55))
    pay_to_city: Mapped[str | None] = mapped_column(String(30))
    pay_to_state: Mapped[str | None] = mapped_column(String(2))
    pay_to_zip: Mapped[str | None] = mapped_column(String(9))
    contact_name: Mapped[str | None] = mapped_column(String(60))
    contact_phone: Mapped[str | None] = mapped_column(String(10))  # 10 digits
    default_pos: Mapped[str | None] = mapped_column(String(2))
    # Billing staff may grant and revoke auditor access too (admins always may).
    billing_grants_auditors: Mapped[bool] = mapped_column(Boolean, default=False,
                                                          server_default=false())

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
    # The payer's id in the 837P (loop 2010BB NM109).
    x12_payer_id: Mapped[str | None] = mapped_column(String(80))
    # Spellings the EHR census uses for this payer, one per line (matched normalized).
    census_aliases: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str | None] = mapped_column(String(300))


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
    # None: the payer's rule decides the in-person POS; set only to record another location.
    place_of_service: Mapped[str | None] = mapped_column(String(2))
    # The dates the schedule applies (a cohort removed from the clinic file gets an end date).
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)

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


class Closure(db.Model):
    """A date on which the program holds no groups (a holiday): no session, no gap."""

    __tablename__ = "closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (UniqueConstraint("program_id", "date"),)
