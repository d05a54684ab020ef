"""Clinical documentation: treatment plans (versioned), group notes (the shared section of a
session), encounter notes (one patient's individual section), and addenda (corrections to a
signed note, a signed plan or a closed roster, as a linear chain per original and patient).

Signed and closed records never change; ``portal.services.notes`` is the only writer.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import (Boolean, Date, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class TreatmentPlan(db.Model):
    """One version of a patient's plan. A review writes a new version (``previous_id``); a
    version takes effect on the program-local date of its last required signature, when it is
    rendered and archived (``document_id``)."""

    __tablename__ = "treatment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("treatment_plans.id"))
    asam_edition: Mapped[str] = mapped_column(String(4), default="3")
    level_of_care: Mapped[str] = mapped_column(String(10), default="2.1")
    # {"problems": [{"key": "O1", "dimension": "1".."6", "text", "goal", "objective",
    #                 "target_date": "YYYY-MM-DD"}],  one row per problem, its long-term goal
    #                 and measurable objective ("key" names the objective; kept on review)
    #  "interventions": [{"modality", "frequency", "staff"}]}
    content_json: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | signed
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    supervisor_required: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_signature_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    patient_signature_sha256: Mapped[str | None] = mapped_column(String(64))
    patient_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    clinician_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supervisor_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    effective_date: Mapped[date | None] = mapped_column(Date)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))

    patient = relationship("Patient")
    created_by = relationship("User", foreign_keys=[created_by_id])
    clinician = relationship("User", foreign_keys=[clinician_id])
    supervisor = relationship("User", foreign_keys=[supervisor_id])
    document = relationship("ArchivedDocument", foreign_keys=[document_id])

    __table_args__ = (UniqueConstraint("patient_id", "version"),)

    @property
    def content(self) -> dict:
        return json.loads(self.content_json or "{}")

    @property
    def objectives(self) -> list[dict]:
        return [{"key": p["key"], "text": p["objective"], "target_date": p["target_date"]}
                for p in self.content.get("problems", [])]


class GroupNote(db.Model):
    """The shared section of a session's notes: written once, copied into each patient's
    signed note after a check that it names no attendee."""

    __tablename__ = "group_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("group_sessions.id"), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    group_modality: Mapped[str] = mapped_column(String(30), default="process")
    topic: Mapped[str] = mapped_column(String(200), default="")
    shared_text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EncounterNote(db.Model):
    """One patient's note for one group session."""

    __tablename__ = "encounter_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("group_sessions.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("treatment_plans.id"))
    objective_key: Mapped[str | None] = mapped_column(String(20))
    participation: Mapped[str | None] = mapped_column(String(20))
    affect: Mapped[str | None] = mapped_column(String(20))
    mental_status: Mapped[str | None] = mapped_column(String(30))
    risk: Mapped[str | None] = mapped_column(String(20))
    safety_plan: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[str | None] = mapped_column(String(20))
    individual_text: Mapped[str] = mapped_column(Text, default="")
    plan_changes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft | signed
    # none | open (signed with a near-identical section unreviewed) | resolved
    clone_flag: Mapped[str] = mapped_column(String(10), default="none")
    clone_review: Mapped[str] = mapped_column(Text, default="")
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[date | None] = mapped_column(Date)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("archived_documents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session = relationship("GroupSession")
    patient = relationship("Patient")
    author = relationship("User")
    plan = relationship("TreatmentPlan")
    document = relationship("ArchivedDocument", foreign_keys=[document_id])

    __table_args__ = (UniqueConstraint("session_id", "patient_id"),)

    @property
    def is_signed(self) -> bool:
        return self.status == "signed"


ADDENDUM_TARGETS = ("note", "plan", "roster")


class Addendum(db.Model):
    """A correction: a new archived document that references the original's chain entry, with
    author, reason and the corrected fields. Per (original, patient) the addenda form one
    linear chain: ``position`` 1, 2, ... each superseding the one before (unique, so two
    authors correcting from the same head cannot both succeed)."""

    __tablename__ = "addenda"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(10))
    original_document_id: Mapped[int] = mapped_column(ForeignKey("archived_documents.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("addenda.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    fields_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    document_id: Mapped[int] = mapped_column(ForeignKey("archived_documents.id"))

    author = relationship("User")
    patient = relationship("Patient")
    original = relationship("ArchivedDocument", foreign_keys=[original_document_id])
    document = relationship("ArchivedDocument", foreign_keys=[document_id])

    __table_args__ = (UniqueConstraint("original_document_id", "patient_id", "position"),)

    @property
    def fields(self) -> dict:
        return json.loads(self.fields_json)
