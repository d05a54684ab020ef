"""Encounter notes and treatment plans as rules: the enumerations of the note form, plan review
due dates, clone detection, attendee-name checks, and the documentation reasons readiness and
claim lines share. Pure: plain values in, plain values out.

Sources (DOMAIN.md §3, §9): a signed, individualized note per DOS linked to an active plan
(§9.22 NH He-W 513.10 [S36], NY CDT [S83]); plan review interval (§9.23 [S11][S12][S36][S83]
[S86]); note timeliness (§3 [S37][S16]); OIG On-Site (111 of 120 plans noncompliant) [S91].
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import AbstractSet, Hashable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz

from portal.rules.deadlines import signing_deadline
from portal.rules.facts import SEVERITY_WARNING, WHO_CLINICIAN, Reason

# --- The note form's enumerations (common IOP group-note forms: participation, affect,
# mental status, risk, progress). Keys are stored; labels are shown and printed.
PARTICIPATION = {"active": "Active, engaged", "moderate": "Moderate, responsive when prompted",
                 "minimal": "Minimal, withdrawn", "disruptive": "Disruptive / off task"}
AFFECT = {"appropriate": "Appropriate / congruent", "anxious": "Anxious", "depressed": "Depressed",
          "flat": "Flat / blunted", "irritable": "Irritable", "labile": "Labile",
          "euphoric": "Euphoric"}
MENTAL_STATUS = {"alert_oriented": "Alert and oriented x3", "distracted": "Distracted",
                 "impaired": "Impaired judgment / insight", "suspected_intoxication":
                     "Suspected intoxication (see risk)"}
# Ordered by severity: at or above "ideation" a safety-plan entry is required first.
RISK = {"none": "No risk indicated", "low": "Low (history only, denies current)",
        "ideation": "Suicidal/homicidal ideation, no plan", "plan": "Ideation with plan",
        "intent": "Intent or recent attempt"}
RISK_ORDER = tuple(RISK)
SAFETY_PLAN_FROM = "ideation"
PROGRESS = {"progressing": "Progressing toward objective", "maintaining": "Maintaining",
            "no_change": "No measurable change", "regressing": "Regressing"}
MODALITY_GROUP = {"process": "Process group", "psychoeducation": "Psychoeducation",
                  "cbt_skills": "CBT skills", "dbt_skills": "DBT skills",
                  "relapse_prevention": "Relapse prevention", "family": "Family group"}

# ASAM dimensions by criteria edition. The 4th edition (2023) renames several dimensions and
# keeps level 2.1 (IOP) (DOMAIN.md §4).
ASAM_DIMENSIONS = {
    "3": {"1": "Acute intoxication and/or withdrawal potential",
          "2": "Biomedical conditions and complications",
          "3": "Emotional, behavioral, or cognitive conditions and complications",
          "4": "Readiness to change", "5": "Relapse, continued use, or continued problem potential",
          "6": "Recovery/living environment"},
    "4": {"1": "Intoxication, withdrawal, and addiction medications",
          "2": "Biomedical conditions", "3": "Psychiatric and cognitive conditions",
          "4": "Substance use-related risks", "5": "Recovery environment interactions",
          "6": "Person-centered considerations"},
}

DEFAULT_CLONE_THRESHOLD = 0.90


def risk_needs_safety_plan(risk: str) -> bool:
    return RISK_ORDER.index(risk) >= RISK_ORDER.index(SAFETY_PLAN_FROM)


# --- Clone detection ----------------------------------------------------------------------

def _normalized(text: str) -> str:
    return " ".join(text.casefold().split())


def similarity(a: str, b: str) -> float:
    """0..1 similarity of two individual sections (RapidFuzz normalized Indel ratio over
    case- and whitespace-normalized text)."""
    return fuzz.ratio(_normalized(a), _normalized(b)) / 100.0


@dataclass(frozen=True)
class ClonePair:
    a: Hashable
    b: Hashable
    score: float


def clone_pairs(sections: Mapping[Hashable, str], threshold: float = DEFAULT_CLONE_THRESHOLD,
                only: Hashable | None = None) -> list[ClonePair]:
    """Pairs of different patients' individual sections in one session whose similarity is at
    or above ``threshold`` (0..1), most similar first. With ``only``, just the pairs involving
    that key (the note about to be signed). Empty sections are never a clone."""
    if not 0 < threshold <= 1:
        raise ValueError(f"clone threshold must be in (0, 1], got {threshold}")
    keys = [k for k, v in sections.items() if v and v.strip()]
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if only is not None and only not in (a, b):
                continue
            score = similarity(sections[a], sections[b])
            if score >= threshold:
                out.append(ClonePair(a, b, score))
    return sorted(out, key=lambda p: -p.score)


# --- Group-note privacy -------------------------------------------------------------------

def names_mentioned(text: str, others: Mapping[Hashable, Iterable[str]]) -> list[Hashable]:
    """Keys of ``others`` (other attendees) any of whose names (first, last, preferred; two
    letters or more) appear in ``text`` as a whole word, case-insensitively."""
    found = []
    for key, names in others.items():
        for name in names:
            name = (name or "").strip()
            if len(name) < 2:
                continue
            if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text, re.IGNORECASE):
                found.append(key)
                break
    return found


# --- Treatment plan review ----------------------------------------------------------------

@dataclass(frozen=True)
class ReviewInterval:
    days: int | None = 30
    sessions: int | None = None
    combine: str = "less_frequent"  # less_frequent: the later due date; more_frequent: earlier


def review_due(effective: date, interval: ReviewInterval,
               attended_dates: Sequence[date] = ()) -> date | None:
    """The last DOS the plan version that took effect on ``effective`` covers: a DOS after it
    needs a newer (reviewed) version. ``days``: effective + days (day 30 is covered, day 31 is
    not). ``sessions``: the date of the N-th attended date of service after ``effective``
    (None while fewer have happened); ``attended_dates`` sorted ascending, one per date (a
    binary search keeps a patient-year linear). Both: "whichever is less frequent" (NH He-W
    513.10 [S36]) takes the later date (not due until both have passed), "more frequent" the
    earlier one."""
    by_days = effective + timedelta(days=interval.days) if interval.days else None
    by_sessions = None
    if interval.sessions:
        i = bisect_right(attended_dates, effective) + interval.sessions - 1
        if i < len(attended_dates):
            by_sessions = attended_dates[i]
    if interval.days and interval.sessions:
        if interval.combine == "less_frequent":
            if by_sessions is None:
                return None
            return max(by_days, by_sessions)
        return min(d for d in (by_days, by_sessions) if d is not None)
    return by_days if interval.days else by_sessions


# --- Documentation facts and reasons ------------------------------------------------------

@dataclass(frozen=True)
class NoteFact:
    """One patient's encounter note for one session, with the latest addendum's facts applied.
    ``signed_at`` aware UTC or None (draft). ``clone_flag``: none | open | resolved."""

    session_id: Hashable
    patient_id: Hashable
    signed_at: datetime | None
    objective_key: str | None = None
    plan_version_id: Hashable | None = None
    clone_flag: str = "none"
    archive_seq: int | None = None


@dataclass(frozen=True)
class PlanFact:
    """A fully signed, archived treatment plan version: it governs DOS from ``effective`` (the
    program-local date of its last required signature) until a newer version takes effect."""

    patient_id: Hashable
    plan_version_id: Hashable
    effective: date
    objective_keys: frozenset[str]
    archive_seq: int | None = None


@dataclass(frozen=True)
class DocumentationFacts:
    notes: tuple[NoteFact, ...] = ()
    plans: tuple[PlanFact, ...] = ()
    #: patients with a plan written but not yet fully signed (for a clearer reason)
    unsigned_plan_patients: frozenset = frozenset()
    closures: frozenset[date] = frozenset()
    time_zone: str = "America/Chicago"
    today: date | None = None  # program-local; an unsigned note past its deadline is overdue

    def index(self) -> "DocumentationIndex":
        return DocumentationIndex(self)


class DocumentationIndex:
    """Dicts over ``DocumentationFacts`` built once per derivation (O(rows))."""

    def __init__(self, facts: DocumentationFacts):
        self.facts = facts
        # patient -> session -> note: one lookup per patient-day, then one per session
        self.notes: dict[Hashable, dict[Hashable, NoteFact]] = {}
        for n in facts.notes:
            of = self.notes.get(n.patient_id)
            if of is None:
                of = self.notes[n.patient_id] = {}
            of[n.session_id] = n
        self.plans: dict[Hashable, list[PlanFact]] = {}
        for p in sorted(facts.plans, key=lambda p: (p.effective, str(p.plan_version_id))):
            self.plans.setdefault(p.patient_id, []).append(p)
        # Per patient, the versions' effective dates in the same order (binary search), and
        # per (DOS, days, kind) the signing deadline: both asked once per attended day.
        self._effective = {pid: [p.effective for p in versions]
                           for pid, versions in self.plans.items()}
        self._deadlines: dict[tuple, date] = {}
        self.tz = ZoneInfo(facts.time_zone)

    def active_plan(self, patient_id: Hashable, dos: date) -> tuple[PlanFact | None, PlanFact | None]:
        """(version in force on ``dos``, the next version after it or None)."""
        versions = self.plans.get(patient_id)
        if not versions:
            return None, None
        i = bisect_right(self._effective[patient_id], dos)
        if i == 0:
            return None, None
        return versions[i - 1], versions[i] if i < len(versions) else None

    def deadline(self, dos: date, days: int, kind: str) -> tuple[date, datetime]:
        """The signing deadline (program-local date) and the instant its day ends: a note
        signed at or after that instant is late. Comparing instants, not local dates, saves
        a time-zone conversion per note; midnight is looked up in the zone, so a DST day
        ends when its local date does."""
        key = (dos, days, kind)
        found = self._deadlines.get(key)
        if found is None:
            last = signing_deadline(dos, days, kind, self.facts.closures)
            after = last + timedelta(days=1)
            ends = datetime(after.year, after.month, after.day, tzinfo=self.tz).astimezone(timezone.utc)
            found = self._deadlines[key] = (last, ends)
        return found


_NO_NOTES: dict = {}


def documentation_reasons(index: DocumentationIndex, patient_id: Hashable, dos: date,
                          session_ids: Iterable[Hashable], attended_dates: Sequence[date],
                          note_days: int, note_day_kind: str,
                          interval: ReviewInterval | None) -> list[Reason]:
    """Why the notes and plan for one patient's attended DOS do not support a claim.

    ``attended_dates``: the patient's attended DOS (for session-counted review intervals).
    ``interval`` None means the payer's rules are unknown: the plan must still exist and be
    signed, but no review interval is judged. Late notes are a warning (flagged, not blocked:
    payers differ on whether a late note is billable); everything else blocks."""
    facts = index.facts
    out: list[Reason] = []
    plan, _next = index.active_plan(patient_id, dos)
    d = dos.isoformat()
    if plan is None:
        if patient_id in facts.unsigned_plan_patients:
            out.append(Reason("plan_not_signed", f"{d}: the treatment plan is not fully signed "
                              "(patient, clinician and any required supervisor) on or before "
                              "this date", WHO_CLINICIAN))
        else:
            out.append(Reason("plan_missing", f"{d}: no signed treatment plan in effect on this "
                              "date of service", WHO_CLINICIAN))
    elif interval is not None:
        due = review_due(plan.effective, interval, attended_dates)
        if due is not None and dos > due:
            out.append(Reason("plan_review_overdue", f"{d}: treatment plan review was due "
                              f"{due.isoformat()} (plan in effect since "
                              f"{plan.effective.isoformat()})", WHO_CLINICIAN))
    deadline, deadline_ends = index.deadline(dos, note_days, note_day_kind)
    notes = index.notes.get(patient_id, _NO_NOTES)
    for sid in session_ids:
        note = notes.get(sid)
        if note is None or note.signed_at is None:
            overdue = facts.today is not None and facts.today > deadline
            code = "note_missing" if note is None else "note_not_signed"
            what = "no encounter note" if note is None else "encounter note not signed"
            out.append(Reason(code, f"{d}: {what}; due {deadline.isoformat()}"
                              + (" (overdue)" if overdue else ""), WHO_CLINICIAN,
                              session_id=sid))
            continue
        # deadlines.is_late: signed on a local date after the deadline
        signed_at = note.signed_at
        if signed_at.tzinfo is None:
            raise ValueError("naive datetime: store and pass UTC-aware instants")
        if signed_at >= deadline_ends:
            out.append(Reason("note_late", f"{d}: note signed after its deadline "
                              f"{deadline.isoformat()}", WHO_CLINICIAN,
                              severity=SEVERITY_WARNING, session_id=sid))
        if not note.objective_key:
            out.append(Reason("note_objective_missing", f"{d}: the note names no objective of "
                              "the treatment plan", WHO_CLINICIAN, session_id=sid))
        elif plan is not None and note.objective_key not in plan.objective_keys:
            out.append(Reason("note_objective_not_in_plan", f"{d}: the note's objective "
                              f"{note.objective_key} is not in the plan in effect",
                              WHO_CLINICIAN, session_id=sid))
        if note.clone_flag == "open":
            out.append(Reason("note_clone_unresolved", f"{d}: the individual section is nearly "
                              "identical to another patient's in the same group; review it "
                              "(addendum)", WHO_CLINICIAN, session_id=sid))
    return out


def note_deadline(dos: date, note_days: int, note_day_kind: str,
                  closures: AbstractSet[date] = frozenset()) -> date:
    return signing_deadline(dos, note_days, note_day_kind, closures)
