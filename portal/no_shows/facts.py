"""Read absences, notices, policies, acknowledgments and payers as plain facts for the rules.

Fixed number of queries whatever the number of patients or days (roster rows, notices,
policies, acknowledgments, patients): the board and the readiness page call it per request.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.clock import now_utc
from portal.extensions import db
from portal.models import (AbsenceNotice, AttendanceEntry, Authorization, Cohort, GroupSession, NoShowPolicy,
                           Patient, Payer, PolicyAcknowledgment, Program)
from portal.rules.no_show_fees import CONTRACT_FORBIDDEN, FeeDecision, fee_decision
from portal.rules.no_shows import (Classification, Notice, Occurrence, PolicyTerms, classify,
                                   policy_in_force)


def terms(policy: NoShowPolicy) -> PolicyTerms:
    return PolicyTerms(version=policy.version, effective_from=policy.effective_from,
                       effective_to=policy.effective_to, grace_minutes=policy.grace_minutes,
                       notice_hours=policy.notice_hours, fee_cents=policy.fee_cents,
                       uniform=policy.uniform, letter_consecutive=policy.letter_consecutive,
                       letter_count=policy.letter_count, window_days=policy.window_days,
                       policy_id=policy.id)


def policy_terms(program_id: int) -> list[PolicyTerms]:
    return [terms(p) for p in db.session.scalars(
        select(NoShowPolicy).where(NoShowPolicy.program_id == program_id)
        .order_by(NoShowPolicy.effective_from))]


@dataclass(frozen=True)
class Absence:
    """One roster row (attended or not) with its classification (None = attended/not yet)."""

    patient_id: int
    session_id: int
    cohort_id: int
    cohort_name: str
    dos: date
    scheduled_start: datetime
    status: str
    roster_closed: bool
    classification: Classification | None

    @property
    def code(self) -> str | None:
        return self.classification.code if self.classification else None


def load_rows(program: Program, first: date, last: date, *, patient_ids: Iterable[int] | None = None,
              now: datetime | None = None) -> list[Absence]:
    """Every roster row in ``first``..``last`` (program-local DOS), classified. Three queries."""
    now = now or now_utc()
    tz = program.tz
    policies = policy_terms(program.id)
    q = (select(AttendanceEntry.patient_id, AttendanceEntry.status, AttendanceEntry.arrival,
                GroupSession.id.label("sid"), GroupSession.dos, GroupSession.scheduled_start,
                GroupSession.scheduled_end, GroupSession.status.label("sstatus"),
                Cohort.id.label("cid"), Cohort.name)
         .join(GroupSession, GroupSession.id == AttendanceEntry.session_id)
         .join(Cohort, Cohort.id == GroupSession.cohort_id)
         .where(Cohort.program_id == program.id, GroupSession.dos >= first, GroupSession.dos <= last)
         .order_by(GroupSession.dos, GroupSession.scheduled_start))
    nq = select(AbsenceNotice).where(AbsenceNotice.dos >= first, AbsenceNotice.dos <= last)
    if patient_ids is not None:
        ids = list(patient_ids) or [-1]
        q = q.where(AttendanceEntry.patient_id.in_(ids))
        nq = nq.where(AbsenceNotice.patient_id.in_(ids))
    notices: dict[tuple, Notice] = {}
    for n in db.session.scalars(nq):
        notices[(n.patient_id, n.cohort_id, n.dos, n.kind)] = Notice(n.kind, n.notice_at,
                                                                      n.recorded_at, n.reason)
    out = []
    for r in db.session.execute(q):
        policy = policy_in_force(policies, r.dos)
        c = classify(r.status, scheduled_start=r.scheduled_start, scheduled_end=r.scheduled_end,
                     arrival=r.arrival,
                     notice=notices.get((r.patient_id, r.cid, r.dos, "cancellation")),
                     excuse=notices.get((r.patient_id, r.cid, r.dos, "excused")),
                     policy=policy, tz=tz, now=now)
        out.append(Absence(r.patient_id, r.sid, r.cid, r.name, r.dos, r.scheduled_start,
                           r.status, r.sstatus == "closed", c))
    return out


def absences(rows: Iterable[Absence]) -> list[Absence]:
    return [a for a in rows if a.classification is not None]


def occurrences(rows: Iterable[Absence], patient_id: int) -> list[Occurrence]:
    return [Occurrence(a.dos, a.code) for a in rows if a.patient_id == patient_id]


def forbidding_payers() -> tuple[str, ...]:
    """Payers whose contracts forbid the fee (makes a policy non-uniform for Medicare).
    Medicaid's prohibition is law, not the program's choice, so it is not counted here."""
    book = current_app.extensions["rulebook"]
    return tuple(sorted(p.name for p in book.payers.values()
                        if p.kind == "commercial" and p.no_show_fee == CONTRACT_FORBIDDEN))


def acknowledgments(patient_ids: Iterable[int]) -> dict[int, list[tuple[int, datetime]]]:
    """patient id -> [(policy version id, signed_at)]."""
    out: dict[int, list] = {}
    ids = list(patient_ids) or [-1]
    for a in db.session.scalars(select(PolicyAcknowledgment)
                                .where(PolicyAcknowledgment.patient_id.in_(ids))):
        out.setdefault(a.patient_id, []).append((a.policy_id, a.signed_at))
    return out


def payer_spans(patient_ids: Iterable[int]) -> dict[int, list[tuple[date, date, Payer]]]:
    """patient id -> [(start, end, payer)] from their authorizations: which payer covered
    which dates, so a payer change mid-month judges each absence under its own payer."""
    ids = list(patient_ids) or [-1]
    out: dict[int, list] = {}
    rows = db.session.execute(select(Authorization.patient_id, Authorization.start_date,
                                     Authorization.end_date, Payer)
                              .join(Payer, Payer.id == Authorization.payer_id)
                              .where(Authorization.patient_id.in_(ids)))
    for pid, start, end, payer in rows:
        out.setdefault(pid, []).append((start, end, payer))
    return out


def payer_for(patient: Patient, day: date, spans: list[tuple[date, date, Payer]] | None) -> Payer:
    """The payer of an authorization covering ``day`` (the latest starting, if several), else
    the patient's current payer."""
    covering = [(start, payer) for start, end, payer in (spans or ()) if start <= day <= end]
    return max(covering, key=lambda c: c[0])[1] if covering else patient.payer


