"""Payer authorizations for a level of care over a date range."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db


class Authorization(db.Model):
    __tablename__ = "authorizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    number: Mapped[str] = mapped_column(String(60))
    hcpcs_code: Mapped[str] = mapped_column(String(10), default="H0015")
    level_of_care: Mapped[str] = mapped_column(String(10), default="2.1")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    units: Mapped[int] = mapped_column(Integer)  # authorized units (H0015: days)

    patient = relationship("Patient")
    payer = relationship("Payer")

    __table_args__ = (UniqueConstraint("payer_id", "number"),)
