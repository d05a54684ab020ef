"""Dates of service and minutes on the days America/Chicago changes its clocks.

2026-03-08 (spring forward, 2:00 -> 3:00) and 2026-11-01 (fall back, 2:00 -> 1:00): a 9:00-12:00
group is 9:00-12:00 local and 180 real minutes on both; a late-night group across the change
counts the real elapsed time, not the wall-clock difference.
"""
from __future__ import annotations

from datetime import date, time, timezone

import pytest

from portal.clock import local_to_utc, minutes_between
from portal.services.schedule import ensure_sessions
from portal.extensions import db
from portal.models import Cohort


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 11, 1), date(2026, 11, 2)])
def test_morning_group_keeps_wall_clock_and_180_minutes(world, day):
    session = next(s for s in ensure_sessions(world.program, day) if s.cohort.name == "AM IOP")
    tz = world.program.tz
    assert session.scheduled_start.astimezone(tz).time() == time(9, 0)
    assert session.scheduled_end.astimezone(tz).time() == time(12, 0)
    assert minutes_between(session.scheduled_start, session.scheduled_end) == 180


@pytest.mark.parametrize("day, real_minutes", [
    (date(2026, 3, 8), 120),    # 00:30-03:30 wall clock, but 2:00-3:00 never happened
    (date(2026, 11, 1), 240),   # 00:30-03:30 wall clock, with 1:00-2:00 lived twice
    (date(2026, 11, 8), 180),
])
def test_group_across_the_clock_change_counts_real_minutes(world, day, real_minutes):
    night = Cohort(program=world.program, name="Night IOP", weekdays="1,2,3,4,5,6,7",
                   start_local=time(0, 30), duration_minutes=180, facilitator=world.facilitator)
    db.session.add(night)
    db.session.commit()
    session = next(s for s in ensure_sessions(world.program, day) if s.cohort.name == "Night IOP")
    tz = world.program.tz
    assert session.scheduled_end.astimezone(tz).time() == time(3, 30)
    assert minutes_between(session.scheduled_start, session.scheduled_end) == real_minutes


def test_local_to_utc_on_fall_back_day_takes_the_first_occurrence():
    tz = pytest.importorskip("zoneinfo").ZoneInfo("America/Chicago")
    first = local_to_utc(date(2026, 11, 1), time(1, 30), tz)
    assert first.astimezone(timezone.utc).hour == 6  # 1:30 CDT = 06:30 UTC, not 07:30 (CST)
