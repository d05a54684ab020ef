"""Per-DOS readiness for one patient, in the claim-line vocabulary.

The verdict for each date of service is the status of that DOS's ``ClaimLine`` from
``portal.rules.claim_lines.derive_claim_lines`` (one source of truth), plus the roster facts an
auditor looks at first: scheduled, attended, signed, roster closed and its archive sequence
number (DOMAIN.md §3 "What an auditor checks for each session": attendance roster, 9 CCR 9854
[S17]; start/stop times [S34][S35][S36]).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Hashable, Iterable

from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import (
    ATTENDED_STATUSES,
    AttendanceFact,
    AuthorizationFact,
    ClaimLine,
    PatientFact,
    ProgramFact,
    Reason,
    SessionFact,
)
from portal.rules.notes import DocumentationFacts
from portal.rules.payer_rules import RuleBook

VERDICT_NOT_SCHEDULED = "not_scheduled"


@dataclass(frozen=True)
class SessionStatus:
    """The patient's row on one session's roster."""

    session_id: Hashable
    cohort_name: str
    attendance_status: str
    signed: bool
    roster_closed: bool
    archive_seq: int | None


@dataclass(frozen=True)
class DosReadiness:
    """One calendar date in the requested range.

    ``verdict``: ready | blocked | no_service (on a roster, attended nothing) |
    not_scheduled (on no roster). ``signed`` is true when every attended row is signed;
    ``roster_closed`` when every roster the patient is on that day is closed.
    ``reasons`` are the claim line's reasons (blocking and warnings)."""

    dos: date
    scheduled: bool
    attended: bool
    signed: bool
    roster_closed: bool
    archive_seqs: tuple[int, ...]
    sessions: tuple[SessionStatus, ...]
    verdict: str
    reasons: tuple[Reason, ...]
    line: ClaimLine | None


def patient_readiness(
    patient_id: Hashable,
    first_dos: date,
    last_dos: date,
    program: ProgramFact,
    patients: Iterable[PatientFact],
    sessions: Iterable[SessionFact],
    attendance: Iterable[AttendanceFact],
    authorizations: Iterable[AuthorizationFact],
    rulebook: RuleBook,
    documentation: DocumentationFacts | None = None,
) -> list[DosReadiness]:
    """Readiness for every date from ``first_dos`` to ``last_dos`` inclusive.

    Pass the patient's full history (not just the range): authorization units are consumed
    from the first authorized DOS and weekly totals need the whole ISO week. Only the sessions
    this patient is on are derived, but with every patient's rows in them so group headcount
    is right. Raises ``ValueError`` if ``last_dos < first_dos``.
    """
    if last_dos < first_dos:
        raise ValueError(f"range ends {last_dos} before it starts {first_dos}")
    attendance = list(attendance)
    sessions_by_id = {s.session_id: s for s in sessions}
    mine = [a for a in attendance if a.patient_id == patient_id]
    my_sessions = {a.session_id for a in mine}
    rows = [a for a in attendance if a.session_id in my_sessions]
    wanted_patients = {a.patient_id for a in rows} | {patient_id}
    lines = derive_claim_lines(
        program,
        [p for p in patients if p.patient_id in wanted_patients],
        [sessions_by_id[sid] for sid in my_sessions if sid in sessions_by_id],
        rows,
        [au for au in authorizations if au.patient_id == patient_id],
        rulebook,
        documentation,
    )
    line_by_dos = {ln.dos: ln for ln in lines if ln.patient_id == patient_id}
    rows_by_dos: dict[date, list[AttendanceFact]] = {}
    for a in mine:
        s = sessions_by_id.get(a.session_id)
        if s is not None:
            rows_by_dos.setdefault(s.dos, []).append(a)

    out = []
    d = first_dos
    while d <= last_dos:
        day_rows = rows_by_dos.get(d, [])
        statuses = tuple(
            SessionStatus(a.session_id, sessions_by_id[a.session_id].cohort_name, a.status, a.signed,
                          sessions_by_id[a.session_id].roster_closed,
                          sessions_by_id[a.session_id].archive_seq)
            for a in sorted(day_rows, key=lambda a: _start_key(sessions_by_id[a.session_id]))
        )
        attended = [a for a in day_rows if a.status in ATTENDED_STATUSES]
        line = line_by_dos.get(d)
        out.append(DosReadiness(
            dos=d,
            scheduled=bool(day_rows),
            attended=bool(attended),
            signed=bool(attended) and all(a.signed for a in attended),
            roster_closed=bool(statuses) and all(s.roster_closed for s in statuses),
            archive_seqs=tuple(s.archive_seq for s in statuses if s.archive_seq is not None),
            sessions=statuses,
            verdict=line.status if line is not None else VERDICT_NOT_SCHEDULED,
            reasons=line.reasons if line is not None else (),
            line=line,
        ))
        d += timedelta(days=1)
    return out


def _start_key(s: SessionFact) -> float:
    t = s.actual_start or s.scheduled_start
    return t.timestamp() if t is not None else 0.0
