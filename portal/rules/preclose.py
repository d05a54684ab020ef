"""What billing will say about a roster, said to the facilitator before it is too late.

Once a roster is closed it never changes: a day that falls 5 minutes under the H0015 minimum,
a group one over the payer's size limit, or a telehealth session coded without the patients'
location can then only be fixed by an archived addendum. ``preview`` runs the very claim rules
billing uses (``portal.rules.claim_lines.derive_claim_lines``) on the roster as it stands,
as if it were closed with every attendee signed (the close checklist covers signatures and
marking), and keeps the reasons a facilitator can still act on at the tablet. It never blocks
closing: care happened as it happened, and the record must say so.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Hashable, Iterable, Mapping

from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import (SCOPE_COHORT, SEVERITY_BLOCK, AttendanceFact,
                                AuthorizationFact, PatientFact, ProgramFact, SessionFact)
from portal.rules.payer_rules import RuleBook

#: Reason codes about how the session was run and recorded, in plain words for the tablet.
#: (Authorizations, diagnoses and payer files are billing's and the clinician's work, not the
#: facilitator's, and are left to the board.)
PLAIN = {
    "under_daily_minimum": "would not be billable as an IOP day: {msg}. If the group ran longer "
                           "than the times say, correct the actual times before closing.",
    "under_unit_minimum": "would not be billable: {msg}.",
    "group_over_limit": "the group is over this payer's size limit: {msg}. Every attendee "
                        "with this payer is blocked; talk to the clinical lead before closing.",
    "session_times_impossible": "the session times cannot be billed: {msg}.",
    "telehealth_location_missing": "telehealth needs where the patients were (home or "
                                   "elsewhere) for the claim's place of service.",
    "pos_conflicts_modality": "the place of service does not match how the group met: {msg}.",
    "telehealth_not_covered": "this payer does not cover video telehealth for this service.",
    "audio_only_not_covered": "this payer does not cover audio-only telehealth.",
    "mixed_modality": "{msg}.",
    "modality_unknown": "{msg}.",
    "credential_not_allowed": "{msg}.",
    "supervisor_missing": "{msg}.",
}


@dataclass(frozen=True)
class Warning:
    """One thing billing will flag: ``text`` in plain words, the ``names`` it concerns (roster
    names, in roster order), and whether it blocks billing (else it is a note)."""

    text: str
    names: tuple[str, ...]
    blocks: bool
    code: str


def preview(program: ProgramFact, patients: Iterable[PatientFact],
            sessions: Iterable[SessionFact], attendance: Iterable[AttendanceFact],
            authorizations: Iterable[AuthorizationFact], rulebook: RuleBook, *,
            session_id: Hashable, dos: date, names: Mapping[Hashable, str]) -> list[Warning]:
    """Warnings for roster ``session_id`` on ``dos``. ``names`` maps patient id -> roster name
    and gives the order. Times not yet saved are taken as scheduled."""
    def as_closed(s: SessionFact) -> SessionFact:
        if s.session_id != session_id:
            return s
        return replace(s, roster_closed=True, actual_start=s.actual_start or s.scheduled_start,
                       actual_end=s.actual_end or s.scheduled_end)

    sessions = tuple(as_closed(s) for s in sessions)
    attendance = tuple(replace(a, signed=True) if a.session_id == session_id else a
                       for a in attendance)
    lines = derive_claim_lines(program, patients, sessions, attendance, authorizations, rulebook)
    order = {pid: i for i, pid in enumerate(names)}
    grouped: dict[tuple, list] = {}
    for ln in sorted(lines, key=lambda ln: order.get(ln.patient_id, len(order))):
        if ln.dos != dos or session_id not in ln.session_ids or ln.patient_id not in names:
            continue
        for r in ln.reasons:
            template = PLAIN.get(r.code)
            if template is None:
                continue
            if r.scope == SCOPE_COHORT and r.session_id not in (None, session_id):
                continue
            text = template.format(msg=_strip_prefix(r.message))
            key = (r.code, text, r.severity)
            grouped.setdefault(key, []).append(names[ln.patient_id])
    out = [Warning(text[0].upper() + text[1:], tuple(dict.fromkeys(who)), sev == SEVERITY_BLOCK,
                   code) for (code, text, sev), who in grouped.items()]
    by_name = {n: i for i, n in enumerate(names.values())}
    out.sort(key=lambda w: (not w.blocks, by_name.get(w.names[0], 0)))
    return out


def _strip_prefix(message: str) -> str:
    """Cohort reasons start "AM IOP 2026-12-02: ..." for the board; the tablet is on that roster."""
    head, sep, rest = message.partition(": ")
    if sep and head[-10:-6].isdigit() and head[-5] == "-":
        return rest
    return message
