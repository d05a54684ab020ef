"""Payer authorizations for a level of care over a date range, their request/decision history,
the patient's level-of-care episodes, and uploaded payer letters.

An authorization imported from the census is already ``approved``; one requested in the portal
starts as a ``draft`` and moves through ``portal.rules.authorizations.TRANSITIONS``, each move a
row in ``authorization_transitions`` with its archived PDF.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class Authorization(db.Model):
    __tablename__ = "authorizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    # The payer's authorization number; None until the payer assigns one.
    number: Mapped[str | None] = mapped_column(String(60))
    hcpcs_code: Mapped[str] = mapped_column(String(10), default="H0015")
    level_of_care: Mapped[str] = mapped_column(String(10), default="2.1")
    asam_edition: Mapped[str] = mapped_column(String(4), default="3")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    units: Mapped[int] = mapped_column(Integer)  # authorized units (H0015: days)
    units_per_week: Mapped[int | None] = mapped_column(Integer)  # per payer-week bucket
    status: Mapped[str] = mapped_column(String(24), default="approved", server_default="approved")
    request_kind: Mapped[str] = mapped_column(String(12), default="standard",
                                              server_default="standard")  # or expedited
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    p2p_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    denial_reason: Mapped[str | None] = mapped_column(Text)
    # An overlapping window is allowed only as a documented extension of the one it extends.
    extends_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"))
    extension_reason: Mapped[str | None] = mapped_column(Text)
    # Step-down: the higher level's authorization this request continues from.
    prior_authorization_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"))
    # The request packet: ASAM dimensions, diagnoses, history, attached documents (JSON).
    request_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)

    patient = relationship("Patient")
    payer = relationship("Payer")
    transitions = relationship("AuthorizationTransition", back_populates="authorization",
                               order_by="AuthorizationTransition.id")
    letters = relationship("PayerLetter", back_populates="authorization",
                           order_by="PayerLetter.id")
    prior = relationship("Authorization", foreign_keys=[prior_authorization_id], remote_side=[id])
    extends = relationship("Authorization", foreign_keys=[extends_id], remote_side=[id])

    __table_args__ = (UniqueConstraint("payer_id", "number"),)

    @property
    def request(self) -> dict:
        return json.loads(self.request_json) if self.request_json else {}

    @property
    def label(self) -> str:
        return self.number or f"request R-{self.id}"


class AuthorizationTransition(db.Model):
    """One move of the state machine: who, when, why, and the archived PDF it produced."""

    __tablename__ = "authorization_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[int] = mapped_column(ForeignKey("authorizations.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it happened (payer time for decisions)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))

    authorization = relationship("Authorization", back_populates="transitions")
    actor = relationship("User")
    document = relationship("ArchivedDocument")


class CareEpisode(db.Model):
    """A stretch of one level of care (residential 3.5/3.7, PHP 2.5, IOP 2.1, OP 1).
    ``start_date`` None = before our records (the census only says where they came from)."""

    __tablename__ = "care_episodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    level: Mapped[str] = mapped_column(String(10))
    asam_edition: Mapped[str] = mapped_column(String(4), default="3")
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    authorization_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"))
    auth_number: Mapped[str | None] = mapped_column(String(60))
    prior_episode_id: Mapped[int | None] = mapped_column(ForeignKey("care_episodes.id"))
    source: Mapped[str] = mapped_column(String(20), default="manual")  # census | step_down | manual
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)

    patient = relationship("Patient")
    authorization = relationship("Authorization")


class PayerLetter(db.Model):
    """An uploaded payer letter (PDF): the bytes as received and their hash; for a file
    encrypted with an empty user password, also the decrypted bytes and their hash."""

    __tablename__ = "payer_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[int] = mapped_column(ForeignKey("authorizations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    original_sha256: Mapped[str] = mapped_column(String(64))
    original: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    decrypted_sha256: Mapped[str | None] = mapped_column(String(64))
    decrypted: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    authorization = relationship("Authorization", back_populates="letters")