def fee_for(absence: Absence, patient: Patient, acks: list[tuple[int, datetime]],
            policies: list[PolicyTerms], forbidding: tuple[str, ...],
            spans: list[tuple[date, date, Payer]] | None = None) -> FeeDecision:
    """The fee decision for one absence under the policy in force on its date and the payer
    covering that date, judged against the acknowledgment of that same policy version (a
    signature on an older version does not cover a new fee amount)."""
    policy = policy_in_force(policies, absence.dos)
    payer = payer_for(patient, absence.dos, spans)
    book = current_app.extensions["rulebook"]
    rule_payer = book.payers.get(payer.rule_key)
    signed = [at for pid, at in acks if policy is not None and pid == policy.policy_id]
    return fee_decision(
        absence.code or "", payer_kind=payer.kind,
        contract=rule_payer.no_show_fee if rule_payer else None,
        cap_cents=rule_payer.no_show_fee_cap_cents if rule_payer else None,
        qmb=bool(patient.qmb), policy=policy, acknowledged_at=min(signed) if signed else None,
        absence_at=absence.scheduled_start, forbidding_payers=forbidding)


def patients_by_id(ids: Iterable[int]) -> dict[int, Patient]:
    ids = list(ids) or [-1]
    return {p.id: p for p in db.session.scalars(
        select(Patient).where(Patient.id.in_(ids)).options(selectinload(Patient.payer)))}


def classified_by_dos(program: Program, patient_id: int, first: date, last: date) -> dict[date, list[Absence]]:
    """The patient's absences by date of service (for the readiness page)."""
    out: dict[date, list[Absence]] = {}
    for a in absences(load_rows(program, first, last, patient_ids=[patient_id])):
        out.setdefault(a.dos, []).append(a)
    return out


@dataclass(frozen=True)
class DayCounts:
    """The reconciliation board's absence counts for one day."""

    classified: int
    unclassified: int
    by_code: dict

    @property
    def total(self) -> int:
        return self.classified + self.unclassified


def day_counts(program: Program, day: date) -> DayCounts:
    from portal.rules.no_shows import UNCLASSIFIED

    rows = absences(load_rows(program, day, day))
    by_code: dict[str, int] = {}
    for a in rows:
        by_code[a.code] = by_code.get(a.code, 0) + 1
    un = by_code.get(UNCLASSIFIED, 0)
    return DayCounts(len(rows) - un, un, by_code)
