"""Documentation deadlines counted in days of service (pure date arithmetic).

The date of service is day 1. Calendar days count every date; business days count Monday to
Friday except the program's closures (holidays), so a note due in "3 business days" for a
Thursday DOS is due Monday, and a Friday DOS before a closed Monday is due Wednesday.
Sources: CA BHIN 22-019 progress notes within 3 business days [S37]; 9 CCR 10345 / CA NTP
14 calendar days [S16] (DOMAIN.md §3 "Note timeliness").
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import AbstractSet
from zoneinfo import ZoneInfo

DAY_KINDS = frozenset({"business", "calendar"})


def is_business_day(day: date, closures: AbstractSet[date] = frozenset()) -> bool:
    return day.weekday() < 5 and day not in closures


def signing_deadline(dos: date, days: int, day_kind: str,
                     closures: AbstractSet[date] = frozenset()) -> date:
    """The last date (program-local) a note for ``dos`` may be signed on time.

    ``days`` >= 1; the DOS is day 1. For business days, a DOS on a weekend or closure is not
    a business day itself, so day 1 is the next business day. Raises ValueError for
    ``days`` < 1 or an unknown ``day_kind``."""
    if days < 1:
        raise ValueError(f"a signing deadline needs at least 1 day, got {days}")
    if day_kind == "calendar":
        return dos + timedelta(days=days - 1)
    if day_kind != "business":
        raise ValueError(f"unknown day kind {day_kind!r} (expected business or calendar)")
    d = dos
    counted = 0
    while True:
        if is_business_day(d, closures):
            counted += 1
            if counted == days:
                return d
        d += timedelta(days=1)


def local_date(instant: datetime, time_zone: str) -> date:
    """The program-local date of an aware instant (a note signed at 11:30 PM Central on the
    deadline is on time, although it is already the next day in UTC)."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: store and pass UTC-aware instants")
    return instant.astimezone(ZoneInfo(time_zone)).date()


def is_late(signed_at: datetime, deadline: date, time_zone: str) -> bool:
    return local_date(signed_at, time_zone) > deadline
