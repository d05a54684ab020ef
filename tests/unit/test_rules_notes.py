"""Encounter-note and treatment-plan rules (table-driven): signing deadlines, plan review,
clone detection, attendee names, and the documentation reasons on claim lines."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from rapidfuzz import fuzz

from portal.rules.claim_lines import derive_claim_lines
from portal.rules.deadlines import is_late, signing_deadline
from portal.rules.facts import AttendanceFact, AuthorizationFact, PatientFact, ProgramFact, SessionFact
from portal.rules.notes import (DocumentationFacts, NoteFact, PlanFact, ReviewInterval,
                                clone_pairs, names_mentioned, review_due, risk_needs_safety_plan,
                                similarity)
from portal.rules.payer_rules import load_all

CHI = ZoneInfo("America/Chicago")
UTC = timezone.utc
D = date


# --- signing deadline: DOS is day 1 ---------------------------------------------------------
@pytest.mark.parametrize("dos, days, kind, closures, due, why", [
    (D(2026, 11, 2), 3, "business", (), D(2026, 11, 4), "Mon: Mon Tue Wed"),
    (D(2026, 11, 5), 3, "business", (), D(2026, 11, 9), "Thu: Thu Fri | weekend | Mon"),
    (D(2026, 11, 6), 3, "business", (), D(2026, 11, 10), "Fri: Fri | weekend | Mon Tue"),
    (D(2026, 11, 7), 3, "business", (), D(2026, 11, 11), "Sat DOS: day 1 is Monday"),
    (D(2026, 11, 25), 3, "business", (D(2026, 11, 26), D(2026, 11, 27)), D(2026, 12, 1),
     "Wed before Thanksgiving closure Thu+Fri: Wed | closed | weekend | Mon Tue"),
    (D(2026, 11, 25), 3, "business", (), D(2026, 11, 27), "same without closures"),
    (D(2026, 11, 5), 14, "calendar", (), D(2026, 11, 18), "14 calendar days"),
    (D(2026, 11, 5), 1, "calendar", (), D(2026, 11, 5), "same day"),
    (D(2026, 11, 26), 14, "calendar", (D(2026, 11, 27),), D(2026, 12, 9), "closures ignored"),
])
def test_signing_deadline(dos, days, kind, closures, due, why):
    assert signing_deadline(dos, days, kind, frozenset(closures)) == due, why


@pytest.mark.parametrize("days, kind", [(0, "business"), (3, "weekly")])
def test_signing_deadline_bad_config(days, kind):
    with pytest.raises(ValueError):
        signing_deadline(D(2026, 11, 2), days, kind)


@pytest.mark.parametrize("signed_at, deadline, late, why", [
    # Across a weekend: Thu DOS, 3 business days -> Mon 11/9.
    (datetime(2026, 11, 9, 23, 0, tzinfo=CHI), D(2026, 11, 9), False, "day N, late evening"),
    (datetime(2026, 11, 10, 8, 0, tzinfo=CHI), D(2026, 11, 9), True, "day N+1"),
    # Across the DST change (Sun 2026-11-01, CDT -> CST): 11:30 PM CST on the deadline is
    # already 05:30 UTC the next day; still on time.
    (datetime(2026, 11, 3, 5, 30, tzinfo=UTC), D(2026, 11, 2), False, "11:30 PM CST, day N"),
    (datetime(2026, 11, 3, 6, 0, tzinfo=UTC), D(2026, 11, 2), True, "midnight CST, N+1"),
    # Before the change (CDT, UTC-5): 11:30 PM on Oct 30 is 04:30 UTC Oct 31.
    (datetime(2026, 10, 31, 4, 30, tzinfo=UTC), D(2026, 10, 30), False, "11:30 PM CDT"),
    (datetime(2026, 10, 31, 5, 0, tzinfo=UTC), D(2026, 10, 30), True, "00:00 CDT, N+1"),
])
def test_late_is_judged_on_the_program_local_date(signed_at, deadline, late, why):
    assert is_late(signed_at, deadline, "America/Chicago") is late, why


def test_deadline_over_closure_day_n_vs_n_plus_1():
    # Closed Thu 11/26 and Fri 11/27: DOS Wed 11/25 is due Tue 12/1 (Wed, Mon, Tue).
    due = signing_deadline(D(2026, 11, 25), 3, "business", frozenset({D(2026, 11, 26), D(2026, 11, 27)}))
    assert due == D(2026, 12, 1)
    assert not is_late(datetime(2026, 12, 1, 17, 0, tzinfo=CHI), due, "America/Chicago")
    assert is_late(datetime(2026, 12, 2, 9, 0, tzinfo=CHI), due, "America/Chicago")


# --- plan review ------------------------------------------------------------------------------
EFF = D(2026, 11, 1)
NH = ReviewInterval(days=28, sessions=4, combine="less_frequent")


@pytest.mark.parametrize("interval, attended, due, why", [
    (ReviewInterval(days=30), (), D(2026, 12, 1), "30 days: day 30 covered, day 31 not"),
    (ReviewInterval(days=None, sessions=4), (D(2026, 11, 2), D(2026, 11, 3)), None,
     "4 sessions, only 2 so far"),
    (ReviewInterval(days=None, sessions=4),
     (D(2026, 11, 1), D(2026, 11, 2), D(2026, 11, 3), D(2026, 11, 9), D(2026, 11, 10)),
     D(2026, 11, 10), "attended dates after the effective date count"),
    # Irregular attendance: 4 sessions in the first week -> 4 weeks is less frequent.
    (NH, (D(2026, 11, 2), D(2026, 11, 3), D(2026, 11, 4), D(2026, 11, 5)), D(2026, 11, 29),
     "4 sessions in week 1: 4 weeks is the less frequent"),
    # Sparse attendance: the 4th session is on 12/10, after 4 weeks -> sessions count.
    (NH, (D(2026, 11, 2), D(2026, 11, 16), D(2026, 12, 1), D(2026, 12, 10)), D(2026, 12, 10),
     "4th session after 4 weeks: sessions are the less frequent"),
    (NH, (D(2026, 11, 2), D(2026, 11, 16)), None, "fewer than 4 sessions: not yet due"),
    (ReviewInterval(days=28, sessions=4, combine="more_frequent"),
     (D(2026, 11, 2), D(2026, 11, 3), D(2026, 11, 4), D(2026, 11, 5)), D(2026, 11, 5),
     "whichever is more frequent"),
])
def test_review_due(interval, attended, due, why):
    assert review_due(EFF, interval, attended) == due, why


# --- clone detection --------------------------------------------------------------------------
def _pair_at(target: float) -> tuple[str, str]:
    """Two sections whose RapidFuzz ratio is exactly ``target`` percent (built, then checked)."""
    base = "Patient described cravings after work and practiced urge surfing with the group. "
    a = (base * 2)[:100]
    # Each substitution of one char costs 2 Indel operations out of 200 characters: 1 %.
    subs = round(100 - target)
    b = "".join(("#" if i < subs else ch) for i, ch in enumerate(a))
    assert fuzz.ratio(a, b) == pytest.approx(target, abs=0.01)
    return a, b


@pytest.mark.parametrize("target, flagged", [(91, True), (90, True), (89, False)])
def test_clone_threshold(target, flagged):
    a, b = _pair_at(target)
    pairs = clone_pairs({"p1": a, "p2": b}, threshold=0.90)
    assert bool(pairs) is flagged
    if flagged:
        assert pairs[0].score == pytest.approx(target / 100)


def test_clone_pairs_configurable_threshold_and_only():
    a, b = _pair_at(89)
    assert clone_pairs({"p1": a, "p2": b}, threshold=0.85)
    sections = {"p1": a, "p2": a, "p3": "Entirely different words about family roles."}
    assert [(p.a, p.b) for p in clone_pairs(sections, only="p3")] == []
    assert [(p.a, p.b) for p in clone_pairs(sections, only="p2")] == [("p1", "p2")]
    assert clone_pairs({"p1": "", "p2": ""}) == []
    assert similarity("Same  TEXT", "same text") == 1.0
    with pytest.raises(ValueError):
        clone_pairs(sections, threshold=0)


@pytest.mark.parametrize("text, found", [
    ("Discussed triggers with Marcus after group.", ["p2"]),
    ("Discussed triggers with marcus.", ["p2"]),
    ("Discussed Marcusville triggers.", []),
    ("Reviewed relapse plan; Okafor's sponsor called.", ["p3"]),
    ("No other names here. J. said hello.", []),
])
def test_names_mentioned(text, found):
    others = {"p2": ["Marcus", "Bell", "Marc"], "p3": ["Ada", "Okafor", ""], "p4": ["J"]}
    assert names_mentioned(text, others) == found


@pytest.mark.parametrize("risk, needs", [("none", False), ("low", False), ("ideation", True),
                                         ("plan", True), ("intent", True)])
def test_risk_needs_safety_plan(risk, needs):
    assert risk_needs_safety_plan(risk) is needs


# --- documentation reasons through derive_claim_lines -----------------------------------------
RB = load_all()
PROGRAM = ProgramFact(billing_npi="1999999984", time_zone="America/Chicago")


def _at(d, h):
    return datetime(d.year, d.month, d.day, h, tzinfo=CHI)


def _session(sid, dos):
    return SessionFact(sid, "AM IOP", dos, _at(dos, 9), _at(dos, 12), _at(dos, 9), _at(dos, 12),
                       "u1", "Dana Whitfield", "LCSW", "1234567893", roster_closed=True, archive_seq=1)


def _derive(days, notes, plans, today=D(2026, 12, 31), payer="sunrise_medicaid_mco"):
    sessions = [_session(f"s{i}", d) for i, d in enumerate(days)]
    rows = [AttendanceFact(s.session_id, "p1", "present", signed=True) for s in sessions]
    patients = [PatientFact("p1", "M1", "A B", payer, member_id="X", diagnoses=("F10.20",))]
    auths = [AuthorizationFact("p1", "A1", D(2026, 10, 1), D(2027, 1, 31), 200, None)]
    docs = DocumentationFacts(notes=tuple(notes), plans=tuple(plans), today=today)
    return {ln.dos: ln for ln in derive_claim_lines(PROGRAM, patients, sessions, rows, auths, RB,
                                                    docs)}


def _codes(line):
    return {r.code for r in line.reasons}


def _note(sid, signed_at, objective="O1", flag="none"):
    return NoteFact(sid, "p1", signed_at, objective, "v1", flag)


PLAN = PlanFact("p1", "v1", D(2026, 11, 2), frozenset({"O1", "O2"}))


def test_ready_with_signed_note_and_active_plan():
    dos = D(2026, 11, 16)  # Sunrise version 2 (HQ) — ready apart from documentation
    lines = _derive([dos], [_note("s0", _at(dos, 15))], [PLAN])
    doc = {r for r in lines[dos].reasons if r.code.startswith(("note_", "plan_"))}
    assert not doc, doc


@pytest.mark.parametrize("notes, plans, code, severity, who", [
    ([], [PLAN], "note_missing", "block", "clinician"),
    ([_note("s0", None)], [PLAN], "note_not_signed", "block", "clinician"),
    ([_note("s0", _at(D(2026, 11, 19), 9))], [PLAN], "note_late", "warning", "clinician"),
    ([_note("s0", _at(D(2026, 11, 16), 15), objective=None)], [PLAN], "note_objective_missing",
     "block", "clinician"),
    ([_note("s0", _at(D(2026, 11, 16), 15), objective="O9")], [PLAN], "note_objective_not_in_plan",
     "block", "clinician"),
    ([_note("s0", _at(D(2026, 11, 16), 15), flag="open")], [PLAN], "note_clone_unresolved",
     "block", "clinician"),
    ([_note("s0", _at(D(2026, 11, 16), 15))], [], "plan_missing", "block", "clinician"),
    ([_note("s0", _at(D(2026, 11, 16), 15))],
     [PlanFact("p1", "v1", D(2026, 10, 15), frozenset({"O1"}))], "plan_review_overdue", "block",
     "clinician"),
])
def test_each_documentation_reason(notes, plans, code, severity, who):
    dos = D(2026, 11, 16)
    line = _derive([dos], notes, plans)[dos]
    r = next(r for r in line.reasons if r.code == code)
    assert (r.severity, r.who_must_act) == (severity, who)
    if severity == "block":
        assert line.status == "blocked"


def test_note_signed_on_deadline_is_not_late():
    dos = D(2026, 11, 19)  # Thu -> due Mon 11/23
    ok = _derive([dos], [_note("s0", _at(D(2026, 11, 23), 22))], [PLAN])[dos]
    late = _derive([dos], [_note("s0", _at(D(2026, 11, 24), 8))], [PLAN])[dos]
    assert "note_late" not in _codes(ok) and "note_late" in _codes(late)


def test_review_day_30_vs_31_and_a_review_clears_it():
    plan = PlanFact("p1", "v1", D(2026, 11, 1), frozenset({"O1"}))
    d30, d31 = D(2026, 12, 1), D(2026, 12, 2)
    notes = [_note("s0", _at(d30, 15)), _note("s1", _at(d31, 15))]
    lines = _derive([d30, d31], notes, [plan])
    assert "plan_review_overdue" not in _codes(lines[d30])
    assert "plan_review_overdue" in _codes(lines[d31])
    reviewed = PlanFact("p1", "v2", D(2026, 12, 1), frozenset({"O1"}))
    lines = _derive([d30, d31], notes, [plan, reviewed])
    assert "plan_review_overdue" not in _codes(lines[d31])


def test_plan_signed_after_dos_does_not_cover_it():
    dos = D(2026, 11, 16)
    later = PlanFact("p1", "v1", D(2026, 11, 17), frozenset({"O1"}))
    assert "plan_missing" in _codes(_derive([dos], [_note("s0", _at(dos, 15))], [later])[dos])


def test_unsigned_plan_reason():
    dos = D(2026, 11, 16)
    docs = DocumentationFacts(notes=(_note("s0", _at(dos, 15)),), unsigned_plan_patients=frozenset({"p1"}))
    sessions = [_session("s0", dos)]
    rows = [AttendanceFact("s0", "p1", "present", signed=True)]
    patients = [PatientFact("p1", "M1", "A B", "sunrise_medicaid_mco", diagnoses=("F10.20",))]
    line = derive_claim_lines(PROGRAM, patients, sessions, rows, [], RB, docs)[0]
    assert "plan_not_signed" in _codes(line)


def test_nh_four_sessions_or_four_weeks_with_irregular_attendance():
    # Blue River: review every 4 sessions or 28 days, whichever is less frequent.
    plan = PlanFact("p1", "v1", D(2026, 11, 2), frozenset({"O1"}))
    days = [D(2026, 11, 3), D(2026, 11, 4), D(2026, 11, 5), D(2026, 11, 6), D(2026, 11, 30),
            D(2026, 12, 1)]
    notes = [_note(f"s{i}", _at(d, 15)) for i, d in enumerate(days)]
    lines = _derive(days, notes, [plan], payer="blueriver_ppo")
    overdue = [d for d, ln in sorted(lines.items()) if "plan_review_overdue" in _codes(ln)]
    assert overdue == [D(2026, 12, 1)]  # 4 sessions by 11/6, but 4 weeks run to 11/30


def test_no_documentation_facts_means_no_documentation_reasons():
    dos = D(2026, 11, 16)
    sessions = [_session("s0", dos)]
    rows = [AttendanceFact("s0", "p1", "present", signed=True)]
    patients = [PatientFact("p1", "M1", "A B", "sunrise_medicaid_mco", diagnoses=("F10.20",))]
    line = derive_claim_lines(PROGRAM, patients, sessions, rows, [], RB)[0]
    assert not {"note_missing", "plan_missing"} & _codes(line)


@pytest.mark.parametrize("zone", [
    "America/Chicago",  # DST at 02:00 local
    "America/Santiago",  # DST at midnight: 2026-09-06 has no 00:00, 2026-04-05 has two 23:00s
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",  # no DST, a half-hour offset
])
def test_note_late_in_the_derivation_agrees_with_is_late_every_day_of_a_year(zone):
    # The derivation compares a note's instant with the end of the deadline's local day
    # (DocumentationIndex.deadline) instead of converting every note to a local date; both
    # must agree on every deadline of a year, DST days included, at every half hour around it.
    from portal.rules.notes import DocumentationIndex, documentation_reasons

    index = DocumentationIndex(DocumentationFacts(time_zone=zone))
    tz = ZoneInfo(zone)
    day, disagreements = D(2026, 1, 1), []
    while day.year == 2026:
        deadline, _ends = index.deadline(day, 1, "calendar")  # the DOS is day 1
        assert deadline == day
        start = datetime(day.year, day.month, day.day, 20, tzinfo=tz).astimezone(UTC)
        for half_hours in range(12):  # 20:00 local on the deadline to 02:00 the next day
            signed_at = start + timedelta(minutes=30 * half_hours) - timedelta(seconds=1)
            index.notes = {"p": {"s": NoteFact("s", "p", signed_at, "O1")}}
            late = "note_late" in {r.code for r in documentation_reasons(
                index, "p", day, ("s",), (), 1, "calendar", None)}
            if late is not is_late(signed_at, deadline, zone):
                disagreements.append(signed_at.isoformat())
        day += timedelta(days=1)
    assert not disagreements, disagreements[:5]
