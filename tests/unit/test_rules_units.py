"""Minutes from aware datetimes (DST-safe) and 15-minute units."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from portal.rules.units import NaiveDatetimeError, elapsed_minutes, units_for_minutes

CHI = ZoneInfo("America/Chicago")


@pytest.mark.parametrize("minutes, midpoint, whole", [
    (0, 0, 0), (7, 0, 0), (8, 1, 0), (14, 1, 0), (15, 1, 1), (22, 1, 1), (23, 2, 1),
    (37, 2, 2), (38, 3, 2), (52, 3, 3), (53, 4, 3), (180, 12, 12),
])
def test_units_for_minutes(minutes, midpoint, whole):
    assert units_for_minutes(minutes, "cpt_midpoint") == midpoint
    assert units_for_minutes(minutes, "whole_units") == whole


def test_units_reject_bad_input():
    with pytest.raises(ValueError):
        units_for_minutes(-1)
    with pytest.raises(ValueError):
        units_for_minutes(10, "nearest")


@pytest.mark.parametrize("start, end, minutes", [
    # spring forward 2026-03-08: 9:00-12:00 local is still 180 real minutes
    (datetime(2026, 3, 8, 9, 0, tzinfo=CHI), datetime(2026, 3, 8, 12, 0, tzinfo=CHI), 180),
    # fall back 2026-11-01
    (datetime(2026, 11, 1, 9, 0, tzinfo=CHI), datetime(2026, 11, 1, 12, 0, tzinfo=CHI), 180),
    # 1:00 CDT -> 3:30 CST spans the repeated hour: 210 real minutes, not 150
    (datetime(2026, 11, 1, 1, 0, tzinfo=CHI), datetime(2026, 11, 1, 3, 30, tzinfo=CHI), 210),
    # 1:00 CST -> 3:30 CDT skips the missing hour: 90 real minutes
    (datetime(2026, 3, 8, 1, 0, tzinfo=CHI), datetime(2026, 3, 8, 3, 30, tzinfo=CHI), 90),
])
def test_elapsed_minutes_is_real_time(start, end, minutes):
    assert elapsed_minutes(start, end) == minutes


def test_naive_datetime_rejected():
    with pytest.raises(NaiveDatetimeError):
        elapsed_minutes(datetime(2026, 11, 2, 9), datetime(2026, 11, 2, 12, tzinfo=CHI))
