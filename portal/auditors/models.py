"""An auditor grant: who may read which patients' records, for which dates of service, why,
under which legal basis, and until when (42 CFR 2.31 / 2.53). Never edited after it is made
except to revoke it; a changed scope is a new grant."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auditors.rules import LEGAL_BASES, GrantScope, begins_at
from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

grant_patients = Table(
    "auditor_grant_patients", db.metadata,
    Column("grant_id", ForeignKey("auditor_grants.id", ondelete="CASCADE"), primary_key=True),
    Column("patient_id", ForeignKey("patients.id"), primary_key=True),
)


class AuditorGrant(db.Model):
    __tablename__ = "auditor_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    auditor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    payer_id: Mapped[int | None] = mapped_column(ForeignKey("payers.id"))
    dos_from: Mapped[date | None] = mapped_column(Date)
    dos_to: Mapped[date | None] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(String(20))  # a key of rules.LEGAL_BASES
    consent_scope: Mapped[str] = mapped_column(Text, default="")
    recipient: Mapped[str] = mapped_column(String(200))
    # Optional: access begins then instead of when granted (never earlier; rules.begins_at).
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(String(500))

    auditor = relationship("User", foreign_keys=[auditor_id])
    granted_by = relationship("User", foreign_keys=[granted_by_id])
    revoked_by = relationship("User", foreign_keys=[revoked_by_id])
    payer = relationship("Payer")
    patients = relationship("Patient", secondary=grant_patients, order_by="Patient.mrn")

    @property
    def legal_basis_text(self) -> str:
        return LEGAL_BASES.get(self.legal_basis, self.legal_basis)

    @property
    def scope_text(self) -> str:
        """One line for lists and the auditor's page: whose records, which dates."""
        who = []
        if self.patients:
            mrns = ", ".join(f"MRN {p.mrn}" for p in self.patients)
            who.append(f"{mrns}" + (f" ({self.payer.name} members)" if self.payer else ""))
        elif self.payer:
            who.append(f"all {self.payer.name} members")
        if self.dos_from and self.dos_to:
            when = f"dates of service {self.dos_from:%b %-d, %Y} to {self.dos_to:%b %-d, %Y}"
        elif self.dos_from:
            when = f"dates of service from {self.dos_from:%b %-d, %Y}"
        elif self.dos_to:
            when = f"dates of service up to {self.dos_to:%b %-d, %Y}"
        else:
            when = "all dates of service"
        return f"{'; '.join(who) or 'no one'}; {when}"

    def scope(self) -> GrantScope:
        return GrantScope(id=self.id, granted_at=self.granted_at, expires_at=self.expires_at,
                          revoked_at=self.revoked_at, payer_id=self.payer_id,
                          patient_ids=frozenset(p.id for p in self.patients),
                          dos_from=self.dos_from, dos_to=self.dos_to,
                          starts_at=self.starts_at)

    @property
    def begins_at(self) -> datetime:
        """When access under this grant begins (its start, or when it was granted)."""
        return begins_at(self.scope())
