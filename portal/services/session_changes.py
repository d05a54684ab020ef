"""One date's changes to a cohort's schedule, made by an admin: cancel the session, move its
time, or give it to a covering facilitator. A closed roster is a record and never changes; the
cohort's weekly schedule stays as it is (these change one date only).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from portal.clock import TimeInputError, local_to_utc, parse_clock
from portal.extensions import db
from portal.models import Cohort, GroupSession, User
from portal.services import admin_log
from portal.services.errors import Conflict, Invalid, NotFound
from portal.services.schedule import closure_on, ensure_sessions, meets_on

FACILITATING_ROLES = ("facilitator", "clinician", "admin")


def session_on(cohort: Cohort, day: date) -> GroupSession:
    """The cohort's session on ``day``, created from the schedule if it is not yet (so a future
    date can be changed ahead of time). ``Invalid`` when the cohort does not meet that day."""
    existing = db.session.scalar(select(GroupSession).where(GroupSession.cohort_id == cohort.id,
                                                            GroupSession.dos == day))
    if existing is not None:
        return existing
    closure = closure_on(cohort.program, day)
    if closure is not None:
        raise Invalid(f"The program is closed on {day:%A, %B %-d}"
                      + (f" ({closure.reason})" if closure.reason else "") + "; there is no session.")
    if not meets_on(cohort, day):
        raise Invalid(f"{cohort.name} does not meet on {day:%A, %B %-d, %Y}.")
    ensure_sessions(cohort.program, day)
    session = db.session.scalar(select(GroupSession).where(GroupSession.cohort_id == cohort.id,
                                                           GroupSession.dos == day))
    if session is None:
        raise NotFound(f"{cohort.name} has no session on {day.isoformat()}.")
    return session


def _changeable(session: GroupSession) -> None:
    if session.is_closed:
        raise Conflict(f"The {session.cohort.name} roster of {session.dos:%B %-d} is closed and "
                       "archived; a closed session cannot be changed.")


def _label(session: GroupSession) -> str:
    return f"{session.cohort.name} {session.dos.isoformat()}"


def cancel(session: GroupSession, reason: str, *, by) -> None:
    _changeable(session)
    reason = " ".join((reason or "").split())
    if not reason:
        raise Invalid("Give a reason for cancelling (it is shown to staff and kept in the log).",
                      field="reason")
    if len(reason) > 200:
        raise Invalid("Keep the reason under 200 characters.", field="reason")
    if session.is_cancelled:
        raise Conflict("This session is already cancelled.")
    if any(e.signed_at for e in session.entries):
        raise Conflict("Patients have already signed this roster; close it as held instead of "
                       "cancelling it.")
    admin_log.record(by, "session", session.id, _label(session), "cancelled",
                     before="status: open", after=f"status: cancelled ({reason})")
    session.status, session.cancel_reason = "cancelled", reason
    db.session.commit()


def reinstate(session: GroupSession, *, by) -> None:
    if not session.is_cancelled:
        raise Conflict("This session is not cancelled.")
    admin_log.record(by, "session", session.id, _label(session), "reinstated",
                     before=f"status: cancelled ({session.cancel_reason})", after="status: open")
    session.status, session.cancel_reason = "open", None
    db.session.commit()


def move(session: GroupSession, start: str, end: str, *, by) -> None:
    """Set this date's scheduled start and end (program-local wall clock)."""
    _changeable(session)
    tz = session.cohort.program.tz
    try:
        start_t, end_t = parse_clock(start, "Start"), parse_clock(end, "End")
    except TimeInputError as exc:
        raise Invalid(str(exc), field="time") from exc
    if end_t <= start_t:
        raise Invalid(f"The end ({end_t:%H:%M}) must be after the start ({start_t:%H:%M}).",
                      field="time")
    new_start = local_to_utc(session.dos, start_t, tz)
    new_end = local_to_utc(session.dos, end_t, tz)
    old = f"{_local(session.scheduled_start, tz)}-{_local(session.scheduled_end, tz)}"
    if (new_start, new_end) == (session.scheduled_start, session.scheduled_end):
        return
    admin_log.record(by, "session", session.id, _label(session), "moved", before=f"time: {old}",
                     after=f"time: {start_t:%H:%M}-{end_t:%H:%M}")
    session.scheduled_start, session.scheduled_end = new_start, new_end
    db.session.commit()


def _local(instant: datetime, tz) -> str:
    return instant.astimezone(tz).strftime("%H:%M")


def cover(session: GroupSession, facilitator_id: int, *, by) -> None:
    """Give this date's session to ``facilitator_id`` (a covering facilitator)."""
    _changeable(session)
    person = db.session.get(User, facilitator_id) if facilitator_id else None
    if person is None or not person.is_active_user or person.role not in FACILITATING_ROLES:
        raise Invalid("Choose an active facilitator, clinician or admin to cover.",
                      field="facilitator")
    if person.id == session.facilitator_id:
        return
    overlap = db.session.scalar(select(GroupSession).where(
        GroupSession.facilitator_id == person.id, GroupSession.dos == session.dos,
        GroupSession.id != session.id, GroupSession.status != "cancelled",
        GroupSession.scheduled_start < session.scheduled_end,
        GroupSession.scheduled_end > session.scheduled_start))
    if overlap is not None:
        raise Conflict(f"{person.name} already runs {overlap.cohort.name} at that time on "
                       f"{session.dos:%B %-d}.")
    old = session.facilitator
    admin_log.record(by, "session", session.id, _label(session), "covering facilitator",
                     before=f"facilitator: {old.name if old else '(none)'}",
                     after=f"facilitator: {person.name}")
    session.facilitator_id = person.id
    db.session.commit()


def sessions_for(cohort: Cohort, first: date, days: int = 14) -> list[tuple[date, GroupSession | None, str | None]]:
    """The cohort's next ``days`` dates it meets: (date, its session if created, closure reason)."""
    sessions = {s.dos: s for s in db.session.scalars(select(GroupSession).where(
        GroupSession.cohort_id == cohort.id, GroupSession.dos >= first,
        GroupSession.dos < first + timedelta(days=days)))}
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        if day in sessions:
            out.append((day, sessions[day], None))
        elif meets_on(cohort, day):
            closure = closure_on(cohort.program, day)
            out.append((day, None, (closure.reason or "closed") if closure else None))
    return out
