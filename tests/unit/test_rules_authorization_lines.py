"""Claim-line enforcement of authorizations: pending requests hold their days, denials block,
per-week buckets follow the payer's week, an extension overlapping its original, and a day of
IOP on a day of a higher level of care."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from portal.rules.facts import AuthorizationFact
from tests.unit.test_rules_claim_lines import MON, codes, derive, one, patient, row, session


def auth(status="approved", start=date(2026, 11, 1), end=date(2026, 11, 30), units=30,
         number="IOP-1", per_week=None, week_start=0):
    return AuthorizationFact("p1", number, start, end, units, "H0015", status=status,
                             units_per_week=per_week, week_start=week_start)


@pytest.mark.parametrize("status,line_status,code", [
    ("submitted", "held", "authorization_pending"),
    ("pending", "held", "authorization_pending"),
    ("p2p_requested", "held", "authorization_pending"),
    ("p2p_held", "held", "authorization_pending"),
    ("appeal_filed", "held", "authorization_pending"),
    ("denied", "blocked", "authorization_denied"),
    ("upheld", "blocked", "authorization_denied"),
    ("appeal_denied", "blocked", "authorization_denied"),
    ("draft", "blocked", "authorization_missing"),
    ("approved", "ready", None),
    ("partially_approved", "ready", None),
    ("overturned", "ready", None),
    ("appeal_approved", "ready", None),
])
def test_status_decides_the_line(status, line_status, code):
    ln = one(derive([session()], [row()], auths=[auth(status)]))
    assert ln.status == line_status
    if code:
        assert code in codes(ln)
    if line_status == "held":
        [hold] = [r for r in ln.reasons if r.severity == "hold"]
        assert hold.message.startswith("held, authorization pending")


def test_held_day_with_another_fault_is_blocked():
    ln = one(derive([session()], [row(signed=False)], auths=[auth("pending")]))
    assert ln.status == "blocked" and "authorization_pending" in codes(ln)


def test_approved_auth_wins_over_a_pending_extension():
    lines = derive([session()], [row()], auths=[auth("pending", number="EXT"), auth()])
    assert one(lines).status == "ready" and one(lines).authorization_number == "IOP-1"


def _week(days, start=MON):
    return [session(f"s{i}", dos=start + timedelta(days=i)) for i in range(days)]


@pytest.mark.parametrize("week_start,blocked_days", [
    # Mon 2 Nov .. Sun 8 Nov, 4 units/week. Monday weeks: the 5th day (Fri) is over.
    (0, [date(2026, 11, 6), date(2026, 11, 7), date(2026, 11, 8)]),
    # Sunday weeks: Mon-Sat 2-7 Nov is one week (Fri, Sat over); Sun 8 Nov starts a new one.
    (6, [date(2026, 11, 6), date(2026, 11, 7)]),
])
def test_weekly_bucket_at_its_boundary(week_start, blocked_days):
    sessions = _week(7)
    lines = derive(sessions, [row(s.session_id) for s in sessions],
                   auths=[auth(per_week=4, week_start=week_start)])
    blocked = [ln.dos for ln in lines if "authorization_week_units_exhausted" in codes(ln, "block")]
    assert blocked == blocked_days


def test_extension_overlapping_its_original_drains_in_order():
    original = auth(start=date(2026, 10, 20), end=date(2026, 11, 4), units=2, number="ORIG")
    extension = auth(start=date(2026, 11, 3), end=date(2026, 11, 30), units=10, number="EXT")
    sessions = _week(4)
    lines = derive(sessions, [row(s.session_id) for s in sessions], auths=[extension, original])
    assert [ln.authorization_number for ln in lines] == ["ORIG", "ORIG", "EXT", "EXT"]
    assert all(ln.status == "ready" for ln in lines)


@pytest.mark.parametrize("kind", ["residential", "php"])
def test_iop_on_a_higher_level_day_is_blocked(kind):
    p = replace(patient(), other_level_days={kind: frozenset({MON})})
    ln = one(derive([session()], [row()], [p], auths=[auth()]))
    assert ln.status == "blocked" and "exclusive_level_same_day" in codes(ln, "block")
