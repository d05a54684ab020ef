"""Minutes and 15-minute units.

Elapsed time is real time: both ends are converted to UTC before subtracting, because Python
subtracts two datetimes that share one ``tzinfo`` object by wall clock, which is an hour off
across a DST change (America/Chicago 2026-03-08 and 2026-11-01).
"""
from __future__ import annotations

from datetime import datetime, timezone


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached the rules; times must be aware."""


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC. Raises ``NaiveDatetimeError`` for a naive datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveDatetimeError(f"naive datetime {moment.isoformat()}: times must be timezone-aware")
    return moment.astimezone(timezone.utc)


def elapsed_minutes(start: datetime, end: datetime) -> int:
    """Whole real minutes from ``start`` to ``end`` (aware datetimes), floored; negative if
    ``end`` precedes ``start``."""
    seconds = (to_utc(end) - to_utc(start)).total_seconds()
    return int(seconds // 60)


def units_for_minutes(minutes: int, rounding: str = "cpt_midpoint", unit_minutes: int = 15) -> int:
    """15-minute (``unit_minutes``) units for ``minutes`` of service.

    ``cpt_midpoint``: a unit is attained when its midpoint is passed: 8-22 min = 1,
    23-37 = 2, 38-52 = 3; under 8 min = 0 (Premera "Billing for Time" [S19]; Medicare Claims
    Processing Manual Ch. 5 §20.2 [S20]). ``whole_units``: only completed units (floor).
    Raises ``ValueError`` for an unknown rule or negative minutes.
    """
    if minutes < 0:
        raise ValueError(f"minutes must be >= 0, got {minutes}")
    if rounding == "cpt_midpoint":
        # midpoint of a 15-min unit is 7.5 min, so ">= 8 whole minutes" passes it
        half = unit_minutes // 2 + 1
        if minutes < half:
            return 0
        return (minutes - half) // unit_minutes + 1
    if rounding == "whole_units":
        return minutes // unit_minutes
    raise ValueError(f"unknown rounding rule {rounding!r}")
