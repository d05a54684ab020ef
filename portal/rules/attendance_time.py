"""How long a patient was in a group: their arrival/departure clipped to the session's actual
start and end. Pure: takes any objects with the roster's attribute names (``status``,
``arrival``, ``departure``; ``actual_start``, ``actual_end``), so the roster close, the
documents and the notes all count minutes the same way.

Source: CMS Medicare Benefit Policy Manual ch. 6 §70.3 / payer files — IOP time is the time
the patient was actually in the service, documented with start and stop times (DOMAIN.md).
"""
from __future__ import annotations

from datetime import datetime

from portal.clock import minutes_between
from portal.rules.facts import ATTENDED_STATUSES


def attended_window(entry, session) -> tuple[datetime, datetime] | None:
    """The instants (UTC) a patient was in the group: their arrival/departure clipped to the
    session's actual start/end. None when they did not attend or times are missing."""
    if entry.status not in ATTENDED_STATUSES or not (session.actual_start and session.actual_end):
        return None
    start = max(entry.arrival or session.actual_start, session.actual_start)
    end = min(entry.departure or session.actual_end, session.actual_end)
    return (start, end) if end > start else (start, start)


def minutes_attended(entry, session) -> int:
    """Whole minutes of real elapsed time attended (0 for absences)."""
    window = attended_window(entry, session)
    return minutes_between(*window) if window else 0
