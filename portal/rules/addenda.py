"""Which of a claim line's gaps only an addendum can fix, and where a day's sessions stand.

A closed roster never changes (DESIGN.md "Closed records never change; corrections are archived
addenda"). So once a roster is closed, a gap that comes from what the roster records (minutes
under the daily minimum, a group over the size limit, an unsigned attendee, the session's
times or modality) cannot be fixed by billing before end of business: it needs the facilitator
(or a clinician) to write an archived addendum, and it is labelled so, without a same-day
deadline. Gaps from billing's own data (authorizations, payer files, NPIs) stay billing's.
"""
from __future__ import annotations

from datetime import datetime
from typing import Hashable, Iterable

from portal.rules.facts import ClaimLine, Reason, SessionFact

#: Reason codes that come from what a roster records (portal/rules/claim_lines.py).
ROSTER_FACT_CODES = frozenset({
    "under_daily_minimum", "under_unit_minimum", "group_over_limit", "patient_not_signed",
    "arrival_time_missing", "departure_time_missing", "session_times_missing",
    "session_times_impossible", "telehealth_location_missing", "mixed_modality",
    "modality_unknown", "pos_conflicts_modality",
})

UPCOMING = "upcoming"
IN_SESSION = "in_session"


def addendum_reasons(line: ClaimLine, closed_session_ids: Iterable[Hashable]) -> tuple[Reason, ...]:
    """The line's blocking reasons that only an addendum to a closed roster can fix: a roster
    fact, from a session whose roster is closed (a patient-level reason without a session, such
    as the day's minutes, needs every one of the line's sessions closed)."""
    closed = set(closed_session_ids)
    all_closed = bool(line.session_ids) and all(sid in closed for sid in line.session_ids)
    return tuple(r for r in line.blocking_reasons if r.code in ROSTER_FACT_CODES
                 and (r.session_id in closed if r.session_id is not None else all_closed))


def session_state(session: SessionFact, now: datetime) -> str | None:
    """``upcoming`` before an open roster's scheduled start, ``in_session`` until its scheduled
    end, else None: until then its open roster and missing times are not problems yet."""
    if session.roster_closed or session.scheduled_start is None or session.scheduled_end is None:
        return None
    if now < session.scheduled_start:
        return UPCOMING
    if now < session.scheduled_end:
        return IN_SESSION
    return None
