"""Times an auditor would question: pure checks on when things happened on a roster.

A roster's timestamps are evidence. A patient "signed in" hours before the group met, a roster
closed before the session's recorded end, or actual times typed for a part of the day that has
not happened yet each make an auditor doubt every other entry on the page (DOMAIN.md §3:
"contemporaneous documentation"; the roster must record the session as it happened, 9 CCR 9854
[S17]). Each function returns a message for the person at the tablet, or None when the time is
plausible. Margins are configuration (``TimeMargins``), the checks are here.

All instants are timezone-aware; comparisons are in real (UTC) time, so DST days need nothing
special. ``tz`` is only used to print clock times in the program's zone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from portal.wording import count_noun


@dataclass(frozen=True)
class TimeMargins:
    """How far from the obvious each check tolerates, in minutes.

    ``sign_early``: a patient may sign this long before the scheduled start (people arrive
    early and sign in at the door). ``future``: an actual time may lie this far after now
    (tablet and server clocks differ by a minute or two; a facilitator saving the end time
    while wrapping up). ``close_early``: a roster may be closed this long before its recorded
    actual end (0: the session must have ended)."""

    sign_early: int = 30
    future: int = 5
    close_early: int = 0

    @classmethod
    def from_config(cls, config) -> "TimeMargins":
        """From a mapping with ``PORTAL_SIGN_EARLY_MINUTES``, ``PORTAL_FUTURE_TIME_MINUTES`` and
        ``PORTAL_CLOSE_EARLY_MINUTES`` (defaults above when absent)."""
        d = cls()
        return cls(sign_early=int(config.get("PORTAL_SIGN_EARLY_MINUTES", d.sign_early)),
                   future=int(config.get("PORTAL_FUTURE_TIME_MINUTES", d.future)),
                   close_early=int(config.get("PORTAL_CLOSE_EARLY_MINUTES", d.close_early)))


def _clock(instant: datetime, tz: tzinfo) -> str:
    return instant.astimezone(tz).strftime("%-I:%M %p")


def signature_too_early(now: datetime, scheduled_start: datetime, margins: TimeMargins,
                        tz: tzinfo) -> str | None:
    """A roster signature more than ``margins.sign_early`` minutes before the scheduled start.
    Exactly at the margin is allowed."""
    opens = scheduled_start - timedelta(minutes=margins.sign_early)
    if now < opens:
        return (f"Signing opens at {_clock(opens, tz)}, {count_noun(margins.sign_early, 'minute')} before the "
                f"group starts at {_clock(scheduled_start, tz)}. A signature taken at "
                f"{_clock(now, tz)} would not show attendance at this session.")
    return None


def close_before_end(now: datetime, actual_end: datetime, margins: TimeMargins,
                     tz: tzinfo) -> str | None:
    """Closing a roster before its recorded actual end (less ``margins.close_early``)."""
    earliest = actual_end - timedelta(minutes=margins.close_early)
    if now < earliest:
        return (f"The session's recorded end is {_clock(actual_end, tz)}; it is "
                f"{_clock(now, tz)}. Close the roster after the group ends, or correct the "
                "actual end time.")
    return None


def times_in_future(now: datetime, start: datetime, end: datetime, margins: TimeMargins,
                    tz: tzinfo) -> tuple[str, str] | None:
    """Actual start or end later than now (plus ``margins.future``): (field, message) or None.
    The start is judged first: a start in the future makes the end moot."""
    latest = now + timedelta(minutes=margins.future)
    if start > latest:
        return ("start", f"The actual start {_clock(start, tz)} has not happened yet (it is "
                         f"{_clock(now, tz)}). Enter the times once the group has met.")
    if end > latest:
        return ("end", f"The actual end {_clock(end, tz)} has not happened yet (it is "
                       f"{_clock(now, tz)}). Save the end time when the group ends.")
    return None
