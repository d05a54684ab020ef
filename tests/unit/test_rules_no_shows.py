"""Table-driven tests of the no-show rules at their margins (grace minute 15 vs 16, notice 23h59
vs 24h, DST days, consecutive vs scattered, the 30-day window boundary, payer change, fees)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from portal.rules import no_show_fees as fees
from portal.rules.no_shows import (CLINICAL_CONCERN, EXCUSED, LATE_CANCELLATION, NO_SHOW,
                                   STEP_DOWN, TIMELY_CANCELLATION, UNCLASSIFIED, Notice,
                                   Occurrence, PolicyTerms, classify, overlap, pattern,
                                   payer_on, policy_in_force, triggers, weekly_counts)

TZ = ZoneInfo("America/Chicago")
POLICY = PolicyTerms(version=1, effective_from=date(2026, 1, 1), effective_to=None,
                     grace_minutes=15, notice_hours=24, fee_cents=2500, uniform=True)


def local(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


def run(status, start, *, arrival=None, notice_at=None, recorded_at=None, excuse=False,
        policy=POLICY, now=None):
    end = start + timedelta(hours=3)
    notice = (Notice("cancellation", notice_at, recorded_at or notice_at)
              if notice_at is not None else None)
    exc = Notice("excused", start, start, "Flu, doctor's note") if excuse else None
    return classify(status, scheduled_start=start, scheduled_end=end, arrival=arrival,
                    notice=notice, excuse=exc, policy=policy, tz=TZ,
                    now=now or end + timedelta(hours=1))


START = local(2026, 11, 17, 9)
CASES = [
    # (name, status, kwargs, expected code or None)
    ("on time", "present", {}, None),
    ("late arrival keeps its partial minutes", "late", {"arrival": START + timedelta(minutes=40)}, None),
    ("not arrived at minute 15: within grace", "expected", {"now": START + timedelta(minutes=15, seconds=59)}, None),
    ("not arrived at minute 16: no-show", "expected", {"now": START + timedelta(minutes=16)}, NO_SHOW),
    ("marked absent", "absent", {}, NO_SHOW),
    ("cancelled on the roster without a notice time", "cancelled", {}, UNCLASSIFIED),
    ("notice 24h00 before", "cancelled", {"notice_at": START - timedelta(hours=24)}, TIMELY_CANCELLATION),
    ("notice 23h59 before", "cancelled", {"notice_at": START - timedelta(hours=23, minutes=59)}, LATE_CANCELLATION),
    ("notice after the start", "cancelled", {"notice_at": START + timedelta(minutes=5)}, LATE_CANCELLATION),
    ("notice on an unmarked row", "expected", {"notice_at": START - timedelta(hours=30)}, TIMELY_CANCELLATION),
    ("timely notice recorded after the group ended", "cancelled",
     {"notice_at": START - timedelta(days=2), "recorded_at": START + timedelta(hours=4)}, LATE_CANCELLATION),
    ("came anyway after cancelling", "present", {"notice_at": START - timedelta(days=2)}, None),
    ("documented excuse beats a no-show", "absent", {"excuse": True}, EXCUSED),
    ("no policy in force", "absent", {"policy": None}, UNCLASSIFIED),
]


@pytest.mark.parametrize("name,status,kw,expected", CASES, ids=[c[0] for c in CASES])
def test_classify(name, status, kw, expected):
    got = run(status, START, **kw)
    assert (got.code if got else None) == expected
    if got and got.code != UNCLASSIFIED:
        assert got.policy_version == 1 and got.detail


def test_no_policy_and_unmarked_waits_for_the_group_to_end():
    assert run("expected", START, policy=None, now=START + timedelta(hours=1)) is None
    assert run("expected", START, policy=None).code == UNCLASSIFIED


DST = [
    # spring forward 2026-03-08: 9:00 Sat -> 9:00 Sun is 24 wall-clock hours, 23 real hours
    ("spring: 24 wall hours is timely", local(2026, 3, 8, 9), local(2026, 3, 7, 9), TIMELY_CANCELLATION),
    ("spring: 23h59 wall is late", local(2026, 3, 8, 9), local(2026, 3, 7, 9, 1), LATE_CANCELLATION),
    # fall back 2026-11-01: 9:30 Sat -> 9:00 Sun is 23h30 on the wall (24h30 real): late
    ("fall: 23h30 wall is late though 24h30 real", local(2026, 11, 1, 9), local(2026, 10, 31, 9, 30), LATE_CANCELLATION),
    ("fall: 24 wall hours is timely", local(2026, 11, 1, 9), local(2026, 10, 31, 9), TIMELY_CANCELLATION),
]


@pytest.mark.parametrize("name,start,notice_at,expected", DST, ids=[d[0] for d in DST])
def test_notice_on_dst_days_uses_the_program_wall_clock(name, start, notice_at, expected):
    assert run("cancelled", start, notice_at=notice_at).code == expected


@pytest.mark.parametrize("minutes,expected", [(15, None), (16, NO_SHOW)])
@pytest.mark.parametrize("start", [local(2026, 3, 8, 1, 50), local(2026, 11, 1, 1, 50)],
                         ids=["spring-forward", "fall-back"])
def test_grace_across_the_dst_jump_is_real_minutes(start, minutes, expected):
    # 1:50 AM + 16 real minutes crosses the 2:00 AM jump: the wall clock says 3:06 or 1:06.
    got = run("expected", start, now=start + timedelta(minutes=minutes))
    assert (got.code if got else None) == expected


def occ(*pairs):
    return [Occurrence(d, c) for d, c in pairs]


D = date(2026, 11, 2)
TRIGGER_CASES = [
    ("two consecutive", occ((D, NO_SHOW), (D + timedelta(1), NO_SHOW)), [(D + timedelta(1), "consecutive")]),
    ("scattered two: nothing", occ((D, NO_SHOW), (D + timedelta(1), None), (D + timedelta(2), NO_SHOW)), []),
    ("scattered three within 30 days", occ((D, NO_SHOW), (D + timedelta(1), None), (D + timedelta(2), LATE_CANCELLATION),
                                         (D + timedelta(3), None), (D + timedelta(29), NO_SHOW)),
     [(D + timedelta(29), "window")]),
    ("third on day 31: outside the window", occ((D, NO_SHOW), (D + timedelta(1), None), (D + timedelta(2), NO_SHOW),
                                               (D + timedelta(3), None), (D + timedelta(30), NO_SHOW)), []),
    ("excused between keeps the run", occ((D, NO_SHOW), (D + timedelta(1), EXCUSED), (D + timedelta(2), NO_SHOW)),
     [(D + timedelta(2), "consecutive")]),
    ("one episode, one letter", occ((D, NO_SHOW), (D + timedelta(1), NO_SHOW), (D + timedelta(2), NO_SHOW)),
     [(D + timedelta(1), "consecutive")]),
    ("timely cancellations never count", occ((D, TIMELY_CANCELLATION), (D + timedelta(1), TIMELY_CANCELLATION)), []),
]


@pytest.mark.parametrize("name,history,expected", TRIGGER_CASES, ids=[c[0] for c in TRIGGER_CASES])
def test_triggers(name, history, expected):
    got = triggers(history, lambda d: POLICY)
    assert [(t.dos, t.kind) for t in got] == expected
    for t in got:
        assert t.reason and t.dates


def test_no_triggers_without_a_policy():
    assert triggers(occ((D, NO_SHOW), (D + timedelta(1), NO_SHOW)), lambda d: None) == []


def test_patterns():
    today = D + timedelta(10)
    concern = pattern(occ((D, NO_SHOW), (D + timedelta(5), LATE_CANCELLATION)), today)
    assert concern.kind == CLINICAL_CONCERN and "Nov 2" in concern.reason
    step = pattern(occ((D, TIMELY_CANCELLATION), (D + timedelta(3), TIMELY_CANCELLATION),
                       (D + timedelta(4), None)), today)
    assert step.kind == STEP_DOWN and "step-down" in step.reason
    assert pattern(occ((D, NO_SHOW)), today) is None
    assert pattern(occ((D - timedelta(40), NO_SHOW), (D - timedelta(35), NO_SHOW)), today) is None


def test_weekly_counts_bucket_by_iso_week():
    weeks = weekly_counts([(date(2026, 11, 16), NO_SHOW), (date(2026, 11, 22), NO_SHOW),
                           (date(2026, 11, 23), LATE_CANCELLATION)], date(2026, 11, 25), weeks=3)
    assert [w.week_start for w in weeks] == [date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)]
    assert weeks[1].counts == {NO_SHOW: 2} and weeks[2].counts == {LATE_CANCELLATION: 1}


def test_policy_versions_and_overlap():
    v1 = PolicyTerms(1, date(2026, 1, 1), date(2026, 6, 30), 15, 24, 2500)
    v2 = PolicyTerms(2, date(2026, 7, 1), None, 10, 48, 3000)
    assert policy_in_force([v1, v2], date(2026, 6, 30)) is v1
    assert policy_in_force([v1, v2], date(2026, 7, 1)) is v2
    assert policy_in_force([v1, v2], date(2025, 12, 31)) is None
    assert overlap([v1], date(2026, 6, 30), None) is v1
    assert overlap([v1], date(2026, 7, 1), None) is None
    assert overlap([v2], date(2026, 1, 1), date(2026, 7, 1)) is v2


def test_payer_change_mid_month():
    spans = [(date(2026, 10, 1), "self_pay"), (date(2026, 11, 16), "sunrise_medicaid_mco")]
    assert payer_on(spans, date(2026, 11, 15)) == "self_pay"
    assert payer_on(spans, date(2026, 11, 16)) == "sunrise_medicaid_mco"
    assert payer_on(spans, date(2026, 9, 30)) is None


ABSENCE = datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc)
ACK = ABSENCE - timedelta(days=10)
FEE_CASES = [
    # (name, classification, payer kind, contract, cap, qmb, policy, ack, forbidding, allowed, refusal codes)
    ("self-pay no-show", NO_SHOW, "self_pay", "allowed", None, False, POLICY, ACK, (), True, []),
    ("self-pay late cancellation", LATE_CANCELLATION, "self_pay", "allowed", None, False, POLICY, ACK, (), True, []),
    ("timely cancellation never", TIMELY_CANCELLATION, "self_pay", "allowed", None, False, POLICY, ACK, (), False, ["classification"]),
    ("excused never", EXCUSED, "self_pay", "allowed", None, False, POLICY, ACK, (), False, ["classification"]),
    ("Medicaid refused", NO_SHOW, "medicaid", "forbidden", None, False, POLICY, ACK, (), False, ["medicaid"]),
    ("QMB refused", NO_SHOW, "medicare", None, None, True, POLICY, ACK, (), False, ["qmb"]),
    ("Medicare under a uniform policy", NO_SHOW, "medicare", None, None, False, POLICY, ACK, (), True, []),
    ("Medicare, policy not uniform", NO_SHOW, "medicare", None, None, False,
     PolicyTerms(1, date(2026, 1, 1), None, 15, 24, 2500, uniform=False), ACK, (), False, ["medicare_not_uniform"]),
    ("Medicare, a contract forbids it elsewhere", NO_SHOW, "medicare", None, None, False, POLICY, ACK,
     ("Keystone",), False, ["medicare_not_uniform"]),
    ("commercial contract allows", NO_SHOW, "commercial", "allowed", 9000, False, POLICY, ACK, (), True, []),
    ("commercial contract forbids", NO_SHOW, "commercial", "forbidden", None, False, POLICY, ACK, (), False, ["contract"]),
    ("commercial contract silent", NO_SHOW, "commercial", None, None, False, POLICY, ACK, (), False, ["contract"]),
    ("over the contract cap", NO_SHOW, "commercial", "allowed", 2000, False, POLICY, ACK, (), False, ["cap"]),
    ("no acknowledgment", NO_SHOW, "self_pay", "allowed", None, False, POLICY, None, (), False, ["no_acknowledgment"]),
    ("acknowledged after the absence", NO_SHOW, "self_pay", "allowed", None, False, POLICY,
     ABSENCE + timedelta(minutes=1), (), False, ["no_acknowledgment"]),
    ("acknowledged at the very minute", NO_SHOW, "self_pay", "allowed", None, False, POLICY, ABSENCE, (), False,
     ["no_acknowledgment"]),
    ("no policy", NO_SHOW, "self_pay", "allowed", None, False, None, ACK, (), False, ["no_policy"]),
]


@pytest.mark.parametrize("name,cls,kind,contract,cap,qmb,policy,ack,forbidding,allowed,codes", FEE_CASES,
                         ids=[c[0] for c in FEE_CASES])
def test_fee_decision(name, cls, kind, contract, cap, qmb, policy, ack, forbidding, allowed, codes):
    d = fees.fee_decision(cls, payer_kind=kind, contract=contract, cap_cents=cap, qmb=qmb,
                          policy=policy, acknowledged_at=ack, absence_at=ABSENCE,
                          forbidding_payers=forbidding)
    assert d.allowed is allowed
    assert [r.code for r in d.refusals] == codes
    assert d.amount_cents == (2500 if allowed else 0)
    for r in d.refusals:
        assert r.source and r.message  # every refusal names its rule and source


def test_medicaid_refusal_names_the_rule_and_source():
    d = fees.fee_decision(NO_SHOW, payer_kind="medicaid", contract=None, cap_cents=None, qmb=False,
                          policy=POLICY, acknowledged_at=ACK, absence_at=ABSENCE)
    assert "42 CFR 447.15" in d.summary and "Medicaid" in d.summary


# ---- letters -----------------------------------------------------------------------------
from portal.rules.no_show_letters import (PLACEHOLDERS, LetterError, build_letter,  # noqa: E402
                                          disclosing_words)

VALUES = {"first_name": "Lan", "missed_dates": "Nov 16 and Nov 17", "phone": "(312) 555-0142",
          "reply_by": "Nov 24", "counselor": "Priya Raman", "sender": "Harbor Health Services"}
ADDR = ("Thi Lan Nguyen", "1 Elm St", "Chicago, IL 60601")


def test_every_placeholder_is_filled():
    letter = build_letter(VALUES, sender="Harbor Health Services", return_address=("410 N Harbor Dr",),
                          recipient=ADDR)
    assert set(PLACEHOLDERS) == set(VALUES)
    for v in VALUES.values():
        assert v in letter.body
    assert "$" not in letter.body and "{" not in letter.body


@pytest.mark.parametrize("missing", sorted(VALUES))
def test_a_missing_placeholder_stops_the_letter(missing):
    with pytest.raises(LetterError, match=missing):
        build_letter({**VALUES, missing: "  "}, sender="Harbor Health Services",
                     return_address=("410 N Harbor Dr",), recipient=ADDR)


@pytest.mark.parametrize("sender", ["Lakeshore Recovery IOP", "Harbor Addiction Services",
                                    "Northside Substance Use Clinic", "Eastside Treatment Center"])
def test_a_disclosing_sender_is_refused(sender):
    with pytest.raises(LetterError, match="42 CFR Part 2"):
        build_letter({**VALUES, "sender": sender}, sender=sender, return_address=("410 N Harbor Dr",),
                     recipient=ADDR)


def test_no_letter_without_an_address():
    with pytest.raises(LetterError, match="mailing address"):
        build_letter(VALUES, sender="Harbor Health Services", return_address=("x",), recipient=("Lan",))


def test_disclosing_words_are_whole_words():
    assert disclosing_words("Druggist Road") == []
    assert disclosing_words("your drug screen") == ["drug"]
