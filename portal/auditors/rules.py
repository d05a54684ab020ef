"""Does a set of auditor grants cover a patient on a date of service, at an instant? (pure)

Sources: 42 CFR 2.31 (a consent names the recipient, the purpose, how much and what kind of
information, and an expiration date or event); 42 CFR 2.53 (audit and evaluation: access limited
to what the audit needs, for the audit's duration); 42 CFR 2.13(a) and HIPAA 45 CFR 164.502(b)
(minimum necessary). A grant therefore carries its own scope (a payer's members and/or named
patients, and optionally a date-of-service range) and an expiry, and access ends by itself at
that instant.

Boundaries (tested in tests/unit/test_auditor_rules.py):
- a grant is active from its start (inclusive) until ``expires_at`` (exclusive): at the very
  instant of expiry access has ended. The start is ``starts_at`` when the grant names one (a
  consent or an audit engagement may begin on a later date, 42 CFR 2.31(a)), never before the
  grant was made (``granted_at``): a start typed in the past begins access when it is granted;
- a revoked grant is inactive from ``revoked_at`` (inclusive);
- the DOS range is inclusive at both ends, either end optional;
- payer and patients both given: the listed patients, each of whom must be the payer's member
  (the grant form refuses anyone else); payer alone: all the payer's members; patients alone:
  those patients;
- several grants: the union of their scopes, but a date range is proven by one grant alone
  (``grant_covering_range``), so an audit file's disclosure names a single legal basis.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Sequence

# Legal bases: code -> the full words shown on pages and printed in the audit file.
LEGAL_BASES: dict[str, str] = {
    "consent_2_31": "Written patient consent (42 CFR §2.31)",
    "audit_2_53": "Audit and evaluation (42 CFR §2.53)",
}
# A consent must say what it covers (42 CFR 2.31(a)(3)); printed in the audit file.
NEEDS_CONSENT_SCOPE = frozenset({"consent_2_31"})


@dataclass(frozen=True)
class GrantScope:
    """What the rules need of a grant (built from ``AuditorGrant.scope()``)."""
    id: int
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    payer_id: int | None = None
    patient_ids: frozenset[int] = field(default_factory=frozenset)
    dos_from: date | None = None
    dos_to: date | None = None
    starts_at: datetime | None = None


def begins_at(grant: GrantScope) -> datetime:
    """The instant access under the grant begins: its start, never before it was granted."""
    if grant.starts_at is None:
        return grant.granted_at
    return max(grant.starts_at, grant.granted_at)


def is_active(grant: GrantScope, now: datetime) -> bool:
    if grant.revoked_at is not None and grant.revoked_at <= now:
        return False
    return begins_at(grant) <= now < grant.expires_at


def status(grant: GrantScope, now: datetime) -> str:
    """``revoked`` | ``expired`` | ``pending`` | ``active`` (for the admin's list)."""
    if grant.revoked_at is not None and grant.revoked_at <= now:
        return "revoked"
    if now >= grant.expires_at:
        return "expired"
    if now < begins_at(grant):
        return "pending"
    return "active"


def names_patient(grant: GrantScope, patient_id: int, patient_payer_id: int | None) -> bool:
    """The patient is in the grant's scope of people (dates aside)."""
    if grant.payer_id is None and not grant.patient_ids:
        return False  # a grant with no scope covers no one (never "everyone")
    if grant.payer_id is not None and patient_payer_id != grant.payer_id:
        return False
    return not grant.patient_ids or patient_id in grant.patient_ids


def dos_in_range(grant: GrantScope, dos: date) -> bool:
    return ((grant.dos_from is None or grant.dos_from <= dos)
            and (grant.dos_to is None or dos <= grant.dos_to))


def covers(grants: Iterable[GrantScope], patient_id: int, patient_payer_id: int | None,
           dos: date | None, now: datetime) -> bool:
    """Does any active grant cover this patient on ``dos``? ``dos=None``: on some date (the
    patient is in scope at all; for pages that are not about one date of service)."""
    return any(covering(grants, patient_id, patient_payer_id, dos, now))


def covering(grants: Iterable[GrantScope], patient_id: int, patient_payer_id: int | None,
             dos: date | None, now: datetime) -> list[GrantScope]:
    return [g for g in grants if is_active(g, now) and names_patient(g, patient_id, patient_payer_id)
            and (dos is None or dos_in_range(g, dos))]


def grant_covering_range(grants: Sequence[GrantScope], patient_id: int,
                         patient_payer_id: int | None, first: date, last: date,
                         now: datetime) -> GrantScope | None:
    """One active grant covering the patient for every DOS in ``[first, last]`` (the one that
    expires last when several do), else None. An empty range (first > last) is covered by none."""
    if first > last:
        return None
    found = [g for g in grants if is_active(g, now) and names_patient(g, patient_id, patient_payer_id)
             and dos_in_range(g, first) and dos_in_range(g, last)]
    return max(found, key=lambda g: (g.expires_at, g.id)) if found else None


def without_date_limit(grants: Iterable[GrantScope], patient_id: int,
                       patient_payer_id: int | None, now: datetime) -> bool:
    """An active grant names the patient with no DOS range: pages that show the patient's whole
    history (authorizations, no-shows) are in scope only then."""
    return any(g.dos_from is None and g.dos_to is None
               for g in covering(grants, patient_id, patient_payer_id, None, now))


def clamp_range(grants: Iterable[GrantScope], patient_id: int, patient_payer_id: int | None,
                first: date, last: date, now: datetime) -> tuple[date, date] | None:
    """The part of ``[first, last]`` one covering grant allows (the largest), or None when no
    active grant covers any date in it. Used to keep a page's date range inside the scope."""
    best = None
    for g in covering(grants, patient_id, patient_payer_id, None, now):
        lo = max(first, g.dos_from) if g.dos_from else first
        hi = min(last, g.dos_to) if g.dos_to else last
        if lo <= hi and (best is None or (hi - lo) > (best[1] - best[0])):
            best = (lo, hi)
    return best


def scope_problems(*, payer_id: int | None, patient_ids: Sequence[int],
                   dos_from: date | None, dos_to: date | None, expires_at: datetime | None,
                   now: datetime, legal_basis: str, consent_scope: str, purpose: str,
                   recipient: str, starts_at: datetime | None = None) -> list[str]:
    """What is wrong with a grant as typed (empty list: it may be written). ``starts_at``
    (optional) must come before ``expires_at``; a start in the past is allowed (access then
    begins when the grant is made)."""
    problems = []
    if payer_id is None and not patient_ids:
        problems.append("Scope: choose a payer, list patients by MRN, or both.")
    if dos_from and dos_to and dos_from > dos_to:
        problems.append("Dates of service: the first date is after the last date.")
    if expires_at is None:
        problems.append("Expiry: enter the date and time the access ends.")
    elif expires_at <= now:
        problems.append("Expiry: it must be in the future.")
    elif starts_at is not None and starts_at >= expires_at:
        problems.append("Start: access must start before it expires; choose a start date "
                        "before the expiry (or leave the start empty to begin now).")
    if legal_basis not in LEGAL_BASES:
        problems.append("Legal basis: choose written consent (§2.31) or audit and evaluation (§2.53).")
    elif legal_basis in NEEDS_CONSENT_SCOPE and not consent_scope.strip():
        problems.append("Consent scope: say what the patient's written consent covers "
                        "(required with consent under §2.31).")
    if not purpose.strip():
        problems.append("Purpose: say why the auditor needs the records.")
    if not recipient.strip():
        problems.append("Recipient: name the auditor's organisation.")
    return problems
