"""Authorization rules: every legal and illegal transition, payer clocks (weekends, DST, year
end, expedited vs standard, per payer type), per-week buckets at their boundary, ICD-10-CM
format, overlaps and alerts."""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from portal.rules import authorizations as ar
from portal.rules.authorizations import Duration

CHI = ZoneInfo("America/Chicago")

LEGAL = {
    ("draft", "submitted"), ("submitted", "pending"), ("pending", "approved"),
    ("pending", "partially_approved"), ("pending", "denied"), ("denied", "p2p_requested"),
    ("denied", "appeal_filed"), ("p2p_requested", "p2p_held"), ("p2p_held", "upheld"),
    ("p2p_held", "overturned"), ("upheld", "appeal_filed"), ("appeal_filed", "appeal_approved"),
    ("appeal_filed", "appeal_denied"),
}


@pytest.mark.parametrize("current,target", list(itertools.product(ar.STATES, ar.STATES)))
def test_every_transition_is_legal_or_refused(current, target):
    if (current, target) in LEGAL:
        ar.check_transition(current, target)
    else:
        with pytest.raises(ar.IllegalTransition) as exc:
            ar.check_transition(current, target)
        assert ar.STATE_LABELS[current].lower() in str(exc.value)


def test_table_matches_the_issue_and_states_partition():
    assert {(a, b) for a, bs in ar.TRANSITIONS.items() for b in bs} == LEGAL
    # every non-draft state is approved, holding or denied: a line always has a verdict
    assert (ar.APPROVED_STATES | ar.HOLDING_STATES | ar.DENIED_STATES | {"draft"}) == set(ar.STATES)
    assert not (ar.APPROVED_STATES & ar.HOLDING_STATES or ar.HOLDING_STATES & ar.DENIED_STATES)


@pytest.mark.parametrize("bad", [("draft", "nonsense"), ("nonsense", "draft")])
def test_unknown_states_refused(bad):
    with pytest.raises(ar.IllegalTransition):
        ar.check_transition(*bad)


def utc(y, m, d, hh=0, mm=0, tz=CHI):
    return datetime(y, m, d, hh, mm, tzinfo=tz).astimezone(timezone.utc)


CLOCKS = [
    # (label, start local, duration, expected local)
    ("72h plain", (2026, 6, 1, 10), Duration("hours", 72), (2026, 6, 4, 10)),
    # 72 elapsed hours across spring-forward (8 Mar 2026) read 1 h later on the wall clock
    ("72h across DST spring", (2026, 3, 7, 10), Duration("hours", 72), (2026, 3, 10, 11)),
    ("72h across DST fall", (2026, 10, 31, 10), Duration("hours", 72), (2026, 11, 3, 9)),
    # calendar days keep the wall clock across DST
    ("7d across DST spring", (2026, 3, 5, 15), Duration("calendar_days", 7), (2026, 3, 12, 15)),
    ("7d across DST fall", (2026, 10, 29, 15), Duration("calendar_days", 7), (2026, 11, 5, 15)),
    ("7d across year end", (2026, 12, 28, 9), Duration("calendar_days", 7), (2027, 1, 4, 9)),
    ("14d across year end", (2025, 12, 22, 9), Duration("calendar_days", 14), (2026, 1, 5, 9)),
    ("7d over a weekend is not extended", (2026, 6, 5, 16), Duration("calendar_days", 7),
     (2026, 6, 12, 16)),
    ("2 business days from Thursday", (2026, 6, 4, 11), Duration("business_days", 2),
     (2026, 6, 8, 11)),
    ("2 business days from Friday", (2026, 6, 5, 11), Duration("business_days", 2),
     (2026, 6, 9, 11)),
    ("business days from Saturday start Monday", (2026, 6, 6, 11), Duration("business_days", 2),
     (2026, 6, 10, 0)),
    ("5 business days across year end", (2026, 12, 30, 9), Duration("business_days", 5),
     (2027, 1, 6, 9)),
    ("48h across year end", (2026, 12, 31, 20), Duration("hours", 48), (2027, 1, 2, 20)),
]


@pytest.mark.parametrize("label,start,duration,expected", CLOCKS, ids=[c[0] for c in CLOCKS])
def test_add_duration(label, start, duration, expected):
    assert ar.add_duration(utc(*start), duration, CHI) == utc(*expected)


def test_add_duration_refuses_naive():
    with pytest.raises(ValueError):
        ar.add_duration(datetime(2026, 1, 1), Duration("hours", 1), CHI)


POLICY_CASES = [
    # payer key, kind, request date, regime, expedited, standard
    ("sunrise_medicaid_mco", "medicaid", date(2026, 3, 1), "cms_0057_f", ("hours", 72),
     ("calendar_days", 7)),
    ("sunrise_medicaid_mco", "medicaid", date(2025, 12, 31), "legacy", ("hours", 72),
     ("calendar_days", 14)),
    ("some_ma_plan", "medicare", date(2026, 1, 1), "cms_0057_f", ("hours", 72),
     ("calendar_days", 7)),
    ("some_chip_plan", "chip", date(2026, 2, 1), "cms_0057_f", ("hours", 72), ("calendar_days", 7)),
    ("blueriver_ppo", "commercial", date(2026, 3, 1), "contract", ("hours", 72),
     ("business_days", 5)),
    ("keystone_commercial_hmo", "commercial", date(2026, 3, 1), "legacy", ("hours", 72),
     ("calendar_days", 14)),
    ("unknown_commercial", "commercial", date(2026, 3, 1), "legacy", ("hours", 72),
     ("calendar_days", 14)),
]


