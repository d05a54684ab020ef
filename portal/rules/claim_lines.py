"""Claim lines: one per patient per date of service, with every reason it can't be billed.

Public entry points
- ``derive_claim_lines(program, patients, sessions, attendance, authorizations, rulebook)
  -> list[ClaimLine]`` sorted by (DOS, patient id).
- ``weekly_summary(lines, patients, rulebook) -> list[WeekSummary]``: ISO-week intensity.
- ``summarize_day(lines, sessions) -> DaySummary``: per-session counts, cohort faults once,
  dollars at risk (cents).

Cost is O(rows): facts are grouped into dicts in one pass, per-session/per-payer checks are
cached, a patient-day is worked out once per combination of rows, payer and age group (the
other patients of a cohort with the same rows get a copy), and only each patient's own DOS
list is sorted (authorization units are consumed in DOS order).

Checks and their sources (DOMAIN.md §3 "What an auditor checks", §9 "Concrete checks"):
- Cohort (scope ``cohort``, reported once per session by ``summarize_day``): roster not closed
  (program policy: a signed roster per session); session start/stop times missing or impossible
  (DC 22-A6322, 77 IAC 2060.470, NH He-W 513.10 [S34][S35][S36]); attended headcount over the
  payer's group size limit (§9.9: 25 TAC 448.901 [S15] or program policy) or under its minimum
  (2: one attendee is individual service, blocked or billed without HQ per the payer file); facilitator
  credential not allowed for the code or supervised without a supervisor (§9.12: 405 IAC
  5-21.5-11 [S9], Louisiana LAC 50:XV-9303 [S10]).
- Patient: roster signature missing (§9.21 [S17]); H0015 under the daily minimum (§9.1:
  HCPCS descriptor [S1], NC SAIOP [S8]); H2019 under 8 minutes (§9.6 [S19][S20]);
  authorization missing / expired / units exhausted (§9.16 [S6][S13][S115]; units are consumed
  only by lines that are otherwise billable, in DOS order); IOP on a PHP/residential date
  (§9.5: BCBS NC [S110]); a value the 837P cannot carry (X12 character set and separators,
  ``portal.rules.x12_fields``) or a missing subscriber address (2010BA, SBR02 = 18); diagnosis missing, or principal outside F10-F19
  as a warning (§9.24 [S112][S110]); telehealth modality vs modifier/POS (§9.34:
  CR 12427 [S28], NGS [S27], Novitas/First Coast [S29][S30]).
- Minutes are direct service time: clock time minus the session's recorded breaks (Virginia
  12VAC30-130-5090 [S5]: "three service hours per service day").
- Week (warning unless ``weekly.blocking``; then under-floor weeks block after
  ``allowed_under_floor_weeks`` consecutive step-down weeks): ISO-week floor/cap and service
  days (§9.2, §9.3: SAMHSA TIP 47 [S4], 12VAC30-130-5090 [S5], NC CCP 8A-12 [S7], Aetna [S39]).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date
from typing import Hashable, Iterable, Sequence

from portal.gc_pause import with_collection_paused
from portal.rules.facts import (
    ATTENDED_STATUSES,
    SCOPE_COHORT,
    SCOPE_PATIENT,
    SEVERITY_BLOCK,
    SEVERITY_HOLD,
    SEVERITY_WARNING,
    STATUS_BLOCKED,
    STATUS_HELD,
    STATUS_NO_SERVICE,
    STATUS_READY,
    WHO_ADMIN,
    WHO_BILLING,
    WHO_CLINICIAN,
    WHO_FACILITATOR,
    AttendanceFact,
    AuthorizationFact,
    ClaimLine,
    PatientFact,
    ProgramFact,
    Reason,
    SessionFact,
    check_fields,
    frozen_new_unchecked,
)
from portal.rules.authorizations import (APPROVED_STATES, DENIED_STATES, HOLDING_STATES,
                                         STATE_LABELS, week_of)
from portal.rules.notes import (DocumentationFacts, DocumentationIndex, ReviewInterval,
                                documentation_reasons)
from portal.rules.payer_rules import NoRulesInForceError, RuleBook, RuleVersion, UnknownPayerError
from portal.rules.units import elapsed_minutes, to_utc, units_for_minutes
from portal.rules.x12_fields import address_missing, field_problems, problem

#: A session longer than this is a data-entry error, not a group (§9.18 duration check).
MAX_SESSION_MINUTES = 12 * 60
_SUD_DX = re.compile(r"F1[0-9]")
#: X12 SV101 carries at most four modifiers.
MAX_MODIFIERS = 4


@lru_cache(maxsize=1024)
def split_credentials(text: str | None) -> frozenset[str]:
    """"LPC, LCADC" -> {"LPC", "LCADC"}; case-insensitive, periods dropped ("Ph.D." -> PHD)."""
    if not text:
        return frozenset()
    parts = text.replace("/", ",").replace(";", ",").split(",")
    return frozenset(p.strip().upper().replace(".", "") for p in parts if p.strip())


# ----------------------------------------------------------------------------------------
# Session-level facts
# ----------------------------------------------------------------------------------------

@dataclass
class _SessionInfo:
    session: SessionFact
    start_utc: object = None
    end_utc: object = None
    faults: list[Reason] = field(default_factory=list)  # payer-independent cohort faults
    attended_count: int = 0
    neg_start: float = 0  # -(start as POSIX seconds): ranks groups, earliest first
    # A row attended for the whole session (no arrival or departure time, the usual case):
    # its interval, minutes and break minutes, worked out once per session, not per row.
    whole: tuple | None = None
    whole_minutes: int = 0
    whole_breaks: int = 0


def _session_info(s: SessionFact) -> _SessionInfo:
    info = _SessionInfo(s)
    sid = s.session_id
    if not s.roster_closed:
        info.faults.append(Reason(
            "roster_not_closed",
            f"{s.cohort_name} {s.dos.isoformat()}: roster is not closed and archived",
            WHO_FACILITATOR, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    if s.archive_differs is not None:
        info.faults.append(Reason(
            "record_differs_from_archive",
            f"{s.cohort_name} {s.dos.isoformat()}: record differs from archive entry #{s.archive_differs}",
            WHO_ADMIN, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    if s.actual_start is None or s.actual_end is None:
        info.faults.append(Reason(
            "session_times_missing",
            f"{s.cohort_name} {s.dos.isoformat()}: actual start and end times are not recorded",
            WHO_FACILITATOR, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    else:
        minutes = elapsed_minutes(s.actual_start, s.actual_end)
        if minutes <= 0 or minutes > MAX_SESSION_MINUTES:
            info.faults.append(Reason(
                "session_times_impossible",
                f"{s.cohort_name} {s.dos.isoformat()}: actual times give {minutes} min "
                f"(must be 1..{MAX_SESSION_MINUTES})",
                WHO_FACILITATOR, SCOPE_COHORT, SEVERITY_BLOCK, sid))
        else:
            info.start_utc, info.end_utc = to_utc(s.actual_start), to_utc(s.actual_end)
            info.neg_start = -info.start_utc.timestamp()
            info.whole = (info.start_utc, info.end_utc)
            info.whole_minutes = int((info.end_utc - info.start_utc).total_seconds() // 60)
            info.whole_breaks = _breaks_within(info, info.whole_minutes)
    return info


def _cohort_payer_faults(info: _SessionInfo, rules: RuleVersion, code: str) -> list[Reason]:
    """Faults that depend on the payer's rules: group size and rendering credential."""
    s, out = info.session, []
    sid = s.session_id
    headcount = max(info.attended_count, s.headcount_present or 0)
    if rules.group_size_limit is not None and s.is_group and headcount > rules.group_size_limit:
        out.append(Reason(
            "group_over_limit",
            f"{s.cohort_name} {s.dos.isoformat()}: {headcount} attended, payer limit is "
            f"{rules.group_size_limit}",
            WHO_CLINICIAN, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    if s.is_group and headcount < rules.group_size_min and rules.group_under_min == "block":
        out.append(Reason(
            "group_under_minimum",
            f"{s.cohort_name} {s.dos.isoformat()}: {headcount} attended; a group needs at least "
            f"{rules.group_size_min} for this payer", WHO_CLINICIAN, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    code_rules = rules.code_rules(code)
    creds = split_credentials(s.facilitator_credential)
    if code_rules is not None and not (creds & code_rules.rendering_credentials):
        supervised = creds & rules.supervision.supervised_credentials
        if not supervised:
            out.append(Reason(
                "credential_not_allowed",
                f"{s.cohort_name} {s.dos.isoformat()}: {s.facilitator_name} "
                f"({s.facilitator_credential or 'no credential'}) may not render {code} for this payer",
                WHO_CLINICIAN, SCOPE_COHORT, SEVERITY_BLOCK, sid))
        elif not (split_credentials(s.supervising_credential) & rules.supervision.supervisor_credentials) \
                or not s.supervising_npi:
            out.append(Reason(
                "supervisor_missing",
                f"{s.cohort_name} {s.dos.isoformat()}: {s.facilitator_name} "
                f"({s.facilitator_credential}) needs a supervising clinician with an allowed "
                f"credential and NPI",
                WHO_CLINICIAN, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    if not s.facilitator_npi and rules.rendering_provider == "facilitator":
        out.append(Reason(
            "rendering_npi_missing",
            f"{s.cohort_name} {s.dos.isoformat()}: facilitator {s.facilitator_name} has no NPI",
            WHO_BILLING, SCOPE_COHORT, SEVERITY_BLOCK, sid))
    return out


# ----------------------------------------------------------------------------------------
# Patient-day derivation
# ----------------------------------------------------------------------------------------

def _attended_interval(a: AttendanceFact, info: _SessionInfo, reasons: list[Reason]):
    """The patient's (start_utc, end_utc) inside the session, or None."""
    if info.start_utc is None:
        return None
    start, end = info.start_utc, info.end_utc
    s = info.session
    if a.status == "late" and a.arrival is None:
        reasons.append(Reason(
            "arrival_time_missing", f"{s.cohort_name}: marked late without an arrival time",
            WHO_FACILITATOR, SCOPE_PATIENT, SEVERITY_BLOCK, s.session_id))
        return None
    if a.status == "left_early" and a.departure is None:
        reasons.append(Reason(
            "departure_time_missing", f"{s.cohort_name}: marked left early without a departure time",
            WHO_FACILITATOR, SCOPE_PATIENT, SEVERITY_BLOCK, s.session_id))
        return None
    if a.arrival is not None:
        start = max(start, to_utc(a.arrival))
    if a.departure is not None:
        end = min(end, to_utc(a.departure))
    if end <= start:
        return None
    return start, end


def _union_minutes(intervals: list) -> tuple[int, bool]:
    """Real minutes covered by the union of intervals, and whether any overlapped."""
    intervals.sort()
    total_seconds, overlap = 0.0, False
    cur_s = cur_e = None
    for s, e in intervals:
        if cur_e is None or s >= cur_e:
            if cur_e is not None:
                total_seconds += (cur_e - cur_s).total_seconds()
            cur_s, cur_e = s, e
        else:
            overlap = True
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total_seconds += (cur_e - cur_s).total_seconds()
    return int(total_seconds // 60), overlap


@dataclass(slots=True)
class _Draft:
    """Mutable line while the derivation runs; frozen into ``ClaimLine`` at the end."""

    patient: PatientFact
    dos: date
    code: str = ""
    units: int = 0
    modifiers: tuple[str, ...] = ()
    pos: str = ""
    rendering_npi: str | None = None
    rendering_name: str = ""
    rendering_credential: str = ""
    supervising_npi: str | None = None
    supervising_name: str = ""
    authorization_number: str | None = None
    charge_cents: int = 0
    minutes: int = 0
    attended: bool = False
    reasons: list[Reason] = field(default_factory=list)
    session_ids: tuple = ()
    modality: str = "in_person"
    rules: RuleVersion | None = None
    payer_kind: str | None = None

    def freeze(self) -> ClaimLine:
        reasons = tuple(self.reasons)
        if not self.attended:
            status = STATUS_NO_SERVICE
        else:  # blocked if any reason blocks, else held if any holds, else ready
            status = STATUS_READY
            for r in reasons:
                if r.severity == SEVERITY_BLOCK:
                    status = STATUS_BLOCKED
                    break
                if r.severity == SEVERITY_HOLD:
                    status = STATUS_HELD
        return frozen_new_unchecked(ClaimLine, {
            "patient_id": self.patient.patient_id, "dos": self.dos,
            "payer_key": self.patient.payer_key, "code": self.code, "units": self.units,
            "modifiers": self.modifiers, "pos": self.pos, "rendering_npi": self.rendering_npi,
            "rendering_name": self.rendering_name,
            "rendering_credential": self.rendering_credential,
            "supervising_npi": self.supervising_npi, "supervising_name": self.supervising_name,
            "authorization_number": self.authorization_number,
            "charge_cents": self.charge_cents, "minutes_attended": self.minutes,
            "status": status, "reasons": reasons, "session_ids": self.session_ids,
            "modality": self.modality})


def _choose_code(d: _Draft, rules: RuleVersion) -> None:
    """Pick the first code in ``bill_codes`` whose minimum the day meets; set units/charge."""
    adolescent = d.patient.age_group == "adolescent"
    failures: list[Reason] = []
    for code in rules.bill_codes:
        if code == "H0015":
            r = rules.h0015
            minimum = r.adolescent_min_daily_minutes if adolescent else r.min_daily_minutes
            if d.minutes >= minimum:
                d.code, d.units, d.charge_cents = code, r.units_per_day, r.units_per_day * r.rate_cents
                break
            failures.append(Reason(
                "under_daily_minimum",
                f"attended {d.minutes} min; H0015 needs {minimum} min on the date of service",
                WHO_BILLING))
        elif code == rules.per_15_code:
            r = rules.h2019
            units = units_for_minutes(d.minutes, r.rounding, r.unit_minutes)
            if units > 0:
                if r.daily_unit_cap is not None and units > r.daily_unit_cap:
                    d.reasons.append(Reason(
                        "daily_unit_cap",
                        f"{units} {code} units from {d.minutes} min capped at {r.daily_unit_cap}/day",
                        WHO_BILLING, severity=SEVERITY_WARNING))
                    units = r.daily_unit_cap
                d.code, d.units, d.charge_cents = code, units, units * r.rate_cents
                break
            failures.append(Reason(
                "under_unit_minimum",
                f"attended {d.minutes} min; one {code} unit needs {r.unit_minutes // 2 + 1} min",
                WHO_BILLING))
    if d.code:
        for f in failures:  # a fallback code was billed: keep the first code's miss visible
            d.reasons.append(Reason(f.code, f.message + f" (billed {d.code} instead)",
                                    f.who_must_act, f.scope, SEVERITY_WARNING))
    else:
        first = rules.bill_codes[0]
        r = rules.code_rules(first)
        units = r.units_per_day if first == "H0015" else 0
        d.code, d.units, d.charge_cents = first, units, units * r.rate_cents
        d.reasons.extend(failures)


def _apply_coding(d: _Draft, rules: RuleVersion, primary: SessionFact, modalities: set[str]) -> None:
    """Modifiers and POS from the payer's rules and the session's modality (§2, §9.34)."""
    tele = rules.telehealth
    mods = list(rules.program_modifiers)
    if primary.is_group and rules.group_modifier:
        mods.append(rules.group_modifier)
    sid = primary.session_id
    if len(modalities) > 1:
        d.reasons.append(Reason(
            "mixed_modality",
            f"groups on this date were {', '.join(sorted(modalities))}; one line carries one POS",
            WHO_BILLING, SCOPE_PATIENT, SEVERITY_BLOCK, sid))
    modality = primary.modality
    d.modality = modality
    telehealth_pos = {tele.pos_home, tele.pos_other}
    if modality == "in_person":
        d.pos = primary.pos_override or rules.in_person_pos
        if d.pos in telehealth_pos:
            d.reasons.append(Reason(
                "pos_conflicts_modality",
                f"in-person group coded with telehealth POS {d.pos}", WHO_BILLING,
                SCOPE_COHORT, SEVERITY_BLOCK, sid))
    else:
        if primary.patient_location not in ("home", "other"):
            d.reasons.append(Reason(
                "telehealth_location_missing",
                "telehealth session without the patient's location (home or other) for POS 10/02",
                WHO_FACILITATOR, SCOPE_PATIENT, SEVERITY_BLOCK, sid))
        expected_pos = tele.pos_home if primary.patient_location == "home" else tele.pos_other
        d.pos = primary.pos_override or expected_pos
        if d.pos != expected_pos:
            d.reasons.append(Reason(
                "pos_conflicts_modality",
                f"telehealth with patient at {primary.patient_location} needs POS {expected_pos}, "
                f"not {d.pos}", WHO_BILLING, SCOPE_COHORT, SEVERITY_BLOCK, sid))
        if modality == "video":
            if not tele.video_allowed:
                d.reasons.append(Reason(
                    "telehealth_not_covered", "payer does not cover video telehealth for this code",
                    WHO_BILLING, SCOPE_PATIENT, SEVERITY_BLOCK, sid))
            if tele.video_modifier:
                mods.append(tele.video_modifier)
        elif modality == "audio_only":
            if not tele.audio_only_allowed:
                d.reasons.append(Reason(
                    "audio_only_not_covered", "payer does not cover audio-only telehealth",
                    WHO_BILLING, SCOPE_PATIENT, SEVERITY_BLOCK, sid))
            if tele.audio_only_modifier:
                mods.append(tele.audio_only_modifier)
        else:
            d.reasons.append(Reason(
                "modality_unknown", f"unknown modality {modality!r}", WHO_FACILITATOR,
                SCOPE_COHORT, SEVERITY_BLOCK, sid))
    seen: list[str] = []
    for m in mods:
        if m not in seen:
            seen.append(m)
    if len(seen) > MAX_MODIFIERS:
        d.reasons.append(Reason(
            "too_many_modifiers", f"{len(seen)} modifiers; a line carries at most {MAX_MODIFIERS}",
            WHO_BILLING))
        seen = seen[:MAX_MODIFIERS]
    d.modifiers = tuple(seen)


def _auths_for(auths: Sequence[AuthorizationFact], code: str, cache: dict) -> tuple[list, list]:
    """(requests for ``code``, the approved ones in draining order: earliest start, then end,
    then number), once per patient and code; ``cache`` lives for one derivation."""
    key = (id(auths), code)
    found = cache.get(key)
    if found is None:
        requested = [a for a in auths if a.code is None or a.code == code]
        matching = sorted((a for a in requested if a.status in APPROVED_STATES),
                          key=lambda a: (a.start, a.end, a.number))
        found = cache[key] = (requested, matching)
    return found


def _apply_authorization(d: _Draft, rules: RuleVersion, auths: Sequence[AuthorizationFact],
                         used: dict, cache: dict) -> None:
    """Attach the authorization covering the DOS and consume its units in DOS order (§9.16),
    in total and in the payer-week bucket, only for a line with no other blocking reason: a
    blocked day is not billed, so it must not use up the units a billable day needs. A day only
    a pending request covers is held."""
    requested, matching = _auths_for(auths, d.code, cache)
    dos = d.dos
    # in draining order, so overlapping auths drain earliest-starting first
    covering = [a for a in matching if a.start <= dos <= a.end]
    if not covering and rules.authorization_required:
        for a in requested:
            if a.start <= d.dos <= a.end and a.status in HOLDING_STATES | DENIED_STATES:
                label = STATE_LABELS[a.status].lower()
                if a.status in HOLDING_STATES:
                    d.reasons.append(Reason(
                        "authorization_pending", f"held, authorization pending: request "
                        f"{a.number} is {label}", WHO_BILLING, severity=SEVERITY_HOLD))
                else:
                    d.reasons.append(Reason(
                        "authorization_denied", f"authorization request {a.number} was {label}",
                        WHO_BILLING))
                return
    if covering:
        # earliest-starting auth with units left, so overlapping auths drain in order
        chosen = next((a for a in covering if used.get(id(a), 0) + d.units <= a.units_authorized),
                      covering[0])
        d.authorization_number = chosen.number
        why = None
        if d.payer_kind != "self_pay":
            key = ("x12", chosen.number)  # once per authorization number
            why = cache[key] if key in cache else cache.setdefault(key, problem(chosen.number, "id"))
        if why:
            d.reasons.append(Reason(
                "x12_invalid_value", f"authorization number: {why}; correct it at the source "
                "(census or setup)", WHO_BILLING))
        if d.attended and d.units and not any(r.severity == SEVERITY_BLOCK for r in d.reasons):
            used[id(chosen)] = used.get(id(chosen), 0) + d.units
            if used[id(chosen)] > chosen.units_authorized and rules.authorization_required:
                d.reasons.append(Reason(
                    "authorization_units_exhausted",
                    f"authorization {chosen.number}: {used[id(chosen)]} units used through "
                    f"{d.dos.isoformat()}, {chosen.units_authorized} authorized",
                    WHO_BILLING))
            if chosen.units_per_week is not None:
                week = week_of(d.dos, chosen.week_start)
                key = (id(chosen), week)
                used[key] = used.get(key, 0) + d.units
                if used[key] > chosen.units_per_week and rules.authorization_required:
                    d.reasons.append(Reason(
                        "authorization_week_units_exhausted",
                        f"authorization {chosen.number}: {used[key]} units in the payer week "
                        f"from {week.isoformat()}, {chosen.units_per_week} per week authorized",
                        WHO_BILLING))
        return
    if not rules.authorization_required:
        return
    if any(a.end < d.dos for a in matching):
        last = max((a for a in matching if a.end < d.dos), key=lambda a: a.end)
        d.reasons.append(Reason(
            "authorization_expired",
            f"authorization {last.number} ended {last.end.isoformat()}; no authorization covers "
            f"{d.dos.isoformat()}", WHO_BILLING))
    elif matching:
        first = min(matching, key=lambda a: a.start)
        d.reasons.append(Reason(
            "authorization_not_started",
            f"authorization {first.number} starts {first.start.isoformat()}", WHO_BILLING))
    else:
        d.reasons.append(Reason(
            "authorization_missing", f"no {d.code} authorization on file for this payer",
            WHO_BILLING))


@with_collection_paused  # ~140,000 acyclic drafts and lines per program-year: portal/gc_pause.py
def derive_claim_lines(
    program: ProgramFact,
    patients: Iterable[PatientFact],
    sessions: Iterable[SessionFact],
    attendance: Iterable[AttendanceFact],
    authorizations: Iterable[AuthorizationFact],
    rulebook: RuleBook,
    documentation: DocumentationFacts | None = None,
) -> list[ClaimLine]:
    """One ``ClaimLine`` per (patient, DOS) that has at least one attendance row.

    With ``documentation`` (encounter notes and treatment plans, ``portal.rules.notes``),
    every attended DOS also gets the note and plan reasons (clinician's to fix).

    Lines with no attended group are ``no_service``; otherwise ``ready`` unless a reason of
    severity ``block`` applies. Minutes are the union of attended intervals over all groups
    of the DOS in real (UTC) time, minus recorded breaks. Authorization units are consumed in
    DOS order only by lines that are otherwise billable (no blocking reason but the
    authorization's own), so a day blocked for another reason never makes a later billable
    day "units exhausted"; fixing the blocked day re-derives the order.

    Raises ``ValueError`` when an attendance row names an unknown session or patient, and
    ``NaiveDatetimeError`` for a naive datetime.
    """
    patients_by_id = {p.patient_id: p for p in patients}
    infos: dict[Hashable, _SessionInfo] = {s.session_id: _session_info(s) for s in sessions}

    rows_by_patient_day: dict[tuple, list[AttendanceFact]] = defaultdict(list)
    for a in attendance:
        info = infos.get(a.session_id)
        if info is None:
            raise ValueError(f"attendance row for unknown session {a.session_id!r}")
        if a.patient_id not in patients_by_id:
            raise ValueError(f"attendance row for unknown patient {a.patient_id!r}")
        if a.status in ATTENDED_STATUSES:
            info.attended_count += 1
        rows_by_patient_day[(a.patient_id, info.session.dos)].append(a)

    auths_by_patient: dict[Hashable, list[AuthorizationFact]] = defaultdict(list)
    for au in authorizations:
        auths_by_patient[au.patient_id].append(au)

    days_by_patient: dict[Hashable, list[date]] = defaultdict(list)
    for pid, dos in rows_by_patient_day:
        days_by_patient[pid].append(dos)

    cohort_cache: dict[tuple, list[Reason]] = {}
    drafts: list[_Draft] = []
    doc_index = documentation.index() if documentation is not None else None
    doc_cache: dict[int, tuple] = {}  # id(rules) -> signing days, day kind, review interval
    for pid, days in days_by_patient.items():
        patient = patients_by_id[pid]
        attended_days: list[date] = []
        for dos in sorted(days):
            d = _derive_day(program, patient, dos, rows_by_patient_day[(pid, dos)], infos,
                            rulebook, cohort_cache)
            # Authorizations are applied last (below), so only otherwise billable lines use units.
            if d.attended:
                attended_days.append(dos)
            drafts.append(d)
        if doc_index is not None:
            for d in drafts[len(drafts) - len(days):]:
                if d.attended:
                    _apply_documentation(d, doc_index, attended_days, doc_cache)

    _apply_weekly(drafts, rulebook)
    # drafts are grouped by patient and in DOS order within each patient (built that way above)
    used_units: dict[int, int] = {}
    x12_cache: dict[int, list[Reason]] = {}
    auth_cache: dict[tuple, tuple] = {}
    no_auths: list[AuthorizationFact] = []
    for d in drafts:
        if d.rules is not None and d.attended:
            _apply_x12_fields(d, x12_cache)
        if d.rules is not None and d.code:
            _apply_authorization(d, d.rules, auths_by_patient.get(d.patient.patient_id, no_auths),
                                 used_units, auth_cache)
    label = {pid: str(pid) for pid in days_by_patient}
    drafts.sort(key=lambda d: (d.dos, label[d.patient.patient_id]))
    lines = [d.freeze() for d in drafts]
    if lines:  # every line is made from the one dict literal in _Draft.freeze: check it once
        check_fields(ClaimLine, lines[0].__dict__)
    return lines


def _apply_documentation(d: _Draft, index: DocumentationIndex, attended_days: list[date],
                         cache: dict) -> None:
    rules = d.rules
    found = cache.get(id(rules))
    if found is None:  # the payer version's signing deadline and review interval, once each
        signing = rules.note_signing if rules is not None else None
        plan = rules.plan if rules is not None else None
        found = cache[id(rules)] = (
            signing.days if signing else 3, signing.day_kind if signing else "business",
            ReviewInterval(plan.review_days, plan.review_sessions, plan.review_combine)
            if plan else None)
    d.reasons.extend(documentation_reasons(index, d.patient.patient_id, d.dos, d.session_ids,
                                           attended_days, *found))


def _derive_day(program: ProgramFact, patient: PatientFact, dos: date, rows: list[AttendanceFact],
                infos: dict, rulebook: RuleBook, cache: dict) -> _Draft:
    # Patients of a cohort with the same payer (and age group) whose rows say the same thing
    # (same groups, statuses, times, signatures) get the same day, reasons in the same order:
    # it is worked out once per such combination (``cache`` lives for one derivation) and
    # copied; only the diagnosis and other-level checks below read the rest of the patient.
    key = ("patient-day", patient.payer_key, patient.age_group,
           tuple([(a.session_id, a.status, a.arrival, a.departure, a.signed, a.archive_differs)
                  for a in rows]))
    parts = cache.get(key)
    if parts is None:
        parts = cache[key] = _day_parts(program, patient, dos, rows, infos, rulebook, cache)
    d = _Draft(patient, dos)
    (d.session_ids, d.attended, d.minutes, d.code, d.units, d.charge_cents, d.modifiers, d.pos,
     d.modality, d.rendering_npi, d.rendering_name, d.rendering_credential, d.supervising_npi,
     d.supervising_name, d.rules, d.payer_kind, reasons) = parts
    d.reasons = list(reasons)
    rules = d.rules
    if rules is None:  # no service, or no payer rules: the payer checks below do not apply
        return d

    if not patient.diagnoses:
        d.reasons.append(Reason("diagnosis_missing", "no ICD-10 diagnosis on file for the claim",
                                WHO_CLINICIAN))
    elif not _SUD_DX.match(patient.diagnoses[0].upper()):
        # §9.24: principal SUD diagnosis F10-F19 [S112]; payers may accept MH codes [S110]
        d.reasons.append(Reason(
            "principal_not_sud", f"principal diagnosis {patient.diagnoses[0]} is outside F10-F19",
            WHO_CLINICIAN, severity=SEVERITY_WARNING))

    for level in sorted(rules.exclusive_levels) if patient.other_level_days else ():
        if dos in patient.other_level_days.get(level, ()):
            d.reasons.append(Reason(
                "exclusive_level_same_day",
                f"patient is recorded in {level} on {dos.isoformat()}; IOP may not be billed the same date",
                WHO_BILLING))
    return d


def _day_parts(program: ProgramFact, patient: PatientFact, dos: date, rows: list[AttendanceFact],
               infos: dict, rulebook: RuleBook, cohort_cache: dict) -> tuple:
    """A patient-day's fields and reasons worked out from the day's rows and groups and the
    patient's payer and age group only (the caller's cache key), in the order ``_derive_day``
    copies them."""
    d = _Draft(patient, dos)
    _derive_day_parts(d, program, patient, dos, rows, infos, rulebook, cohort_cache)
    return (d.session_ids, d.attended, d.minutes, d.code, d.units, d.charge_cents, d.modifiers,
            d.pos, d.modality, d.rendering_npi, d.rendering_name, d.rendering_credential,
            d.supervising_npi, d.supervising_name, d.rules, d.payer_kind, tuple(d.reasons))


def _derive_day_parts(d: _Draft, program: ProgramFact, patient: PatientFact, dos: date,
                      rows: list[AttendanceFact], infos: dict, rulebook: RuleBook,
                      cohort_cache: dict) -> None:
    attended_rows = []
    for a in rows:
        if a.status in ATTENDED_STATUSES:
            attended_rows.append(a)
    chosen = attended_rows or rows
    d.session_ids = ((chosen[0].session_id,) if len(chosen) == 1
                     else tuple(dict.fromkeys(a.session_id for a in chosen)))
    if not attended_rows:
        return
    d.attended = True

    per_session_minutes: dict[Hashable, int] = {}
    intervals = []
    break_minutes = 0
    for a in attended_rows:
        info = infos[a.session_id]
        if a.arrival is None and a.departure is None and info.whole is not None \
                and a.status != "late" and a.status != "left_early":
            iv, here, breaks = info.whole, info.whole_minutes, info.whole_breaks
        else:
            iv = _attended_interval(a, info, d.reasons)
            if iv is not None:
                here = int((iv[1] - iv[0]).total_seconds() // 60)
                breaks = _breaks_within(info, here)
        if iv is not None:
            intervals.append(iv)
            break_minutes += breaks
            per_session_minutes[a.session_id] = per_session_minutes.get(a.session_id, 0) + here - breaks
        if a.archive_differs is not None:
            d.reasons.append(Reason(
                "record_differs_from_archive",
                f"{info.session.cohort_name} {dos.isoformat()}: record differs from archive entry "
                f"#{a.archive_differs}", WHO_ADMIN, SCOPE_PATIENT, SEVERITY_BLOCK, a.session_id))
        if not a.signed:
            s = info.session
            d.reasons.append(Reason(
                "patient_not_signed",
                f"{s.cohort_name} {dos.isoformat()}: patient attended but did not sign the roster",
                WHO_FACILITATOR, SCOPE_PATIENT, SEVERITY_BLOCK, s.session_id))
    d.minutes, overlapped = _union_minutes(intervals)
    d.minutes = max(0, d.minutes - break_minutes)
    if overlapped:
        d.reasons.append(Reason(
            "overlapping_groups", "attended groups overlap in time; overlap counted once",
            WHO_FACILITATOR, severity=SEVERITY_WARNING))

    # the group with the most minutes (then earliest start) supplies rendering provider & POS
    if len(d.session_ids) == 1:
        primary_info = infos[d.session_ids[0]]
    else:
        primary_info = max(
            (infos[sid] for sid in d.session_ids),
            key=lambda i: (per_session_minutes.get(i.session.session_id, 0), i.neg_start),
        )
    primary = primary_info.session
    d.rendering_npi = primary.facilitator_npi
    d.rendering_name = primary.facilitator_name
    d.rendering_credential = primary.facilitator_credential

    if patient.payer_key is None:
        d.reasons.append(Reason("payer_unknown", "patient's payer matches no payer rule file",
                                WHO_BILLING))
        _add_cohort_faults(d, infos, None, "", cohort_cache)
        return
    try:
        rules = rulebook.rules_for(patient.payer_key, dos)
    except (UnknownPayerError, NoRulesInForceError) as exc:
        d.reasons.append(Reason("no_rules_in_force", str(exc), WHO_BILLING))
        _add_cohort_faults(d, infos, None, "", cohort_cache)
        return
    d.rules = rules
    d.payer_kind = rulebook.payer(patient.payer_key).kind

    _choose_code(d, rules)
    _apply_coding(d, rules, primary, {infos[sid].session.modality for sid in d.session_ids})
    _add_cohort_faults(d, infos, rules, patient.payer_key, cohort_cache)
    headcount = max(primary_info.attended_count, primary.headcount_present or 0)
    if primary.is_group and headcount < rules.group_size_min and rules.group_under_min == "individual":
        d.modifiers = tuple(m for m in d.modifiers if m != rules.group_modifier)
        d.reasons.append(Reason(
            "group_under_minimum",
            f"{primary.cohort_name}: {headcount} attended, under this payer's group minimum of "
            f"{rules.group_size_min}; billed as individual service (no group modifier)",
            WHO_BILLING, SCOPE_PATIENT, SEVERITY_WARNING, primary.session_id))

    creds = split_credentials(primary.facilitator_credential)
    code_rules = rules.code_rules(d.code)
    if code_rules is not None and not (creds & code_rules.rendering_credentials) \
            and creds & rules.supervision.supervised_credentials:
        d.supervising_npi = primary.supervising_npi
        d.supervising_name = primary.supervising_name
    _apply_rendering(d, rules, primary, program)


def _breaks_within(info: _SessionInfo, attended_minutes: int) -> int:
    """Break minutes inside the part of the session the patient attended: all of them for the
    whole session, a proportional share (rounded up, so service time is never overstated) for
    part of it."""
    s = info.session
    if not s.break_minutes or info.start_utc is None:
        return 0
    session_minutes = int((info.end_utc - info.start_utc).total_seconds() // 60)
    if attended_minutes >= session_minutes:
        return min(s.break_minutes, attended_minutes)
    return min(attended_minutes, -(-s.break_minutes * attended_minutes // max(session_minutes, 1)))


def _apply_rendering(d: _Draft, rules: RuleVersion, primary: SessionFact,
                     program: ProgramFact) -> None:
    """Rendering provider per the payer file: the facilitator (default), the facilitator's
    supervisor, or none (agency-only billing: the billing provider is the rendering provider,
    so the 837P omits loop 2310B)."""
    if rules.rendering_provider == "none":
        d.rendering_npi, d.rendering_name, d.rendering_credential = None, "", ""
        d.supervising_npi, d.supervising_name = None, ""
    elif rules.rendering_provider == "supervisor":
        if not primary.supervising_npi:
            d.reasons.append(Reason(
                "rendering_supervisor_missing",
                f"{primary.cohort_name}: this payer bills the supervisor as rendering provider; "
                f"{primary.facilitator_name} has no supervisor with an NPI on file",
                WHO_BILLING, SCOPE_COHORT, SEVERITY_BLOCK, primary.session_id))
        d.rendering_npi, d.rendering_name = primary.supervising_npi, primary.supervising_name
        d.rendering_credential = primary.supervising_credential or ""
        d.supervising_npi, d.supervising_name = None, ""
    if rules.send_taxonomy and not program.taxonomy:
        d.reasons.append(Reason(
            "taxonomy_missing", "this payer requires the program's taxonomy code (PRV*BI); "
            "add it in the program setup", WHO_BILLING))


def _apply_x12_fields(d: _Draft, cache: dict) -> None:
    """Values an 837P cannot carry, and the subscriber address it requires (2010BA N3/N4 when
    the patient is the subscriber, SBR02 = 18). Self-pay days are never sent, so not checked.
    The reasons depend on the patient only: computed once per patient (``cache``, keyed by
    the PatientFact's identity, lives for one derivation)."""
    if d.payer_kind == "self_pay":
        return
    reasons = cache.get(id(d.patient))
    if reasons is None:
        reasons = [Reason("x12_invalid_value",
                          f"{label}: {why}; correct it at the source (census or setup)",
                          WHO_BILLING) for label, why in field_problems(d.patient, None)]
        missing = address_missing(d.patient)
        if missing:
            reasons.append(Reason(
                "subscriber_address_missing",
                f"subscriber address missing ({', '.join(missing)}): the 837P requires the "
                "patient's address when the patient is the subscriber", WHO_BILLING))
        cache[id(d.patient)] = reasons
    d.reasons.extend(reasons)


def _add_cohort_faults(d: _Draft, infos: dict, rules: RuleVersion | None, payer_key: str,
                       cache: dict) -> None:
    """The cohort faults of the day's sessions: payer-independent ones and, with ``rules``,
    the payer's. Cached per session (``cache``) and per combination of sessions, payer version
    and code (the same for every patient of those groups that day)."""
    day_key = ("day", d.session_ids, payer_key,
               rules.effective_from if rules is not None else None, d.code)
    faults = cache.get(day_key)
    if faults is None:
        faults = []
        for sid in d.session_ids:
            info = infos[sid]
            faults.extend(info.faults)
            if rules is None:
                continue
            key = (sid, payer_key, rules.effective_from, d.code)
            payer_faults = cache.get(key)
            if payer_faults is None:
                payer_faults = cache[key] = _cohort_payer_faults(info, rules, d.code)
            faults.extend(payer_faults)
        cache[day_key] = faults
    d.reasons.extend(faults)


# ----------------------------------------------------------------------------------------
# Weekly intensity
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WeekSummary:
    """One patient's ISO week: attended minutes, distinct service days and the reasons
    (warnings unless the payer's ``weekly.blocking``). ``floor_minutes``/``cap_minutes`` are
    from the payer version in force on the week's last DOS."""

    patient_id: Hashable
    iso_year: int
    iso_week: int
    minutes: int
    service_days: int
    floor_minutes: int | None
    cap_minutes: int | None
    min_service_days: int | None
    reasons: tuple[Reason, ...]


def _is_under(minutes: int, days: int, rules: RuleVersion, adolescent: bool) -> bool:
    wk = rules.weekly
    floor = wk.adolescent_floor_minutes if adolescent else wk.adult_floor_minutes
    return minutes < floor or days < wk.min_service_days


def _week_reasons(minutes: int, days: int, rules: RuleVersion, adolescent: bool,
                  label: str, under_run: int = 1) -> list[Reason]:
    """``under_run``: this week's place in a run of consecutive under-floor weeks (1 = the
    first). With ``weekly.blocking``, the first ``allowed_under_floor_weeks`` of a run are
    step-down weeks (warnings); later ones block. A cap overrun blocks at once."""
    wk = rules.weekly
    severity = SEVERITY_BLOCK if wk.blocking else SEVERITY_WARNING
    under_severity = severity
    note = ""
    if wk.blocking and under_run <= wk.allowed_under_floor_weeks:
        under_severity = SEVERITY_WARNING
        note = (f" (step-down week {under_run} of {wk.allowed_under_floor_weeks} this payer "
                "allows in a row)")
    elif wk.blocking and wk.allowed_under_floor_weeks:
        note = (f" ({under_run} under-floor weeks in a row; this payer allows "
                f"{wk.allowed_under_floor_weeks})")
    floor = wk.adolescent_floor_minutes if adolescent else wk.adult_floor_minutes
    out = []
    if minutes < floor:
        out.append(Reason("week_under_floor",
                          f"ISO week {label}: {minutes} min attended, floor is {floor} min{note}",
                          WHO_CLINICIAN, SCOPE_PATIENT, under_severity))
    if wk.cap_minutes is not None and minutes > wk.cap_minutes:
        out.append(Reason("week_over_cap",
                          f"ISO week {label}: {minutes} min attended, cap is {wk.cap_minutes} min",
                          WHO_CLINICIAN, SCOPE_PATIENT, severity))
    if days < wk.min_service_days:
        out.append(Reason("week_too_few_days",
                          f"ISO week {label}: {days} service days, needs {wk.min_service_days}{note}",
                          WHO_CLINICIAN, SCOPE_PATIENT, under_severity))
    return out


def _under_runs(weeks: dict, rules_of, minutes_of, days_of, adolescent_of) -> dict[tuple, int]:
    """For each (patient, iso_year, iso_week) key: its place in the run of consecutive
    under-floor ISO weeks it belongs to (0 when the week is not under the floor). A week with
    no attendance ends a run (no service at all is not a step-down week)."""
    out: dict[tuple, int] = {}
    by_patient: dict[Hashable, list[tuple]] = defaultdict(list)
    for key in weeks:
        by_patient[key[0]].append(key)
    for pid, keys in by_patient.items():
        run, prev = 0, None
        for key in sorted(keys, key=lambda k: (k[1], k[2])):
            items = weeks[key]
            rules = rules_of(items)
            monday = date.fromisocalendar(key[1], key[2], 1)
            if rules is None or not _is_under(minutes_of(items), days_of(items), rules,
                                              adolescent_of(items)):
                run = 0
            else:
                run = run + 1 if prev is not None and (monday - prev).days == 7 and run else 1
            out[key] = run
            prev = monday
    return out


def _group_weeks(items, patient_of, dos_of):
    weeks: dict[tuple, list] = defaultdict(list)
    iso: dict[date, tuple] = {}  # a year has 366 dates at most: each one's ISO week once
    for it in items:
        dos = dos_of(it)
        yw = iso.get(dos)
        if yw is None:
            y, w, _ = dos.isocalendar()
            yw = iso[dos] = (y, w)
        weeks[(patient_of(it), *yw)].append(it)
    return weeks


def _apply_weekly(drafts: list[_Draft], rulebook: RuleBook) -> None:
    weeks = _group_weeks((d for d in drafts if d.attended), lambda d: d.patient.patient_id,
                         lambda d: d.dos)
    # per week once: its last day (whose payer version decides), minutes and service days
    totals = {id(items): (max(items, key=_dos_of), sum(d.minutes for d in items),
                          sum(1 for d in items if d.minutes > 0)) for items in weeks.values()}
    runs = _under_runs(weeks, lambda items: totals[id(items)][0].rules,
                       lambda items: totals[id(items)][1], lambda items: totals[id(items)][2],
                       lambda items: items[0].patient.age_group == "adolescent")
    for (pid, y, w), items in weeks.items():
        last, minutes, days = totals[id(items)]
        if last.rules is None:
            continue
        reasons = _week_reasons(minutes, days, last.rules, last.patient.age_group == "adolescent",
                                f"{y}-W{w:02d}", runs[(pid, y, w)] or 1)
        for d in items:
            d.reasons.extend(reasons)


def _dos_of(d: _Draft) -> date:
    return d.dos


def weekly_summary(lines: Iterable[ClaimLine], patients: Iterable[PatientFact],
                   rulebook: RuleBook) -> list[WeekSummary]:
    """ISO-week totals per patient from claim lines (attended lines only), sorted by patient
    then week. Weeks whose payer/rules are unknown have no thresholds and no reasons."""
    age = {p.patient_id: p.age_group for p in patients}
    attended = [ln for ln in lines if ln.status != STATUS_NO_SERVICE]
    weeks = _group_weeks(attended, lambda ln: ln.patient_id, lambda ln: ln.dos)

    def rules_of(items):
        last = max(items, key=lambda ln: ln.dos)
        try:
            return rulebook.rules_for(last.payer_key, last.dos) if last.payer_key else None
        except LookupError:
            return None

    def minutes_of(items):
        return sum(ln.minutes_attended for ln in items)

    def days_of(items):
        return sum(1 for ln in items if ln.minutes_attended > 0)

    runs = _under_runs(weeks, rules_of, minutes_of, days_of,
                       lambda items: age.get(items[0].patient_id) == "adolescent")
    out = []
    for (pid, y, w), items in weeks.items():
        minutes = minutes_of(items)
        days = days_of(items)
        rules = rules_of(items)
        if rules is None:
            out.append(WeekSummary(pid, y, w, minutes, days, None, None, None, ()))
            continue
        adolescent = age.get(pid) == "adolescent"
        wk = rules.weekly
        out.append(WeekSummary(
            pid, y, w, minutes, days,
            wk.adolescent_floor_minutes if adolescent else wk.adult_floor_minutes,
            wk.cap_minutes, wk.min_service_days,
            tuple(_week_reasons(minutes, days, rules, adolescent, f"{y}-W{w:02d}",
                                runs[(pid, y, w)] or 1))))
    out.sort(key=lambda s: (str(s.patient_id), s.iso_year, s.iso_week))
    return out


# ----------------------------------------------------------------------------------------
# Day summary
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionSummary:
    """Counts for one session: patients whose line touches it, by status; cohort faults of
    this session once each; ``at_risk_cents`` = charges of blocked lines touching it."""

    session_id: Hashable
    cohort_name: str
    dos: date
    patients: int
    ready: int
    blocked: int
    no_service: int
    cohort_faults: tuple[Reason, ...]
    at_risk_cents: int
    roster_closed: bool
    archive_seq: int | None


@dataclass(frozen=True)
class DaySummary:
    """``sessions`` in input order; ``cohort_faults`` deduplicated by (session, code);
    ``at_risk_cents``/``ready_cents`` count each line once even if it touches two sessions."""

    sessions: tuple[SessionSummary, ...]
    cohort_faults: tuple[Reason, ...]
    ready: int
    blocked: int
    no_service: int
    ready_cents: int
    at_risk_cents: int


def summarize_day(lines: Iterable[ClaimLine], sessions: Iterable[SessionFact]) -> DaySummary:
    """Summarize the lines that touch ``sessions`` (typically one DOS's sessions)."""
    sessions = list(sessions)
    wanted = {s.session_id for s in sessions}
    per_session: dict[Hashable, list[ClaimLine]] = defaultdict(list)
    chosen: list[ClaimLine] = []
    for ln in lines:
        touched = [sid for sid in ln.session_ids if sid in wanted]
        if touched:
            chosen.append(ln)
            for sid in touched:
                per_session[sid].append(ln)

    def faults_of(items: list[ClaimLine], sid) -> tuple[Reason, ...]:
        seen: dict[str, Reason] = {}
        for ln in items:
            for r in ln.reasons:
                if r.scope == SCOPE_COHORT and r.session_id == sid and r.code not in seen:
                    seen[r.code] = r
        return tuple(seen.values())

    summaries = []
    all_faults: list[Reason] = []
    for s in sessions:
        items = per_session.get(s.session_id, [])
        faults = faults_of(items, s.session_id)
        # a session nobody attended still shows its own faults (e.g. an open roster)
        have = {r.code for r in faults}
        faults += tuple(r for r in _session_info(s).faults if r.code not in have)
        all_faults.extend(faults)
        summaries.append(SessionSummary(
            s.session_id, s.cohort_name, s.dos, len(items),
            sum(1 for ln in items if ln.status == STATUS_READY),
            sum(1 for ln in items if ln.status == STATUS_BLOCKED),
            sum(1 for ln in items if ln.status == STATUS_NO_SERVICE),
            faults,
            sum(ln.charge_cents for ln in items if ln.status == STATUS_BLOCKED),
            s.roster_closed, s.archive_seq))
    return DaySummary(
        sessions=tuple(summaries),
        cohort_faults=tuple(all_faults),
        ready=sum(1 for ln in chosen if ln.status == STATUS_READY),
        blocked=sum(1 for ln in chosen if ln.status == STATUS_BLOCKED),
        no_service=sum(1 for ln in chosen if ln.status == STATUS_NO_SERVICE),
        ready_cents=sum(ln.charge_cents for ln in chosen if ln.status == STATUS_READY),
        at_risk_cents=sum(ln.charge_cents for ln in chosen if ln.status == STATUS_BLOCKED),
    )
