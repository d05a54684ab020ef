"""Auditor grants: the only code that writes them, and the questions every auditor-facing page
and the audit-file binder ask (``active_grants``, ``grant_covering``, ``covers_patient``...).

A grant is made and revoked here, each in one transaction with its admin-log line; bad input
raises ``Invalid`` with one message per problem and writes nothing. The rules themselves are
pure (``portal.auditors.rules``); this module loads grants and patients for them.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.auditors import rules
from portal.auditors.models import AuditorGrant
from portal.clock import TimeInputError, local_to_utc, now_utc, parse_clock
from portal.extensions import db
from portal.input_dates import DateInputError, read_date
from portal.models import Patient, Payer, Program, User
from portal.services import admin_log
from portal.services.errors import Conflict, Invalid, NotFound

ROLE = "auditor"
GRANTERS = ("admin", "billing")  # billing only when the program allows it
DEFAULT_EXPIRY_CLOCK = time(23, 59)
# A grant's purpose becomes the purpose of every audit file requested under it, in the
# accounting of disclosures (portal.audit_files.rules.FIELD_LIMITS["purpose"]).
MAX_PURPOSE = 300
MAX_CONSENT_SCOPE = 4000
_MRN_SPLIT = re.compile(r"[\s,;]+")


# ----------------------------------------------------------------------------------------
# Questions (the interface the audit-file binder codes against; see HELPER brief)
# ----------------------------------------------------------------------------------------

def grants_of(user) -> list[AuditorGrant]:
    """Every grant the auditor ever held (active or not), soonest expiry first."""
    if user is None or getattr(user, "role", None) != ROLE or getattr(user, "id", None) is None:
        return []
    return list(db.session.scalars(
        select(AuditorGrant).where(AuditorGrant.auditor_id == user.id)
        .options(selectinload(AuditorGrant.patients), selectinload(AuditorGrant.payer))
        .order_by(AuditorGrant.expires_at, AuditorGrant.id)))


def active_grants(user, at: datetime | None = None) -> list[AuditorGrant]:
    """The user's grants in force at ``at`` (default now): not revoked, not expired, begun.
    Empty for anyone who is not an auditor."""
    at = at or now_utc()
    return [g for g in grants_of(user) if rules.is_active(g.scope(), at)]


def grant_covering(user, patient: Patient, first: date, last: date,
                   at: datetime | None = None) -> AuditorGrant | None:
    """An active grant covering ``patient`` for every DOS in ``[first, last]``, else None."""
    at = at or now_utc()
    grants = active_grants(user, at)
    found = rules.grant_covering_range([g.scope() for g in grants], patient.id, patient.payer_id,
                                       first, last, at)
    return next((g for g in grants if found is not None and g.id == found.id), None)


def grant_still_covering(user, grant_id: int, patient: Patient, first: date, last: date,
                         at: datetime | None = None) -> AuditorGrant | None:
    """The grant ``grant_id`` if it is ``user``'s, still active, and covers ``patient`` for
    every DOS in ``[first, last]``; else None. An audit file requested under a grant is built
    and handed out only while that very grant allows it (a later, different grant would change
    the disclosure's recipient or legal basis)."""
    at = at or now_utc()
    grant = next((g for g in active_grants(user, at) if g.id == grant_id), None)
    if grant is None or rules.grant_covering_range([grant.scope()], patient.id, patient.payer_id,
                                                   first, last, at) is None:
        return None
    return grant


def covers_patient(user, patient: Patient, dos: date | None = None,
                   at: datetime | None = None) -> bool:
    """May the auditor see ``patient`` (on ``dos``; None: on some date)?"""
    at = at or now_utc()
    return rules.covers([g.scope() for g in active_grants(user, at)], patient.id,
                        patient.payer_id, dos, at)


def covers_whole_history(user, patient: Patient, at: datetime | None = None) -> bool:
    """An active grant names the patient with no date-of-service limit."""
    at = at or now_utc()
    return rules.without_date_limit([g.scope() for g in active_grants(user, at)], patient.id,
                                    patient.payer_id, at)


class Scope:
    """An auditor's active grants loaded once for a page that checks many patients/dates."""

    def __init__(self, user, at: datetime | None = None):
        self.at = at or now_utc()
        self.grants = active_grants(user, self.at)
        self._scopes = [g.scope() for g in self.grants]

    def covers(self, patient_id: int, payer_id: int | None, dos: date | None = None) -> bool:
        return rules.covers(self._scopes, patient_id, payer_id, dos, self.at)

    def clamp(self, patient_id: int, payer_id: int | None, first: date, last: date):
        return rules.clamp_range(self._scopes, patient_id, payer_id, first, last, self.at)

    def grants_for(self, patient: Patient) -> list[AuditorGrant]:
        ids = {s.id for s in rules.covering(self._scopes, patient.id, patient.payer_id, None,
                                            self.at)}
        return [g for g in self.grants if g.id in ids]

    def patient_filter(self):
        """A SQL condition selecting the patients some active grant names (dates aside)."""
        from sqlalchemy import and_, false, or_

        terms = []
        for g in self.grants:
            ids = [p.id for p in g.patients]
            cond = []
            if g.payer_id is not None:
                cond.append(Patient.payer_id == g.payer_id)
            if ids:
                cond.append(Patient.id.in_(ids))
            if cond:
                terms.append(and_(*cond))
        return or_(*terms) if terms else false()


def all_grants(at: datetime | None = None) -> dict[str, list[AuditorGrant]]:
    """Every grant, grouped by status (active, pending, expired, revoked) for the admin."""
    at = at or now_utc()
    out: dict[str, list[AuditorGrant]] = {"active": [], "pending": [], "expired": [], "revoked": []}
    for g in db.session.scalars(select(AuditorGrant).options(
            selectinload(AuditorGrant.patients), selectinload(AuditorGrant.payer),
            selectinload(AuditorGrant.auditor)).order_by(AuditorGrant.expires_at.desc(),
                                                         AuditorGrant.id.desc())):
        out[rules.status(g.scope(), at)].append(g)
    return out


def status_of(grant: AuditorGrant, at: datetime | None = None) -> str:
    return rules.status(grant.scope(), at or now_utc())


def may_grant(user, program: Program) -> bool:
    """Admins always; billing staff when the program's setting allows it."""
    role = getattr(user, "role", None)
    return role == "admin" or (role == "billing" and bool(program.billing_grants_auditors))


def auditors() -> list[User]:
    return list(db.session.scalars(select(User).where(User.role == ROLE)
                                   .order_by(User.is_active_user.desc(), User.name)))


# ----------------------------------------------------------------------------------------
# Writes
# ----------------------------------------------------------------------------------------

def _text(form, key: str) -> str:
    return (form.get(key) or "").strip()


def _one_line(form, key: str) -> str:
    return " ".join((form.get(key) or "").split())


def _labelled(label: str, exc: Exception) -> str:
    """``Expiry: the expiry date …``: the field's label, then the reader's own sentence."""
    message = str(exc)
    return f"{label}: {message[:1].lower()}{message[1:]}"


def _read_expiry(form, tz, problems: list[str]) -> datetime | None:
    raw_day, raw_clock = _text(form, "expires_on"), _text(form, "expires_time")
    if not raw_day:
        return None
    try:
        day = read_date(raw_day, "expiry date")
        clock = parse_clock(raw_clock, "Expiry time") if raw_clock else DEFAULT_EXPIRY_CLOCK
    except (DateInputError, TimeInputError) as exc:
        problems.append(_labelled("Expiry", exc))
        return None
    return local_to_utc(day, clock, tz)


def _read_start(form, tz, problems: list[str]) -> datetime | None:
    """The optional start (``starts_on``, ``starts_time`` default 00:00), program-local."""
    raw_day, raw_clock = _text(form, "starts_on"), _text(form, "starts_time")
    if not raw_day:
        if raw_clock:
            problems.append("Start: enter the date access starts, or leave the time empty too.")
        return None
    try:
        day = read_date(raw_day, "start date")
        clock = parse_clock(raw_clock, "Start time") if raw_clock else time(0, 0)
    except (DateInputError, TimeInputError) as exc:
        problems.append(_labelled("Start", exc))
        return None
    return local_to_utc(day, clock, tz)


def _read_optional_date(form, key: str, label: str, problems: list[str]) -> date | None:
    raw = _text(form, key)
    if not raw:
        return None
    try:
        return read_date(raw, label)
    except DateInputError as exc:
        problems.append(_labelled("Dates of service", exc))
        return None


def create_grant(form, *, program: Program, by, now: datetime | None = None) -> AuditorGrant:
    """Grant an auditor access from the admin form's fields:
    ``auditor_id``, ``payer_id`` (optional), ``mrns`` (optional; MRNs separated by spaces,
    commas or new lines), ``dos_from``/``dos_to`` (optional, YYYY-MM-DD, program-local),
    ``purpose``, ``legal_basis`` (a ``rules.LEGAL_BASES`` code), ``consent_scope``,
    ``recipient``, ``starts_on``/``starts_time`` (optional: access begins then, not now;
    default time 00:00), ``expires_on`` (YYYY-MM-DD) and ``expires_time`` (optional, default
    23:59), program-local. Raises ``Invalid`` (nothing written) listing every problem. Commits."""
    now = now or now_utc()
    if not may_grant(by, program):
        raise Conflict("Only an administrator (or billing, when the program allows it) may "
                       "grant auditor access.")
    problems: list[str] = []
    auditor = None
    raw_auditor = _text(form, "auditor_id")
    if not raw_auditor:
        problems.append("Auditor: choose the auditor's account.")
    else:
        auditor = db.session.get(User, int(raw_auditor)) if raw_auditor.isdigit() else None
        if auditor is None:
            problems.append("Auditor: there is no such account.")
        elif auditor.role != ROLE:
            problems.append(f"Auditor: {auditor.name} is not an auditor ({auditor.role}); "
                            "grants are for auditor accounts only.")
            auditor = None
        elif not auditor.is_active_user:
            problems.append(f"Auditor: {auditor.name}'s account is deactivated.")
    payer = None
    raw_payer = _text(form, "payer_id")
    if raw_payer:
        payer = db.session.get(Payer, int(raw_payer)) if raw_payer.isdigit() else None
        if payer is None:
            problems.append("Payer: there is no such payer.")
    mrns = [m for m in _MRN_SPLIT.split(_text(form, "mrns")) if m]
    patients: list[Patient] = []
    if mrns:
        found = {p.mrn: p for p in db.session.scalars(select(Patient).where(Patient.mrn.in_(mrns)))}
        unknown = [m for m in dict.fromkeys(mrns) if m not in found]
        if unknown:
            problems.append("Patients: no patient has MRN " + ", ".join(u[:40] for u in unknown) + ".")
        patients = [found[m] for m in dict.fromkeys(mrns) if m in found]
        if payer is not None:
            others = [p.mrn for p in patients if p.payer_id != payer.id]
            if others:
                problems.append(f"Patients: MRN {', '.join(others)} "
                                f"{'is not a' if len(others) == 1 else 'are not'} {payer.name} "
                                f"member{'s' if len(others) > 1 else ''}; remove the payer or "
                                "those patients.")
    dos_from = _read_optional_date(form, "dos_from", "first date of service", problems)
    dos_to = _read_optional_date(form, "dos_to", "last date of service", problems)
    starts_at = _read_start(form, program.tz, problems)
    expires_at = _read_expiry(form, program.tz, problems)
    purpose, consent_scope = _text(form, "purpose"), _text(form, "consent_scope")
    recipient, legal_basis = _one_line(form, "recipient"), _text(form, "legal_basis")
    expiry_typed = bool(_text(form, "expires_on"))
    rule_problems = rules.scope_problems(
        payer_id=payer.id if payer else (-1 if raw_payer else None),
        patient_ids=[p.id for p in patients] or ([-1] if mrns else []),
        dos_from=dos_from, dos_to=dos_to, expires_at=expires_at, now=now,
        legal_basis=legal_basis, consent_scope=consent_scope, purpose=purpose,
        recipient=recipient, starts_at=starts_at)
    if expiry_typed and expires_at is None:  # the date itself was refused above
        rule_problems = [p for p in rule_problems if not p.startswith("Expiry:")]
    problems += rule_problems
    if len(purpose) > MAX_PURPOSE:
        problems.append(f"Purpose: at most {MAX_PURPOSE} characters ({len(purpose)} given).")
    if len(consent_scope) > MAX_CONSENT_SCOPE:
        problems.append(f"Consent scope: at most {MAX_CONSENT_SCOPE} characters "
                        f"({len(consent_scope)} given).")
    if len(recipient) > 200:
        problems.append(f"Recipient: at most 200 characters ({len(recipient)} given).")
    if problems:
        raise Invalid(problems[0], details=problems)
    same = _same_grant(auditor, payer, patients, dos_from, dos_to, purpose, legal_basis,
                       recipient, starts_at, expires_at, now)
    if same is not None:
        # A resubmitted form (QA: the same grant made four times over) adds nothing but noise
        # to the auditor's panel and the access review; a longer or different access is a new
        # grant with something changed.
        raise Conflict(f"Grant #{same.id} already gives {auditor.name} exactly this access "
                       f"({same.scope_text}); nothing was added.")
    grant = AuditorGrant(auditor_id=auditor.id, payer_id=payer.id if payer else None,
                         dos_from=dos_from, dos_to=dos_to, purpose=purpose,
                         legal_basis=legal_basis,
                         consent_scope=consent_scope if legal_basis in rules.NEEDS_CONSENT_SCOPE
                         or consent_scope else "",
                         recipient=recipient, starts_at=starts_at, expires_at=expires_at,
                         granted_by_id=by.id, granted_at=now)
    grant.patients = patients
    db.session.add(grant)
    db.session.flush()
    admin_log.record(by, "auditor grant", grant.id, f"{auditor.email}: grant {grant.id}",
                     "granted", after=_describe(grant))
    db.session.commit()
    return grant


def _same_grant(auditor, payer, patients, dos_from, dos_to, purpose, legal_basis, recipient,
                starts_at, expires_at, now) -> AuditorGrant | None:
    """An unrevoked, unexpired grant of ``auditor`` identical in scope, purpose, basis,
    recipient, start and expiry, or None."""
    wanted_patients = {p.id for p in patients}
    candidates = db.session.scalars(select(AuditorGrant).where(
        AuditorGrant.auditor_id == auditor.id, AuditorGrant.revoked_at.is_(None),
        AuditorGrant.expires_at == expires_at))
    for grant in candidates:
        if (grant.payer_id == (payer.id if payer else None)
                and {p.id for p in grant.patients} == wanted_patients
                and (grant.dos_from, grant.dos_to) == (dos_from, dos_to)
                and (grant.purpose, grant.legal_basis, grant.recipient) == (purpose, legal_basis, recipient)
                and grant.starts_at == starts_at and grant.expires_at > now):
            return grant
    return None


def _describe(grant: AuditorGrant) -> str:
    return (f"scope: {grant.scope_text}; purpose: {grant.purpose}; legal basis: "
            f"{grant.legal_basis_text}; recipient: {grant.recipient}; "
            + (f"starts: {grant.starts_at.isoformat(timespec='minutes')}; " if grant.starts_at else "")
            + f"expires: {grant.expires_at.isoformat(timespec='minutes')}")


def find_grant(grant_id: int) -> AuditorGrant:
    grant = db.session.get(AuditorGrant, grant_id)
    if grant is None:
        raise NotFound(f"There is no auditor grant {grant_id}.")
    return grant


def revoke_grant(grant: AuditorGrant, reason: str, *, program: Program, by,
                 now: datetime | None = None) -> None:
    """End a grant now, with a reason. Refused (nothing written) without a reason, or when the
    grant has already ended. Commits."""
    now = now or now_utc()
    if not may_grant(by, program):
        raise Conflict("Only an administrator (or billing, when the program allows it) may "
                       "revoke auditor access.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise Invalid("Reason: say why the access is revoked (it is kept in the admin log).",
                      field="reason")
    if len(reason) > 500:
        raise Invalid(f"Reason: at most 500 characters ({len(reason)} given).", field="reason")
    state = rules.status(grant.scope(), now)
    if state == "revoked":
        raise Conflict("This grant was already revoked.")
    if state == "expired":
        raise Conflict("This grant has already expired; there is nothing to revoke.")
    grant.revoked_at, grant.revoked_by_id, grant.revoke_reason = now, by.id, reason
    admin_log.record(by, "auditor grant", grant.id, f"{grant.auditor.email}: grant {grant.id}",
                     "revoked", before="active", after=f"revoked: {reason}")
    db.session.commit()


def set_billing_may_grant(program: Program, allowed: bool, *, by) -> bool:
    """The program setting; returns True when it changed. Logged. Commits."""
    if bool(program.billing_grants_auditors) == allowed:
        return False
    admin_log.record(by, "program", program.id, program.name, "updated",
                     before=f"billing may grant auditor access: {bool(program.billing_grants_auditors)}",
                     after=f"billing may grant auditor access: {allowed}")
    program.billing_grants_auditors = allowed
    db.session.commit()
    return True


def grant_for_demo(auditor: User, payer: Payer, *, expires_at: datetime, by: str,
                   recipient: str, now: datetime | None = None) -> AuditorGrant:
    """The demo's payer auditor: a §2.53 audit grant for the payer's members (no form)."""
    grant = AuditorGrant(auditor_id=auditor.id, payer_id=payer.id, purpose=(
        f"Post-payment review of {payer.name} claims for intensive outpatient services."),
        legal_basis="audit_2_53", consent_scope="", recipient=recipient,
        expires_at=expires_at, granted_at=now or now_utc())
    db.session.add(grant)
    db.session.flush()
    admin_log.record(by, "auditor grant", grant.id, f"{auditor.email}: grant {grant.id}",
                     "granted", after=_describe(grant))
    return grant
