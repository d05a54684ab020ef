"""Demo data for the no-show policy (kept apart from the main demo loader on purpose): a
published policy, signed acknowledgments, a self-pay fee, a Medicaid no-show whose fee the
rules refuse, outreach, a phoned-in cancellation, and a letter with its clinical-review task."""
from __future__ import annotations

from datetime import date, time, timedelta

from sqlalchemy import select

from portal.clock import local_to_utc
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import AttendanceEntry, GroupSession, Patient, Program, User

POLICY_TEXT = (
    "Please arrive on time. If you arrive more than 15 minutes after your group starts without "
    "calling us, the visit counts as missed.\n"
    "If you cannot come, call at least 24 hours before your group starts.\n"
    "Self-pay patients and members of plans that allow it are charged $25.00 for a missed group "
    "or a late cancellation. No fee is charged to Medicaid members or Qualified Medicare "
    "Beneficiaries, and Medicare is never billed for a missed group.\n"
    "Illness and emergencies are excused when documented.\n"
    "After 2 missed groups in a row, or 3 within 30 days, we will write to you (if you agreed "
    "to mail) and your counselor will review your plan with you.")
FEE_PATIENT, LETTER_PATIENT, MEDICAID_PATIENT = "100234", "100241", "100231"


def _meeting_days(today: date, history_days: int) -> list[date]:
    return [today - timedelta(days=n) for n in range(history_days, 0, -1)
            if (today - timedelta(days=n)).isoweekday() in (1, 2, 3, 4)]


def _picked(today: date, history_days: int) -> tuple[tuple[date, date], date] | None:
    """Two back-to-back meeting days (for the letter) and another day (for the fees), before
    the last two meeting days (which the main demo leaves with gaps)."""
    days = _meeting_days(today, history_days)[:-2]
    pairs = [(a, b) for a, b in zip(days, days[1:]) if (b - a).days == 1]
    if not pairs:
        return None
    pair = pairs[-1]
    other = [d for d in days if d not in pair and d < pair[0]]
    return (pair, other[-1]) if other else None


def forced_absences(today: date, history_days: int) -> set[tuple[str, date]]:
    """(MRN, date) rows the history marks as no-shows so the demo shows each case."""
    picked = _picked(today, history_days)
    if picked is None:
        return set()
    (first, second), fee_day = picked
    return {(LETTER_PATIENT, first), (LETTER_PATIENT, second), (FEE_PATIENT, fee_day),
            (MEDICAID_PATIENT, fee_day)}


def publish_demo_policy(program: Program, today: date, history_days: int) -> None:
    """Publish version 1, in force from before the history starts (published back then)."""
    from portal.services.no_shows import publish_policy

    start = today - timedelta(days=history_days + 1)
    admin = db.session.scalar(select(User).where(User.role == "admin"))
    program.contact_phone = program.contact_phone or "3125550142"
    db.session.commit()
    publish_policy(program, admin, {
        "effective_from": start.isoformat(), "grace_minutes": "15", "notice_hours": "24",
        "fee": "25.00", "uniform": "1", "letter_consecutive": "2", "letter_count": "3",
        "window_days": "30", "letter_sender": "Harbor Health Services", "body": POLICY_TEXT},
        now=local_to_utc(start, time(8, 0), program.tz))


def load_no_show_demo(program: Program, today: date, history_days: int) -> None:
    from portal.no_shows.facts import policy_terms
    from portal.services import no_shows as svc

    tz = program.tz
    policy_id = policy_terms(program.id)[0].policy_id
    clinician = db.session.scalar(select(User).where(User.role == "clinician"))
    billing = db.session.scalar(select(User).where(User.role == "billing"))
    by_mrn = {p.mrn: p for p in db.session.scalars(select(Patient))}
    # Acknowledgments signed at intake, the morning of admission, before any group.
    for i, mrn in enumerate((FEE_PATIENT, LETTER_PATIENT, MEDICAID_PATIENT)):
        p = by_mrn[mrn]
        svc.sign_acknowledgment(p.id, policy_id, png=squiggle_png(seed=500 + i), witness=clinician,
                                max_png_bytes=512 * 1024,
                                now=local_to_utc(max(p.admit_date, today - timedelta(days=history_days)),
                                                 time(8, 30), tz))
    letter_patient = by_mrn[LETTER_PATIENT]
    letter_patient.mail_consent = True
    letter_patient.address_line1, letter_patient.city = "2210 W Foster Ave", "Chicago"
    letter_patient.state, letter_patient.zip = "IL", "60625"
    db.session.commit()
    picked = _picked(today, history_days)
    if picked is None:
        return
    _pair, fee_day = picked
    now = local_to_utc(today, time(7, 45), tz)
    fee_patient = by_mrn[FEE_PATIENT]
    session_id = db.session.scalar(select(AttendanceEntry.session_id).join(GroupSession).where(
        GroupSession.dos == fee_day, AttendanceEntry.patient_id == fee_patient.id))
    if session_id:
        svc.charge_fee(fee_patient.id, session_id, user=billing, now=now)
        svc.log_outreach(fee_patient.id, dos=fee_day.isoformat(), method="phone", outcome="reached",
                         note="Overslept; will set an alarm", user=clinician,
                         now=local_to_utc(fee_day, time(13, 10), tz))
    svc.log_outreach(by_mrn[MEDICAID_PATIENT].id, dos=fee_day.isoformat(), method="phone",
                     outcome="left_message", note="", user=clinician,
                     now=local_to_utc(fee_day, time(13, 20), tz))
    # The forced pair crosses the threshold unless a random earlier episode already did: the
    # letter goes out for the latest threshold crossed, whichever it is.
    crossed = svc.patient_triggers(letter_patient, program, today=today)
    if crossed:
        svc.create_letter(letter_patient.id, crossed[-1].dos.isoformat(), user=clinician, now=now)
    # A cancellation phoned in this morning for the next AM group (more than 24 h ahead).
    nxt = next((today + timedelta(days=n) for n in range(2, 9)
                if (today + timedelta(days=n)).isoweekday() in (1, 2, 3, 4)), None)
    am = next((e.cohort for e in fee_patient.enrollments if e.cohort.name == "AM IOP"), None)
    if nxt and am:
        svc.record_notice(fee_patient.id, kind="cancellation", cohort_id=str(am.id), dos=nxt.isoformat(),
                          notice_date=today.isoformat(), notice_time="7:40 AM",
                          reason="Job interview; called the front desk", user=clinician, now=now)