@pytest.mark.parametrize("key,kind,on,regime,expedited,standard", POLICY_CASES)
def test_policy_per_payer_type(key, kind, on, regime, expedited, standard):
    p = ar.policy_for(key, kind, on)
    assert p.regime == regime
    assert (p.expedited.kind, p.expedited.amount) == expedited
    assert (p.standard.kind, p.standard.amount) == standard


def test_decision_due_expedited_vs_standard_for_medicaid():
    p = ar.policy_for("sunrise_medicaid_mco", "medicaid", date(2026, 11, 27))
    sent = utc(2026, 11, 27, 16)  # a Friday afternoon
    assert ar.decision_due(sent, True, p, CHI) == utc(2026, 11, 30, 16)
    assert ar.decision_due(sent, False, p, CHI) == utc(2026, 12, 4, 16)
    assert p.p2p_window == Duration("hours", 48)
    assert p.week_start == 6  # Sunday


def test_policy_file_errors_are_named():
    data = ar.load_policies()
    bad = {**data, "payers": {"x": {"regime": "contract", "expedited": {"weeks": 1},
                                    "standard": {"calendar_days": 7}}}}
    with pytest.raises(ar.PolicyError, match="x expedited"):
        ar.policy_for("x", "commercial", date(2026, 1, 1), data=bad)
    bad = {**data, "payers": {"x": {"week_start": "someday"}}}
    with pytest.raises(ar.PolicyError, match="week_start"):
        ar.policy_for("x", "commercial", date(2026, 1, 1), data=bad)


@pytest.mark.parametrize("dos,start,expected", [
    (date(2026, 11, 29), 6, date(2026, 11, 29)),  # Sunday week: a Sunday starts it
    (date(2026, 11, 28), 6, date(2026, 11, 22)),  # Saturday ends it
    (date(2026, 11, 29), 0, date(2026, 11, 23)),  # Monday week: Sunday ends it
    (date(2026, 11, 30), 0, date(2026, 11, 30)),
    (date(2027, 1, 1), 0, date(2026, 12, 28)),    # across year end
])
def test_week_of(dos, start, expected):
    assert ar.week_of(dos, start) == expected


@pytest.mark.parametrize("raw,norm", [("F10.20", "F10.20"), ("f1020", "F10.20"), ("F11", "F11"),
                                      (" F19.939 ", "F19.939"), ("Z71.41", "Z71.41"),
                                      ("T40.1X1A", "T40.1X1A")])
def test_icd10cm_accepts(raw, norm):
    assert ar.normalize_icd10cm(raw) == norm


@pytest.mark.parametrize("raw", ["", "F1", "10.20", "F10.", "F10.20000", "FF0.20", "F10-20",
                                 "F10.2 0", "<b>F10</b>"])
def test_icd10cm_refuses(raw):
    with pytest.raises(ar.DiagnosisFormatError):
        ar.normalize_icd10cm(raw)


def test_parse_diagnoses_principal_must_be_sud():
    assert ar.parse_diagnoses("F10.20, F41.1") == (["F10.20", "F41.1"], [])
    codes, problems = ar.parse_diagnoses("F41.1 F10.20")
    assert problems and "F41.1" in problems[0]
    codes, problems = ar.parse_diagnoses("F10.20, banana")
    assert codes == ["F10.20"] and "banana" in problems[0]
    assert ar.parse_diagnoses("")[1]


def test_dimensions_need_six_ratings_and_rationales():
    ratings = {i: "2" for i in range(1, 7)}
    why = {i: f"reason {i}" for i in range(1, 7)}
    dims, problems = ar.check_dimensions("3", ratings, why)
    assert len(dims) == 6 and not problems and dims[3].name == "Readiness to change"
    dims, problems = ar.check_dimensions("4", {**ratings, 2: "7"}, {**why, 5: " "})
    assert len(dims) == 4 and len(problems) == 2
    assert ar.check_dimensions("2", ratings, why)[1]


def W(ident, start, end, code="H0015", state="approved", number="A1"):
    return ar.Window(ident, number, code, start, end, state)


def test_overlap_only_as_documented_extension():
    orig = W(1, date(2026, 11, 1), date(2026, 11, 30))
    ext = W(None, date(2026, 11, 25), date(2026, 12, 20), number="")
    assert ar.overlap_problems(ext, [orig], extends=None)
    assert ar.overlap_problems(ext, [orig], extends=1) == []
    # another code, a denied request or an adjacent window do not overlap
    assert ar.overlap_problems(W(None, date(2026, 11, 5), date(2026, 11, 6), code="H2019"),
                               [orig], None) == []
    assert ar.overlap_problems(ext, [W(1, date(2026, 11, 1), date(2026, 11, 30), state="denied")],
                               None) == []
    assert ar.overlap_problems(W(None, date(2026, 12, 1), date(2026, 12, 9)), [orig], None) == []


def test_alerts_at_thresholds():
    th = ar.Alerts(units_left=3, days_to_expiry=7, review_before_end_days=5)
    today = date(2026, 11, 20)
    fact = ar.AlertFact("A1", date(2026, 11, 1), date(2026, 11, 25), 20, 17)
    codes = {a.code for a in ar.alerts_for(fact, today, th)}
    assert codes == {"units_low", "expiring", "review_due"}
    fact = ar.AlertFact("A1", date(2026, 11, 1), date(2026, 11, 28), 20, 16)
    assert ar.alerts_for(fact, today, th) == []
    assert ar.alerts_for(ar.AlertFact("A1", today, today - timedelta(days=1), 1, 0), today,
                         th)[0].code == "expired"


def test_levels():
    assert ar.level_kind("3.5") == "residential" and ar.level_kind("2.5") == "php"
    assert ar.level_kind("2.1") == "iop" and ar.level_kind("9") is None
    assert "2.1" not in ar.STEP_DOWN_FROM and "3.7" in ar.STEP_DOWN_FROM
