"""The time-plausibility rules at their margins (portal/rules/time_plausibility.py), including a
DST day: comparisons are in real time, so the spring-forward hour changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from portal.rules.time_plausibility import (TimeMargins, close_before_end, signature_too_early,
                                            times_in_future)

CHI = ZoneInfo("America/Chicago")
START = datetime(2026, 12, 2, 9, 0, tzinfo=CHI).astimezone(timezone.utc)
END = datetime(2026, 12, 2, 12, 0, tzinfo=CHI).astimezone(timezone.utc)
M = TimeMargins()  # sign_early=30, future=5, close_early=0
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


@pytest.mark.parametrize("now, refused", [
    (START - 30 * MIN - SEC, True),          # one second before signing opens
    (START - 30 * MIN, False),               # exactly at the margin
    (START - 2 * 60 * MIN - 16 * MIN, True),  # 6:44 AM for a 9:00 AM group (the reported case)
    (START, False),
    (END + 60 * MIN, False),                 # late signatures are a different question
])
def test_signature_margin(now, refused):
    msg = signature_too_early(now, START, M, CHI)
    assert bool(msg) is refused
    if refused:
        assert "8:30 AM" in msg and "9:00 AM" in msg


def test_signature_margin_is_configurable():
    wide = TimeMargins(sign_early=120)
    assert signature_too_early(START - 120 * MIN, START, wide, CHI) is None
    assert signature_too_early(START - 121 * MIN, START, wide, CHI)
    assert signature_too_early(START - SEC, START, TimeMargins(sign_early=0), CHI)


@pytest.mark.parametrize("now, refused", [
    (END - SEC, True),
    (END, False),
    (END + MIN, False),
    (START - 2 * 60 * MIN, True),  # closed at 6:45 AM with times 9:05-12:00
])
def test_close_before_recorded_end(now, refused):
    msg = close_before_end(now, END, M, CHI)
    assert bool(msg) is refused
    if refused:
        assert "12:00 PM" in msg


def test_close_margin_is_configurable():
    m = TimeMargins(close_early=10)
    assert close_before_end(END - 10 * MIN, END, m, CHI) is None
    assert close_before_end(END - 10 * MIN - SEC, END, m, CHI)


@pytest.mark.parametrize("now, field", [
    (END - 5 * MIN, None),                  # end exactly 5 minutes ahead: allowed
    (END - 5 * MIN - SEC, "end"),           # one second more: refused
    (START - 5 * MIN - SEC, "start"),       # start in the future is reported first
    (END + 60 * MIN, None),
])
def test_times_in_future(now, field):
    got = times_in_future(now, START, END, M, CHI)
    assert (got[0] if got else None) == field


def test_evening_times_saved_in_the_morning_are_refused():
    evening_start = datetime(2026, 12, 2, 17, 30, tzinfo=CHI)
    evening_end = datetime(2026, 12, 2, 20, 30, tzinfo=CHI)
    field, msg = times_in_future(datetime(2026, 12, 2, 6, 50, tzinfo=CHI), evening_start,
                                 evening_end, M, CHI)
    assert field == "start" and "5:30 PM" in msg and "6:50 AM" in msg


def test_dst_spring_forward_uses_real_time():
    # 2027-03-14: 2:00 AM CST jumps to 3:00 AM CDT. A 3:30 AM CDT group opens for signing at
    # 3:00 AM CDT, which is 30 real minutes earlier, not 90.
    start = datetime(2027, 3, 14, 3, 30, tzinfo=CHI)
    assert signature_too_early(datetime(2027, 3, 14, 3, 0, tzinfo=CHI), start, M, CHI) is None
    assert signature_too_early(datetime(2027, 3, 14, 1, 59, tzinfo=CHI), start, M, CHI)


def test_margins_from_config():
    m = TimeMargins.from_config({"PORTAL_SIGN_EARLY_MINUTES": "45", "PORTAL_FUTURE_TIME_MINUTES": 0})
    assert m == TimeMargins(sign_early=45, future=0, close_early=0)
    assert TimeMargins.from_config({}) == TimeMargins()
