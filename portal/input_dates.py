"""Dates typed into forms and query strings: ``YYYY-MM-DD`` with ASCII digits, in 2000-2100.

Python's own parsers accept more than a clinic means (year 0001, which overflows as soon as a
range is computed from it; digits such as "²" or "٣"). Nothing a clinic does lies outside
2000-2100, so anything outside is a typo, answered with a message rather than a 500.
"""
from __future__ import annotations

import re
from datetime import date

DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2100, 12, 31)
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]+")


class DateInputError(ValueError):
    """``str(exc)`` says what is wrong and how to write it."""


def read_date(text: str, field: str = "date") -> date:
    """Parse ``text`` (surrounding spaces ignored); raises ``DateInputError``."""
    raw = (text or "").strip()
    shown = raw[:40]
    if not _ISO.fullmatch(raw):
        raise DateInputError(f"The {field} \u201c{shown}\u201d is not a date; use the form 2026-11-30.")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise DateInputError(f"The {field} \u201c{shown}\u201d is not a date on the calendar; use "
                             "the form 2026-11-30.") from None
    if not DATE_MIN <= value <= DATE_MAX:
        raise DateInputError(f"The {field} {shown} is outside {DATE_MIN.year}\u2013{DATE_MAX.year}; "
                             "check the year.")
    return value


def read_whole_number(text: str, *, max_digits: int = 12) -> int:
    """ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` then refuses);
    raises ``ValueError``."""
    raw = (text or "").strip()
    if not _DIGITS.fullmatch(raw) or len(raw) > max_digits:
        raise ValueError(f"\u201c{raw[:20]}\u201d is not a whole number")
    return int(raw)
