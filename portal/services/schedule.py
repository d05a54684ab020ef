"""Materialise group sessions (one per cohort per date of service) from cohort schedules."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.clock import local_to_utc
from portal.extensions import db
from portal.models import AttendanceEntry, Cohort, Enrollment, GroupSession, Program


def ensure_sessions(program: Program, day: date) -> list[GroupSession]:
    """Return the sessions of every cohort that meets on ``day`` (program-local date of service),
    creating missing ones with a roster row for each patient enrolled that day. Idempotent; safe
    under concurrent calls (the (cohort, date) unique key decides, the loser re-reads)."""
    tz = program.tz
    cohorts = db.session.scalars(select(Cohort).where(Cohort.program_id == program.id)
                                 .order_by(Cohort.start_local)).all()
    existing = {s.cohort_id: s for s in db.session.scalars(
        select(GroupSession).where(GroupSession.dos == day))}
    created = False
    for cohort in cohorts:
        if day.isoweekday() not in cohort.weekday_set or cohort.id in existing:
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

