"""Staff users and patients."""
from __future__ import annotations

from datetime import date, datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

ROLES = ("facilitator", "clinician", "billing", "auditor", "admin")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    credential: Mapped[str | None] = mapped_column(String(40))  # e.g. LCSW, LPC, CADC
    npi: Mapped[str | None] = mapped_column(String(10))
    # Who supervises this user's credential where a payer requires supervision.
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    is_active_user: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped at sign-out, password change and deactivation: sessions carrying an older value
    # are refused (portal.services.sessions).
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_active(self) -> bool:  # flask-login refuses inactive users
        return self.is_active_user

    @property
    def name_with_credential(self) -> str:
        return f"{self.name}, {self.credential}" if self.credential else self.name


class Patient(db.Model):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(40), unique=True)
    legal_first: Mapped[str] = mapped_column(String(100))
    legal_last: Mapped[str] = mapped_column(String(100))
    preferred_first: Mapped[str | None] = mapped_column(String(100))
    dob: Mapped[date] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(10))  # X12 DMG03: F, M or U
    # Subscriber address (837P loop 2010BA N3/N4) and phone, from the census.
    address_line1: Mapped[str | None] = mapped_column(String(55))
    address_line2: Mapped[str | None] = mapped_column(String(55))
    city: Mapped[str | None] = mapped_column(String(30))
    state: Mapped[str | None] = mapped_column(String(2))
    zip: Mapped[str | None] = mapped_column(String(9))  # 5 or 9 digits, no dash
    phone: Mapped[str | None] = mapped_column(String(10))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    member_id: Mapped[str | None] = mapped_column(String(60))
    level_of_care: Mapped[str] = mapped_column(String(10), default="2.1")
    asam_edition: Mapped[str] = mapped_column(String(10), default="3")
    prior_level_of_care: Mapped[str | None] = mapped_column(String(10))
    # The authorization of the level the patient stepped down from (e.g. residential 3.5).
    prior_auth_number: Mapped[str | None] = mapped_column(String(60))
    admit_date: Mapped[date] = mapped_column(Date)
    # ICD-10-CM codes, principal first, comma separated (e.g. "F10.20,F12.10").
    diagnoses: Mapped[str] = mapped_column(String(200), default="")
    # The patient agreed to receive mail from the program (no letter without it).
    mail_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Qualified Medicare Beneficiary (dual eligible): never charged a missed-appointment fee.
    qmb: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    payer = relationship("Payer")
    enrollments = relationship("Enrollment", back_populates="patient")

    @property
    def full_name(self) -> str:
        return f"{self.legal_first} {self.legal_last}"

    @property
    def roster_name(self) -> str:
        """Preferred first name + last initial: all the shared tablet screen may show."""
        first = self.preferred_first or self.legal_first
        return f"{first} {self.legal_last[:1]}."
