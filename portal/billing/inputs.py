"""Parse and check the billing pages' query and form fields; bad input aborts with a 400 that
says what to fix (before anything is read or written)."""
from __future__ import annotations

from datetime import date

from flask import abort

from portal.input_dates import DateInputError, read_date
from portal.rules.payer_rules import RuleBook

#: Longest export range: a year (366 days covers a leap year).
MAX_RANGE_DAYS = 366


def parse_day(text: str | None, default: date, field: str = "date") -> date:
    """``YYYY-MM-DD`` (a program-local date) or ``default`` when empty."""
    if not text:
        return default
    try:
        return read_date(text, field)
    except DateInputError as exc:
        abort(400, description=str(exc))


def parse_range(values, default_last: date, *, required: bool = False) -> tuple[date, date]:
    """``from``/``to`` (inclusive, program-local). Default: the month up to ``default_last``,
    unless ``required`` (a posted export: what leaves the portal is what was asked for).
    Refuses from > to and ranges longer than a year."""
    if required and not all((values.get(k) or "").strip() for k in ("from", "to")):
        abort(400, description="Give the first and the last date of service to export.")
    last = parse_day(values.get("to"), default_last, "end date")
    first = parse_day(values.get("from"), last.replace(day=1), "start date")
    if first > last:
        abort(400, description=f"The start date {first:%b %-d, %Y} is after the end date "
                               f"{last:%b %-d, %Y}.")
    if (last - first).days >= MAX_RANGE_DAYS:
        abort(400, description="Choose a range of at most one year.")
    return first, last


def parse_payer(text: str | None, rulebook: RuleBook, *, required: bool) -> str | None:
    """A payer rule key from the form, or None for "all payers" when not ``required``."""
    key = (text or "").strip()
    if not key:
        if required:
            abort(400, description="Choose a payer: an 837P file goes to one payer.")
        return None
    if key not in rulebook.payers:
        abort(400, description=f"There is no payer \u201c{key[:60]}\u201d in the payer rules.")
    return key


def parse_flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")
