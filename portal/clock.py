"""Program-local dates and times. Instants are stored in UTC; dates of service, shift times and
deadlines are reasoned about in the program's zone (``Program.time_zone``, an IANA name)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


class TimeInputError(ValueError):
    """A clock time typed by a user could not be read."""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def local_today(tz: ZoneInfo, now: datetime | None = None) -> date:
    """The program-local calendar date at ``now`` (UTC, default: the current instant)."""
    return (now or now_utc()).astimezone(tz).date()


def local_to_utc(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``clock`` in ``tz``, as an aware UTC instant.

    A wall time skipped by a DST jump (2:30 on a spring-forward day) resolves with fold=0, i.e.
    as if the clocks had not yet changed, which is what a person means when they type it.
    """
    return datetime.combine(day, clock, tzinfo=tz).astimezone(timezone.utc)


def to_local(instant: datetime | None, tz: ZoneInfo) -> datetime | None:
    return instant.astimezone(tz) if instant else None


def parse_clock(text: str | None, field: str) -> time:
    """Read "9:05", "09:05", "9:05 AM" or "17:30" into a ``time``.

    Raises ``TimeInputError`` with a message naming ``field`` when the text is not a clock time.
    """
    raw = (text or "").strip().upper().replace(".", "")
    if not raw:
        raise TimeInputError(f"{field}: enter a time such as 9:05 AM or 17:30.")
    if not raw.isascii() or len(raw) > 20:  # strptime would read "٩:٠٥" as 9:05
        raise TimeInputError(f"{field}: \u201c{text.strip()[:20]}\u201d is not a time; use 9:05 AM or 17:30.")
    for fmt in ("%H:%M", "%I:%M %p", "%I:%M%p", "%H:%M:%S"):
        try:
            return datetime.strptime(raw, fmt).time()
        except ValueError:
            continue
    raise TimeInputError(f"{field}: \u201c{text.strip()}\u201d is not a time; use 9:05 AM or 17:30.")


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole elapsed minutes from ``start`` to ``end`` (aware instants; real time, DST-proof)."""
    return int((end - start) / timedelta(minutes=1))


def fmt_local(instant: datetime | None, tz: ZoneInfo, fmt: str = "%-I:%M %p") -> str:
    return instant.astimezone(tz).strftime(fmt) if instant else ""


def fmt_when(instant: datetime | None, tz: ZoneInfo, now: datetime | None = None) -> str:
    """A moment as people read it: "6:47 AM" when it is today (program-local), else with its
    date, "Mon Nov 30, 6:47 AM" (adding the year when it is not this year). "" for None."""
    if instant is None:
        return ""
    local = instant.astimezone(tz)
    today = (now or now_utc()).astimezone(tz).date()
    if local.date() == today:
        return f"{local:%-I:%M %p}"
    if local.year == today.year:
        return f"{local:%a %b %-d, %-I:%M %p}"
    return f"{local:%a %b %-d, %Y, %-I:%M %p}"
