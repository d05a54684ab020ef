"""Materialise group sessions (one per cohort per date of service) from cohort schedules."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.clock import local_to_utc
from portal.extensions import db
from portal.models import AttendanceEntry, Closure, Cohort, Enrollment, GroupSession, Program


def meets_on(cohort: Cohort, day: date) -> bool:
    """The cohort's schedule has a group on ``day``: its weekday, within its effective dates."""
    return (day.isoweekday() in cohort.weekday_set
            and (cohort.effective_from is None or cohort.effective_from <= day)
            and (cohort.effective_to is None or day <= cohort.effective_to))


def closure_on(program: Program, day: date) -> Closure | None:
    """The program's closure (holiday) on ``day``: no session and no gap that day."""
    return db.session.scalar(select(Closure).where(Closure.program_id == program.id,
                                                   Closure.date == day))


def cancel_for_closure(program: Program, day: date, reason: str) -> int:
    """Sessions already made for a date that became a closure held no group: cancel the open,
    unsigned ones so they are neither a roster to fill in nor a gap (a signed open roster means
    the group met, so it stays). Does not commit; returns how many were cancelled."""
    cancelled = 0
    for session in db.session.scalars(select(GroupSession).join(Cohort).where(
            Cohort.program_id == program.id, GroupSession.dos == day,
            GroupSession.status == "open")):
        if not any(e.signed_at for e in session.entries):
            session.status = "cancelled"
            session.cancel_reason = f"closed: {reason or 'closure'}"[:200]
            cancelled += 1
    return cancelled


def ensure_sessions(program: Program, day: date) -> list[GroupSession]:
    """Return the sessions of every cohort that meets on ``day`` (program-local date of service),
    creating missing ones with a roster row for each patient enrolled that day. Idempotent; safe
    under concurrent calls (the (cohort, date) unique key decides, the loser re-reads)."""
    tz = program.tz
    cohorts = [] if closure_on(program, day) is not None else db.session.scalars(
        select(Cohort).where(Cohort.program_id == program.id).order_by(Cohort.start_local)).all()
    existing = {s.cohort_id: s for s in db.session.scalars(
        select(GroupSession).where(GroupSession.dos == day))}
    created = False
    for cohort in cohorts:
        if not meets_on(cohort, day) or cohort.id in existing:
            continue
        start_local = datetime.combine(day, cohort.start_local, tzinfo=tz)
        # Aware-datetime arithmetic in Python is wall-clock arithmetic, so a 9:00-12:00 group
        # stays 9:00-12:00 local on a DST day instead of drifting by an hour.
        end_local = start_local + timedelta(minutes=cohort.duration_minutes)
        session = GroupSession(cohort=cohort, dos=day,
                               scheduled_start=local_to_utc(day, cohort.start_local, tz),
                               scheduled_end=end_local.astimezone(timezone.utc),
                               modality=cohort.modality, place_of_service=cohort.place_of_service,
                               facilitator_id=cohort.facilitator_id)
        db.session.add(session)
        enrollments = db.session.scalars(select(Enrollment).where(
            Enrollment.cohort_id == cohort.id, Enrollment.start_date <= day,
            (Enrollment.end_date.is_(None)) | (Enrollment.end_date >= day)))
        for e in enrollments:
            if e.patient.admit_date <= day:
                db.session.add(AttendanceEntry(session=session, patient_id=e.patient_id))
        created = True
    if created:
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # another tablet created them first; read theirs
    return list(db.session.scalars(
        select(GroupSession).join(Cohort).where(GroupSession.dos == day,
                                                Cohort.program_id == program.id)
        .order_by(GroupSession.scheduled_start)))

