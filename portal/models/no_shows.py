"""No-show and cancellation policy: the program's versioned written policy, patients' signed
acknowledgments, notices of cancellation or excuse, the fee ledger, outreach attempts, letters
and clinical-review tasks. The classification of each absence is derived (portal.rules.no_shows),
never stored, so a policy correction or a late-recorded excuse is reflected everywhere at once."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (Boolean, Date, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

NOTICE_KINDS = ("cancellation", "excused")
LEDGER_KINDS = ("charge", "waive", "payment")
OUTREACH_METHODS = ("phone", "text", "voicemail", "in_person", "letter")
OUTREACH_OUTCOMES = ("reached", "left_message", "no_answer", "wrong_number", "sent")
TASK_STATUSES = ("open", "done")


class NoShowPolicy(db.Model):
    """One published version of the program's written no-show policy (archived when published)."""

    __tablename__ = "no_show_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    grace_minutes: Mapped[int] = mapped_column(Integer)
    notice_hours: Mapped[int] = mapped_column(Integer)
    fee_cents: Mapped[int] = mapped_column(Integer)
    # The fee applies to every patient alike at one amount (Medicare CPM ch. 1 §30.3.13).
    uniform: Mapped[bool] = mapped_column(Boolean, default=False)
    letter_consecutive: Mapped[int] = mapped_column(Integer, default=2)
    letter_count: Mapped[int] = mapped_column(Integer, default=3)
    window_days: Mapped[int] = mapped_column(Integer, default=30)
    # Sender line printed on letters: must not name substance use (42 CFR Part 2).
    letter_sender: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))

    document = relationship("ArchivedDocument")
    published_by = relationship("User")

    __table_args__ = (UniqueConstraint("program_id", "version"),)


class PolicyAcknowledgment(db.Model):
    """A patient's signature (tablet pad) acknowledging one policy version; archived."""

    __tablename__ = "no_show_acknowledgments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("no_show_policies.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    signature_sha256: Mapped[str] = mapped_column(String(64))
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))

    policy = relationship("NoShowPolicy")
    document = relationship("ArchivedDocument")

    __table_args__ = (UniqueConstraint("patient_id", "policy_id"),)


class AbsenceNotice(db.Model):
    """A cancellation phoned in (with the time the notice came in) or a documented excuse
    (illness, emergency) for one patient's group on one date of service."""

    __tablename__ = "absence_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"))
    dos: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(20))  # cancellation | excused
    notice_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(300), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cohort = relationship("Cohort")
    recorded_by = relationship("User")

    __table_args__ = (UniqueConstraint("patient_id", "cohort_id", "dos", "kind"),)


class FeeLedgerEntry(db.Model):
    """One line of a patient's no-show fee ledger, in integer cents. Lines are never edited:
    a mistaken charge is waived with a reason."""

    __tablename__ = "no_show_fee_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # charge | waive | payment
    amount_cents: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("group_sessions.id"))
    dos: Mapped[date | None] = mapped_column(Date)
    classification: Mapped[str | None] = mapped_column(String(30))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("no_show_policies.id"))
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("no_show_fee_ledger.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recorded_by = relationship("User")


class OutreachAttempt(db.Model):
    """A logged attempt to reach a patient after an absence (payer reviewers look for these)."""

    __tablename__ = "outreach_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    dos: Mapped[date | None] = mapped_column(Date)  # the absence it follows up
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(300), default="")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    staff = relationship("User")


class NoShowLetter(db.Model):
    """An attendance letter produced by a threshold (archived PDF)."""

    __tablename__ = "no_show_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    trigger_dos: Mapped[date] = mapped_column(Date)
    trigger: Mapped[str] = mapped_column(String(300))
    document_id: Mapped[int] = mapped_column(ForeignKey("archived_documents.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    document = relationship("ArchivedDocument")

    __table_args__ = (UniqueConstraint("patient_id", "trigger_dos"),)


class ClinicalReviewTask(db.Model):
    """A repeat-absence pattern sent to the primary counselor for clinical review."""

    __tablename__ = "clinical_review_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    trigger_dos: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(300))
    assignee: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str] = mapped_column(String(300), default="")

    patient = relationship("Patient")

    __table_args__ = (UniqueConstraint("patient_id", "trigger_dos"),)
