"""Claim-line derivation, weekly checks, day summary and readiness (table-driven)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.rules.claim_lines import derive_claim_lines, summarize_day, weekly_summary
from portal.rules.facts import (
    AttendanceFact,
    AuthorizationFact,
    PatientFact,
    ProgramFact,
    SessionFact,
)
from portal.rules.payer_rules import load_all
from portal.rules.readiness import patient_readiness

CHI = ZoneInfo("America/Chicago")
RB = load_all()
PROGRAM = ProgramFact(billing_npi="1999999984", time_zone="America/Chicago", name="Lakeside Recovery IOP",
                      taxonomy="261QR0405X")
MON = date(2026, 11, 2)  # a Monday, Sunrise version 1 (no HQ)


def at(d: date, h: int, m: int = 0, fold: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, h, m, tzinfo=CHI, fold=fold)


def session(sid="s1", dos=MON, start=(9, 0), end=(12, 0), **kw) -> SessionFact:
    base = dict(
        session_id=sid, cohort_name="AM IOP", dos=dos,
        scheduled_start=at(dos, *start), scheduled_end=at(dos, *end),
        actual_start=at(dos, *start), actual_end=at(dos, *end),
        facilitator_id="u1", facilitator_name="Dana Whitfield", facilitator_credential="LCSW",
        facilitator_npi="1234567893", roster_closed=True, archive_seq=7,
        headcount_present=6,  # the rest of the group (group-size minimum is 2)
    )
    base.update(kw)
    return SessionFact(**base)


def row(sid="s1", pid="p1", status="present", signed=True, **kw) -> AttendanceFact:
    return AttendanceFact(session_id=sid, patient_id=pid, status=status, signed=signed, **kw)


def patient(pid="p1", payer="sunrise_medicaid_mco", **kw) -> PatientFact:
    base = dict(patient_id=pid, mrn=f"MRN{pid}", display_name=f"Patient {pid}", payer_key=payer,
                member_id=f"M{pid}", diagnoses=("F10.20",), address_line="12 Elm St",
                city="Chicago", state="IL", postal_code="60614")
    base.update(kw)
    return PatientFact(**base)


def auth(pid="p1", start=date(2026, 11, 1), end=date(2026, 11, 30), units=12, number="IOP-55102",
         code="H0015") -> AuthorizationFact:
    return AuthorizationFact(pid, number, start, end, units, code)


def derive(sessions, rows, patients=None, auths=None):
    patients = patients if patients is not None else [patient()]
    if auths is None:
        auths = [auth(p.patient_id) for p in patients]
    return derive_claim_lines(PROGRAM, patients, sessions, rows, auths, RB)


def one(lines, pid="p1", dos=MON):
    [ln] = [ln for ln in lines if ln.patient_id == pid and ln.dos == dos]
    return ln


def codes(line, severity=None):
    return {r.code for r in line.reasons if severity is None or r.severity == severity}


# --- daily minimum ---------------------------------------------------------------------

@pytest.mark.parametrize("end, minutes, status", [
    ((11, 59), 179, "blocked"),
    ((12, 0), 180, "ready"),
])
def test_h0015_daily_minimum(end, minutes, status):
    ln = one(derive([session(end=end)], [row()]))
    assert (ln.minutes_attended, ln.status) == (minutes, status)
    assert ("under_daily_minimum" in codes(ln, "block")) == (status == "blocked")
    assert (ln.code, ln.units, ln.charge_cents, ln.pos, ln.modifiers) == ("H0015", 1, 16500, "57", ("HF",))
    assert ln.rendering_npi == "1234567893" and ln.authorization_number == "IOP-55102"


def test_adolescent_minimum_is_payer_data():
    ln = one(derive([session(end=(11, 0))], [row()], [patient(age_group="adolescent")]))
    assert ln.minutes_attended == 120 and "under_daily_minimum" not in codes(ln)


# --- H2019 fallback and 15-minute units --------------------------------------------------

@pytest.mark.parametrize("minutes, code, units, status", [
    (7, "H0015", 1, "blocked"),
    (8, "H2019", 1, "ready"),
    (22, "H2019", 1, "ready"),
    (23, "H2019", 2, "ready"),
    (37, "H2019", 2, "ready"),
    (38, "H2019", 3, "ready"),
    (179, "H2019", 12, "ready"),
    (180, "H0015", 1, "ready"),
])
def test_keystone_falls_back_to_h2019_units(minutes, code, units, status):
    end = at(MON, 9) + timedelta(minutes=minutes)
    s = session(actual_end=end, scheduled_end=end)
    p = patient(payer="keystone_commercial_hmo")
    ln = one(derive([s], [row()], [p], [auth(code=None, units=100, number="KC-45512")]))
    assert (ln.code, ln.units, ln.status) == (code, units, status)
    rate = 2400 if code == "H2019" else 29000
    if status == "ready":
        assert ln.charge_cents == units * rate
    if code == "H2019":
        assert "under_daily_minimum" in codes(ln, "warning")
        assert ln.modifiers == ("HF", "HQ")
    if minutes == 7:
        assert {"under_daily_minimum", "under_unit_minimum"} <= codes(ln, "block")


# --- multiple groups in a day --------------------------------------------------------------

@pytest.mark.parametrize("second, minutes", [
    (((10, 45), (12, 15)), 180),   # 90 + 90
    (((10, 30), (12, 0)), 180),    # back to back
    (((10, 0), (11, 30)), 150),    # overlaps 30 min: counted once
])
def test_minutes_summed_over_groups(second, minutes):
    s1 = session("s1", start=(9, 0), end=(10, 30))
    s2 = session("s2", start=second[0], end=second[1], cohort_name="AM IOP 2",
                 facilitator_name="Marcus Greene", facilitator_credential="LPC, LCADC",
                 facilitator_npi="1098765438")
    ln = one(derive([s1, s2], [row("s1"), row("s2")]))
    assert ln.minutes_attended == minutes
    assert ln.session_ids == ("s1", "s2")
    assert ("overlapping_groups" in codes(ln)) == (minutes == 150)


def test_late_and_left_early_clip_minutes():
    rows = [row(status="late", arrival=at(MON, 9, 30)), row("s2", status="left_early",
                                                            departure=at(MON, 14, 0))]
    s2 = session("s2", start=(13, 0), end=(15, 0))
    ln = one(derive([session(), s2], rows))
    assert ln.minutes_attended == 150 + 60


def test_late_without_arrival_blocks():
    ln = one(derive([session()], [row(status="late")]))
    assert "arrival_time_missing" in codes(ln, "block")


# --- DST ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dos, start, end, minutes", [
    (date(2026, 3, 8), at(date(2026, 3, 8), 9), at(date(2026, 3, 8), 12), 180),
    (date(2026, 11, 1), at(date(2026, 11, 1), 9), at(date(2026, 11, 1), 12), 180),
    (date(2026, 11, 1), at(date(2026, 11, 1), 1, 0, fold=0), at(date(2026, 11, 1), 3, 30), 210),
])
def test_dst_days_use_real_minutes(dos, start, end, minutes):
    s = session(dos=dos, actual_start=start, actual_end=end, scheduled_start=start, scheduled_end=end)
    a = auth(start=date(2026, 3, 1), end=date(2026, 11, 30), units=100)
    ln = one(derive([s], [row()], auths=[a]), dos=dos)
    assert ln.minutes_attended == minutes
    assert ln.status == "ready"


# --- group size -----------------------------------------------------------------------------

@pytest.mark.parametrize("n, blocked", [(12, False), (13, True)])
def test_group_size_limit(n, blocked):
    patients = [patient(f"p{i}") for i in range(n)]
    rows = [row(pid=p.patient_id) for p in patients]
    lines = derive([session()], rows, patients)
    assert all(("group_over_limit" in codes(ln, "block")) == blocked for ln in lines)
    summary = summarize_day(lines, [session()])
    faults = [r for r in summary.cohort_faults if r.code == "group_over_limit"]
    assert len(faults) == (1 if blocked else 0)
    if blocked:
        assert summary.at_risk_cents == n * 16500 and summary.ready == 0
        assert summary.sessions[0].blocked == n


def test_group_size_depends_on_each_patients_payer():
    # 13 attended: over Sunrise's 12, under BlueRiver's 15
    patients = [patient(f"s{i}") for i in range(7)] + [
        patient(f"b{i}", payer="blueriver_ppo") for i in range(6)]
    rows = [row(pid=p.patient_id) for p in patients]
    lines = derive([session()], rows, patients)
    for ln in lines:
        assert ("group_over_limit" in codes(ln)) == (ln.payer_key == "sunrise_medicaid_mco")


# --- week checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("days, warned", [(2, True), (3, False)])
def test_week_service_days(days, warned):
    sessions = [session(f"s{i}", dos=MON + timedelta(days=i)) for i in range(days)]
    lines = derive(sessions, [row(s.session_id) for s in sessions])
    assert all(ln.status == "ready" for ln in lines)  # warnings do not block
    assert all(("week_too_few_days" in codes(ln, "warning")) == warned for ln in lines)
    [week] = weekly_summary(lines, [patient()], RB)
    assert (week.iso_week, week.service_days, week.minutes) == (45, days, 180 * days)
    assert ("week_too_few_days" in {r.code for r in week.reasons}) == warned
    assert ("week_under_floor" in {r.code for r in week.reasons}) == (180 * days < 540)


def test_week_over_cap():
    sessions = [session(f"s{i}", dos=MON + timedelta(days=i), start=(8, 0), end=(12, 0))
                for i in range(5)]
    lines = derive(sessions, [row(s.session_id) for s in sessions],
                   auths=[auth(units=20)])
    [week] = weekly_summary(lines, [patient()], RB)
    assert week.minutes == 1200 and "week_over_cap" in {r.code for r in week.reasons}


# --- telehealth -----------------------------------------------------------------------------

@pytest.mark.parametrize("payer, modality, location, override, mods, pos, blocked", [
    ("sunrise_medicaid_mco", "video", "home", None, ("HF", "GT"), "10", set()),
    ("sunrise_medicaid_mco", "video", "other", None, ("HF", "GT"), "02", set()),
    ("sunrise_medicaid_mco", "audio_only", "home", None, ("HF", "93"), "10", set()),
    ("blueriver_ppo", "video", "home", None, ("HF", "HQ", "95"), "10", set()),
    ("blueriver_ppo", "audio_only", "home", None, ("HF", "HQ", "93"), "10", {"audio_only_not_covered"}),
    ("sunrise_medicaid_mco", "video", "home", "11", ("HF", "GT"), "11", {"pos_conflicts_modality"}),
    ("sunrise_medicaid_mco", "video", None, None, ("HF", "GT"), "02", {"telehealth_location_missing"}),
    ("sunrise_medicaid_mco", "in_person", None, "10", ("HF",), "10", {"pos_conflicts_modality"}),
    ("blueriver_ppo", "in_person", None, None, ("HF", "HQ"), "11", set()),
])
def test_telehealth_coding(payer, modality, location, override, mods, pos, blocked):
    s = session(modality=modality, patient_location=location, pos_override=override)
    ln = one(derive([s], [row()], [patient(payer=payer)]))
    assert (ln.modifiers, ln.pos) == (mods, pos)
    assert codes(ln, "block") == blocked


# --- payer rule changed mid-month -------------------------------------------------------

@pytest.mark.parametrize("dos, mods", [
    (date(2026, 11, 13), ("HF",)),
    (date(2026, 11, 16), ("HF", "HQ")),
])
def test_dos_judged_by_rules_in_force(dos, mods):
    ln = one(derive([session(dos=dos)], [row()]), dos=dos)
    assert ln.modifiers == mods and ln.status == "ready"


# --- every reason, cohort faults once --------------------------------------------------

def test_all_reasons_reported():
    s = session(roster_closed=False, archive_seq=None, facilitator_credential="BA")
    p = patient(other_level_days={"php": frozenset({MON})})
    ln = one(derive([s], [row(signed=False)], [p], auths=[]))
    assert codes(ln, "block") == {
        "roster_not_closed", "credential_not_allowed", "patient_not_signed",
        "authorization_missing", "exclusive_level_same_day",
    }
    by_code = {r.code: r for r in ln.reasons}
    assert by_code["roster_not_closed"].scope == "cohort"
    assert by_code["roster_not_closed"].who_must_act == "facilitator"
    assert by_code["patient_not_signed"].scope == "patient"
    assert by_code["authorization_missing"].who_must_act == "billing"


def test_cohort_faults_reported_once_per_session():
    patients = [patient(f"p{i}") for i in range(3)]
    s1 = session("s1", end=(10, 30), roster_closed=False)
    s2 = session("s2", start=(10, 30), end=(12, 0), roster_closed=False, actual_end=None)
    rows = [row(sid, p.patient_id) for p in patients for sid in ("s1", "s2")]
    lines = derive([s1, s2], rows, patients)
    assert all(ln.status == "blocked" for ln in lines)
    summary = summarize_day(lines, [s1, s2])
    got = sorted((r.session_id, r.code) for r in summary.cohort_faults)
    assert got == [("s1", "roster_not_closed"), ("s2", "roster_not_closed"),
                   ("s2", "session_times_missing")]
    assert summary.at_risk_cents == 3 * 16500
    assert [s.patients for s in summary.sessions] == [3, 3]


@pytest.mark.parametrize("start, end, code", [
    ((12, 0), (9, 0), "session_times_impossible"),
    ((9, 0), (9, 0), "session_times_impossible"),
])
def test_impossible_session_times(start, end, code):
    ln = one(derive([session(start=start, end=end)], [row()]))
    assert code in codes(ln, "block")


def test_session_over_twelve_hours():
    s = session(actual_end=at(MON, 9) + timedelta(hours=12, minutes=1))
    assert "session_times_impossible" in codes(one(derive([s], [row()])), "block")


def test_open_roster_with_no_attendees_still_summarized():
    s = session(roster_closed=False)
    lines = derive([s], [row(status="absent")])
    assert one(lines).status == "no_service" and one(lines).charge_cents == 0
    summary = summarize_day(lines, [s])
    assert [r.code for r in summary.cohort_faults] == ["roster_not_closed"]
    assert summary.at_risk_cents == 0 and summary.no_service == 1


# --- credentials and supervision ------------------------------------------------------

@pytest.mark.parametrize("cred, sup_cred, sup_npi, blocked, sup_on_line", [
    ("LCSW", None, None, set(), None),
    ("LPC, LCADC", None, None, set(), None),
    ("CADC", None, None, {"supervisor_missing"}, None),
    ("CADC", "LCSW", None, {"supervisor_missing"}, None),
    ("CADC", "LCSW", "1111111112", set(), "1111111112"),
    ("Peer", None, None, {"credential_not_allowed"}, None),
])
def test_rendering_credentials(cred, sup_cred, sup_npi, blocked, sup_on_line):
    s = session(facilitator_credential=cred, supervising_credential=sup_cred, supervising_npi=sup_npi,
                supervising_name="Dana Whitfield")
    ln = one(derive([s], [row()]))
    assert codes(ln, "block") == blocked
    assert ln.supervising_npi == sup_on_line


# --- authorizations -------------------------------------------------------------------

def test_authorization_units_counted_in_dos_order():
    sessions = [session(f"s{i}", dos=MON + timedelta(days=i)) for i in range(4)]
    rows = [row(s.session_id) for s in reversed(sessions)]  # input order must not matter
    lines = derive(sessions, rows, auths=[auth(units=3, number="IOP 551-02")])
    assert [ln.status for ln in lines] == ["ready", "ready", "ready", "blocked"]
    assert "authorization_units_exhausted" in codes(lines[3], "block")
    assert {ln.authorization_number for ln in lines} == {"IOP 551-02"}


@pytest.mark.parametrize("a, code", [
    (auth(start=date(2026, 10, 1), end=date(2026, 11, 1)), "authorization_expired"),
    (auth(start=date(2026, 11, 3), end=date(2026, 11, 30)), "authorization_not_started"),
    (auth(code="H2019"), "authorization_missing"),
])
def test_authorization_window(a, code):
    ln = one(derive([session()], [row()], auths=[a]))
    assert code in codes(ln, "block")


def test_self_pay_needs_no_authorization():
    ln = one(derive([session()], [row()], [patient(payer="self_pay")], auths=[]))
    assert ln.status == "ready" and ln.authorization_number is None and ln.charge_cents == 15000


# --- payer problems and absent days -------------------------------------------------------

def test_unknown_payer_and_dos_before_rules():
    lines = derive([session(), session("old", dos=date(2025, 12, 15))],
                   [row(), row("old", "p2")], [patient(payer=None), patient("p2")])
    assert "payer_unknown" in codes(one(lines))
    assert "no_rules_in_force" in codes(one(lines, "p2", date(2025, 12, 15)))


@pytest.mark.parametrize("status", ["absent", "no_show", "cancelled", "expected"])
def test_no_service_days(status):
    ln = one(derive([session()], [row(status=status, signed=False)]))
    assert (ln.status, ln.minutes_attended, ln.charge_cents, ln.reasons) == ("no_service", 0, 0, ())


def test_unknown_session_in_attendance_raises():
    with pytest.raises(ValueError, match="unknown session"):
        derive([session()], [row("zzz")])


def test_missing_diagnosis_blocks():
    ln = one(derive([session()], [row()], [patient(diagnoses=())]))
    assert "diagnosis_missing" in codes(ln, "block")


# --- readiness --------------------------------------------------------------------------

def test_patient_readiness_per_dos():
    s1 = session("s1", dos=MON)
    s2 = session("s2", dos=MON + timedelta(days=1), roster_closed=False, archive_seq=None)
    s3 = session("s3", dos=MON + timedelta(days=2))
    rows = [row("s1"), row("s2"), row("s3", status="no_show", signed=False), row("s1", "p2")]
    patients = [patient(), patient("p2")]
    got = patient_readiness("p1", MON, MON + timedelta(days=3), PROGRAM, patients,
                            [s1, s2, s3], rows, [auth()], RB)
    assert [(d.dos.day, d.scheduled, d.attended, d.roster_closed, d.verdict) for d in got] == [
        (2, True, True, True, "ready"),
        (3, True, True, False, "blocked"),
        (4, True, False, True, "no_service"),
        (5, False, False, False, "not_scheduled"),
    ]
    assert got[0].archive_seqs == (7,) and got[0].signed
    assert "roster_not_closed" in {r.code for r in got[1].reasons}
    # same verdict as the program-wide derivation
    lines = derive([s1, s2, s3], rows, patients, [auth()])
    assert [ln.status for ln in lines if ln.patient_id == "p1"] == ["ready", "blocked", "no_service"]


# --- scale ----------------------------------------------------------------------------------

def test_derivation_scales_linearly():
    import importlib.util
    import time
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "claim_lines.py"
    spec = importlib.util.spec_from_file_location("bench_claim_lines", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    make_synthetic = bench.make_synthetic

    def best(facts):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            derive_claim_lines(*facts)
            times.append(time.perf_counter() - t0)
        return min(times)

    small, big = best(make_synthetic(30, 28)), best(make_synthetic(120, 28))
    # 4x the rows: linear costs ~4x; quadratic would cost ~16x
    assert big < 9 * small, (small, big)


@pytest.mark.parametrize("payer,address,expected", [
    ("sunrise_medicaid_mco", {"address_line": "", "city": "", "state": "", "postal_code": ""}, True),
    ("sunrise_medicaid_mco", {"postal_code": ""}, True),
    ("sunrise_medicaid_mco", {}, False),
    ("self_pay", {"address_line": "", "city": "", "state": "", "postal_code": ""}, False),
])
def test_subscriber_address_missing(payer, address, expected):
    """837P 2010BA N3/N4: a patient without an address cannot be billed (issue 8); self-pay
    sends no claim."""
    line = one(derive([session()], [row()], patients=[patient(payer=payer, **address)]))
    assert ("subscriber_address_missing" in codes(line)) == expected
    if expected:
        r = next(r for r in line.reasons if r.code == "subscriber_address_missing")
        assert r.who_must_act == "billing" and "subscriber address missing" in r.message


def test_frozen_new_is_the_dataclass_built_at_once_and_refuses_a_missing_field():
    from portal.rules.facts import frozen_new

    made = frozen_new(AttendanceFact, {"session_id": "s1", "patient_id": "p1", "status": "late",
                                       "arrival": at(MON, 9, 30), "departure": None,
                                       "signed": True, "archive_differs": None})
    built = AttendanceFact("s1", "p1", "late", at(MON, 9, 30), None, True)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    with pytest.raises(AttributeError):
        made.status = "present"  # still frozen
    with pytest.raises(TypeError, match="every field"):
        frozen_new(AttendanceFact, {"session_id": "s1", "patient_id": "p1", "status": "late"})


def test_a_line_is_the_same_whichever_patient_of_the_group_is_derived_first():
    # derive_claim_lines works a patient-day out once per combination of rows (groups,
    # statuses, times, signatures, archive differences), payer and age group, and copies it
    # to the other patients with that combination. Put each patient first in turn (so their
    # days are worked out, not copied) and their lines must not change.
    days = [MON + timedelta(days=i) for i in (0, 2, 4, 7, 9)]
    sessions = []
    for d in days:
        sessions.append(session(f"am{d}", d, (9, 0), (10, 30), break_minutes=10))
        sessions.append(session(f"pm{d}", d, (10, 45), (12, 15), cohort_name="PM IOP",
                                modality="video" if d.day % 2 else "in_person",
                                patient_location="home",
                                facilitator_credential="CADC" if d == days[2] else "LCSW",
                                facilitator_npi=None if d == days[3] else "1234567893"))
    patients = [
        patient("p1"),
        patient("p2", age_group="adolescent"),
        patient("p3", diagnoses=()),
        patient("p4", diagnoses=("F32.1",)),
        patient("p5", payer="blueriver_ppo"),
        patient("p6", payer=None),
        patient("p7", other_level_days={"php": frozenset({days[1]})}),
        patient("p8", payer="blueriver_ppo", age_group="adolescent"),
    ]
    # Patients in pairs (p1 p2, p3 p4, ...) that differ in one thing the copy must respect
    # share their rows, except the late arrival and early departure times (which the copy
    # must respect too).
    rows = []
    for i, s in enumerate(sessions):
        for j, p in enumerate(patients):
            k = (i + j // 2) % 8
            if k == 0:
                rows.append(row(s.session_id, p.patient_id, "late",
                                arrival=s.actual_start + timedelta(minutes=40 + 20 * (j % 2))))
            elif k == 1:
                rows.append(row(s.session_id, p.patient_id, "left_early"))  # no departure time
            elif k == 7:
                rows.append(row(s.session_id, p.patient_id, "left_early",
                                departure=s.actual_end - timedelta(minutes=30 + 20 * (j % 2))))
            elif k == 2:
                rows.append(row(s.session_id, p.patient_id, signed=False))
            elif k == 3:
                rows.append(row(s.session_id, p.patient_id, "absent", signed=False))
            elif k == 4:
                rows.append(row(s.session_id, p.patient_id, archive_differs=41))
            else:
                rows.append(row(s.session_id, p.patient_id))
    auths = [auth(p.patient_id) for p in patients]

    def lines_of(pid, ordered_rows):
        return [ln for ln in derive_claim_lines(PROGRAM, patients, sessions, ordered_rows, auths, RB)
                if ln.patient_id == pid]

    together = derive_claim_lines(PROGRAM, patients, sessions, rows, auths, RB)
    assert len({(ln.code, ln.units, ln.modifiers, ln.minutes_attended) for ln in together}) > 5
    for p in patients:
        first = [r for r in rows if r.patient_id == p.patient_id] + \
                [r for r in rows if r.patient_id != p.patient_id]
        assert lines_of(p.patient_id, first) == [ln for ln in together if ln.patient_id == p.patient_id], \
            p.patient_id


_AM, _PM = "am", "pm"


@pytest.mark.parametrize("what, twin, rows_a, rows_b", [
    # The twin differs from the first patient in one thing only; the first patient's day is
    # worked out and may be copied to a twin whose rows and payer part are the same.
    # rows_*: per group, what differs from a signed "present" row.
    ("age group (adolescent minimum)", {"age_group": "adolescent"}, {}, {}),
    ("payer", {"payer": "blueriver_ppo"}, {}, {}),
    ("no payer", {"payer": None}, {}, {}),
    ("arrival", {}, {_PM: {"status": "late", "arrival": at(MON, 11, 0)}},
     {_PM: {"status": "late", "arrival": at(MON, 11, 15)}}),
    ("departure", {}, {_PM: {"status": "left_early", "departure": at(MON, 11, 0)}},
     {_PM: {"status": "left_early", "departure": at(MON, 11, 15)}}),
    ("status", {}, {}, {_PM: {"status": "absent"}}),
    ("which group", {}, {_PM: None}, {_AM: None}),  # None: not on that group's roster
    ("signature", {}, {}, {_PM: {"signed": False}}),
    ("archive difference", {}, {}, {_PM: {"archive_differs": 41}}),
    ("diagnosis", {"diagnoses": ("F32.1",)}, {}, {}),
    ("no diagnosis", {"diagnoses": ()}, {}, {}),
    ("other level of care", {"other_level_days": {"php": frozenset({MON})}}, {}, {}),
])
def test_twins_differing_in_one_thing_get_their_own_lines(what, twin, rows_a, rows_b):
    # Two groups on one day (09:00-10:30, 10:45-11:45: 150 min, under Sunrise's adult daily
    # minimum of 180, over its adolescent one of 120).
    sessions = [session(_AM, MON, (9, 0), (10, 30)), session(_PM, MON, (10, 45), (11, 45))]
    first = patient("a")
    second = patient("b", **twin)
    rows_a = [row(sid, "a", **rows_a.get(sid, {})) for sid in (_AM, _PM) if rows_a.get(sid, {}) is not None]
    rows_b = [row(sid, "b", **rows_b.get(sid, {})) for sid in (_AM, _PM) if rows_b.get(sid, {}) is not None]
    auths = [auth("a"), auth("b")]

    def derived(rows):
        return {ln.patient_id: ln for ln in derive_claim_lines(
            PROGRAM, [first, second], sessions, rows, auths, RB)}

    a_first, b_first = derived(rows_a + rows_b), derived(rows_b + rows_a)
    assert a_first == b_first, what
    a, b = a_first["a"], a_first["b"]
    assert (a.code, a.units, a.modifiers, a.minutes_attended, a.status,
            [r.code for r in a.reasons]) != \
           (b.code, b.units, b.modifiers, b.minutes_attended, b.status,
            [r.code for r in b.reasons]), f"{what}: the twins' lines should differ"
