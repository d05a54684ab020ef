"""No-show policy actions: publish a policy version, take a patient's acknowledgment, record a
cancellation or an excuse, charge / waive / record payment of a fee, log outreach, produce a
threshold letter, open and close clinical-review tasks.

Each function validates first and raises a ``ServiceError`` having written nothing. Documents
(policy, acknowledgment, letter) are rendered outside any transaction, then archived and
indexed in one transaction (portal.services.archiving).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from portal.clock import TimeInputError, fmt_local, local_to_utc, local_today, now_utc, parse_clock
from portal.documents.no_shows import acknowledgment_pdf, letter_pdf, policy_pdf
from portal.extensions import db
from portal.models import (AbsenceNotice, AttendanceEntry, ClinicalReviewTask, Cohort, Enrollment,
                           FeeLedgerEntry, GroupSession, NoShowLetter, NoShowPolicy, OutreachAttempt,
                           Patient, PolicyAcknowledgment, Program, User)
from portal.models.no_shows import OUTREACH_METHODS, OUTREACH_OUTCOMES
from portal.no_shows import facts
from portal.rules.no_show_letters import LetterError, build_letter, disclosing_words
from portal.rules.no_shows import LABELS, overlap, policy_in_force, triggers
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound
from portal.signatures import SignatureRejected, check_signature_png

MAX_GRACE = 120
MAX_NOTICE_HOURS = 168
MAX_FEE_CENTS = 100_000
MAX_BODY = 20_000
LETTER_REPLY_DAYS = 7


def usd(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def parse_cents(text: str | None, field: str) -> int:
    """"25", "25.5", "25.50", "$1,025.00" -> integer cents; refuses negatives and 3 decimals."""
    raw = (text or "").strip().replace("$", "").replace(",", "")
    m = re.fullmatch(r"(\d{1,7})(?:\.(\d{1,2}))?", raw)
    if not m:
        raise Invalid(f"Enter an amount in dollars such as 25.00 (got \u201c{(text or '')[:20]}\u201d).",
                      field=field)
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def _int(text, field: str, label: str, lo: int, hi: int) -> int:
    raw = str(text or "").strip()
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise Invalid(f"{label} must be a whole number from {lo} to {hi}.", field=field)
    return int(raw)


def _text(value, field: str, label: str, limit: int = 300) -> str:
    """A free-text field, stripped. Longer than its column: refused, never cut short silently."""
    text = str(value or "").strip()
    if len(text) > limit:
        raise Invalid(f"{label}: at most {limit} characters ({len(text)} given).", field=field)
    return text


def _date(text, field: str, label: str, *, required: bool = True) -> date | None:
    raw = str(text or "").strip()
    if not raw and not required:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{label}: enter a date like 2026-12-01.", field=field) from None


def _patient(patient_id: int) -> Patient:
    p = db.session.get(Patient, patient_id)
    if p is None:
        raise NotFound("There is no patient with that id.")
    return p


def _fee_label(cents: int) -> str:
    return usd(cents) if cents else "no fee"


# ------------------------------------------------------------------------------------------
# Policy
# ------------------------------------------------------------------------------------------

def _policy_record(program: Program, p: dict, user: User, published_at: datetime) -> dict:
    return {"kind": "no_show_policy",
            "program": {"name": program.name, "time_zone": program.time_zone,
                        "billing_npi": program.billing_npi},
            "policy": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in p.items()},
            "published_by": user.name, "published_at": published_at.isoformat(),
            "published_at_local": fmt_local(published_at, program.tz, "%b %-d, %Y %-I:%M %p"),
            "fee_label": _fee_label(p["fee_cents"])}


def publish_policy(program: Program, user: User, form, *, now: datetime | None = None) -> NoShowPolicy:
    """Publish the next policy version from form fields (``effective_from``, ``effective_to``
    optional, ``grace_minutes``, ``notice_hours``, ``fee`` in dollars, ``uniform``,
    ``letter_consecutive``, ``letter_count``, ``window_days``, ``letter_sender``, ``body``).

    An open-ended earlier version ends the day before the new one starts (its text says "until
    replaced"). Raises Invalid: unreadable values, a start in the past, an end before the start,
    dates overlapping another version's, a sender line that names the program's kind.
    """
    now = now or now_utc()
    problems = []

    def field(fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Invalid as exc:
            problems.append(exc.message)
            return None

    start = field(_date, form.get("effective_from"), "effective_from", "Effective from")
    end = field(_date, form.get("effective_to"), "effective_to", "Effective to", required=False)
    p = {
        "effective_from": start, "effective_to": end,
        "grace_minutes": field(_int, form.get("grace_minutes"), "grace_minutes", "Grace minutes", 0, MAX_GRACE),
        "notice_hours": field(_int, form.get("notice_hours"), "notice_hours", "Notice hours", 0, MAX_NOTICE_HOURS),
        "fee_cents": field(parse_cents, form.get("fee"), "fee"),
        "uniform": str(form.get("uniform") or "") in ("1", "yes", "on", "true"),
        "letter_consecutive": field(_int, form.get("letter_consecutive") or "2", "letter_consecutive",
                                    "Consecutive missed groups", 1, 20),
        "letter_count": field(_int, form.get("letter_count") or "3", "letter_count", "Missed groups in the window", 1, 50),
        "window_days": field(_int, form.get("window_days") or "30", "window_days", "Window days", 1, 365),
        "letter_sender": (form.get("letter_sender") or "").strip(),
        "body": (form.get("body") or "").strip(),
    }
    if p["fee_cents"] is not None and p["fee_cents"] > MAX_FEE_CENTS:
        problems.append(f"The fee may be at most {usd(MAX_FEE_CENTS)}.")
    if not p["letter_sender"]:
        problems.append("Letter sender: enter the neutral name printed on letters and envelopes.")
    elif disclosing_words(p["letter_sender"]):
        problems.append("Letter sender: \u201c" + p["letter_sender"] + "\u201d names the program's kind ("
                        + ", ".join(disclosing_words(p["letter_sender"])) + "); letters must not (42 CFR Part 2).")
    if len(p["letter_sender"]) > 120:
        problems.append(f"Letter sender: at most 120 characters ({len(p['letter_sender'])} given).")
    if not p["body"]:
        problems.append("Policy text: paste the written policy patients will sign.")
    elif len(p["body"]) > MAX_BODY:
        problems.append(f"Policy text: at most {MAX_BODY:,} characters.")
    today = local_today(program.tz, now)
    if start and start < today:
        problems.append("Effective from: a policy cannot take effect before it is published "
                        f"(today is {today.isoformat()}).")
    if start and end and end < start:
        problems.append("Effective to: the end is before the start.")
    if problems:
        raise Invalid(" ".join(problems), details=problems)
    _check_overlap(program, start, end)
    version = (db.session.scalar(select(func.max(NoShowPolicy.version))
                                 .where(NoShowPolicy.program_id == program.id)) or 0) + 1
    p["version"] = version
    record = _policy_record(program, p, user, now)
    program_id, user_id = program.id, user.id
    db.session.rollback()  # no transaction (SQLite: no write lock) while laying out the PDF
    pdf = policy_pdf(record)
    try:
        program = db.session.get(Program, program_id)
        _check_overlap(program, start, end)
        if (db.session.scalar(select(func.max(NoShowPolicy.version))
                              .where(NoShowPolicy.program_id == program.id)) or 0) + 1 != version:
            raise Conflict("Another version was published meanwhile; review and publish again.")
        for prev in db.session.scalars(select(NoShowPolicy).where(
                NoShowPolicy.program_id == program.id, NoShowPolicy.effective_to.is_(None))):
            prev.effective_to = start - timedelta(days=1)
        doc = archive_document(kind="no_show_policy", title=f"No-show policy v{version}",
                               dos=start, subject={"policy_version": str(version)},
                               actor=f"user:{user_id}", record=record, pdf=pdf, occurred_at=now,
                               patient_lines=[])
        policy = NoShowPolicy(program_id=program.id, version=version, effective_from=start,
                              effective_to=end, grace_minutes=p["grace_minutes"],
                              notice_hours=p["notice_hours"], fee_cents=p["fee_cents"],
                              uniform=p["uniform"], letter_consecutive=p["letter_consecutive"],
                              letter_count=p["letter_count"], window_days=p["window_days"],
                              letter_sender=p["letter_sender"], body=p["body"], published_at=now,
                              published_by_id=user_id, document_id=doc.id)
        db.session.add(policy)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return policy


def _check_overlap(program: Program, start: date, end: date | None) -> None:
    existing = facts.policy_terms(program.id)
    fixed = [t for t in existing if t.effective_to is not None]
    hit = overlap(fixed, start, end)
    open_ended = [t for t in existing if t.effective_to is None and t.effective_from >= start]
    hit = hit or (open_ended[0] if open_ended else None)
    if hit:
        raise Invalid(f"These dates overlap version {hit.version} (in force "
                      f"{hit.effective_from.isoformat()} to "
                      f"{hit.effective_to.isoformat() if hit.effective_to else 'until replaced'}); "
                      "one version applies on any date.", field="effective_from")


# ------------------------------------------------------------------------------------------
# Acknowledgment (tablet signature)
# ------------------------------------------------------------------------------------------

def sign_acknowledgment(patient_id: int, policy_id: int, *, png: bytes, witness: User,
                        max_png_bytes: int, now: datetime | None = None) -> PolicyAcknowledgment:
    """Archive the patient's signed acknowledgment of one policy version, dated now (it cannot
    be backdated: a fee needs an acknowledgment signed before the absence). Raises NotFound,
    Conflict (already signed this version), Invalid (blank or damaged signature)."""
    now = now or now_utc()
    patient = _patient(patient_id)
    policy = db.session.get(NoShowPolicy, policy_id)
    if policy is None:
        raise NotFound("There is no such policy version.")
    if db.session.scalar(select(PolicyAcknowledgment.id).where(
            PolicyAcknowledgment.patient_id == patient.id, PolicyAcknowledgment.policy_id == policy.id)):
        raise Conflict(f"{patient.roster_name} already signed version {policy.version}.")
    try:
        image = check_signature_png(png, max_png_bytes)
    except SignatureRejected as exc:
        raise Invalid(str(exc), field="signature") from exc
    program = db.session.get(Program, policy.program_id)
    record = {"kind": "no_show_acknowledgment",
              "program": {"name": program.name, "billing_npi": program.billing_npi,
                          "time_zone": program.time_zone},
              "patient": {"id": patient.id, "mrn": patient.mrn, "name": patient.full_name},
              "policy": {"version": policy.version, "effective_from": policy.effective_from.isoformat(),
                         "effective_to": policy.effective_to.isoformat() if policy.effective_to else None,
                         "grace_minutes": policy.grace_minutes, "notice_hours": policy.notice_hours,
                         "fee_cents": policy.fee_cents, "body": policy.body,
                         "document_id": policy.document_id},
              "fee_label": _fee_label(policy.fee_cents),
              "signed_at": now.isoformat(),
              "signed_at_local": fmt_local(now, program.tz, "%b %-d, %Y %-I:%M %p"),
              "witness": witness.name_with_credential, "signature_sha256": image.sha256}
    ids = (patient.id, policy.id, witness.id, policy.version)
    db.session.rollback()
    pdf = acknowledgment_pdf(record, image.png)
    try:
        doc = archive_document(kind="no_show_acknowledgment",
                               title=f"No-show policy v{ids[3]} acknowledgment", dos=None,
                               subject={"patient_id": str(ids[0]), "policy_version": str(ids[3])},
                               actor=f"user:{ids[2]}", record=record, pdf=pdf, occurred_at=now,
                               patient_lines=[PatientLine(ids[0], {"patient_id": str(ids[0]),
                                                                   "policy_version": str(ids[3]),
                                                                   "signed_at": now.isoformat()})])
        ack = PolicyAcknowledgment(patient_id=ids[0], policy_id=ids[1], signed_at=now,
                                   signature_png=image.png, signature_sha256=image.sha256,
                                   witness_id=ids[2], document_id=doc.id)
        db.session.add(ack)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return ack


# ------------------------------------------------------------------------------------------
# Cancellations and excuses
# ------------------------------------------------------------------------------------------

def _scheduled(patient: Patient, cohort_id, day: date) -> tuple[Cohort, datetime, datetime]:
    cohort = db.session.get(Cohort, cohort_id) if str(cohort_id or "").isdigit() else None
    if cohort is None:
        raise Invalid("Choose the group the notice is for.", field="cohort")
    enrolled = db.session.scalar(select(Enrollment.id).where(
        Enrollment.patient_id == patient.id, Enrollment.cohort_id == cohort.id,
        Enrollment.start_date <= day, (Enrollment.end_date.is_(None)) | (Enrollment.end_date >= day)))
    if not enrolled:
        raise Invalid(f"{patient.roster_name} is not enrolled in {cohort.name} on {day:%b %-d, %Y}.",
                      field="cohort")
    session = db.session.scalar(select(GroupSession).where(GroupSession.cohort_id == cohort.id,
                                                           GroupSession.dos == day))
    if session is not None:
        return cohort, session.scheduled_start, session.scheduled_end
    if day.isoweekday() not in cohort.weekday_set:
        raise Invalid(f"{cohort.name} does not meet on {day:%A, %b %-d}.", field="dos")
    tz = cohort.program.tz
    start = local_to_utc(day, cohort.start_local, tz)
    end_local = datetime.combine(day, cohort.start_local, tzinfo=tz) + timedelta(minutes=cohort.duration_minutes)
    return cohort, start, end_local.astimezone(start.tzinfo)


def record_notice(patient_id: int, *, kind: str, cohort_id, dos: str | None, notice_date: str | None,
                  notice_time: str | None, reason: str | None, user: User,
                  now: datetime | None = None) -> AbsenceNotice:
    """Record a cancellation (with the date and program-local time the notice came in) or a
    documented excuse (illness, emergency; the reason is required).

    A cancellation is recorded before the group ends; after it ended it can only be late (a
    timely one recorded afterwards is refused: nothing then proves when the call came). The
    notice time cannot be in the future nor after the group ended. If the group's roster is
    open and the patient has not signed, their row is marked Cancelled. Raises NotFound,
    Invalid, Conflict (already recorded).
    """
    now = now or now_utc()
    if kind not in ("cancellation", "excused"):
        raise Invalid("Choose a cancellation or an excuse.", field="kind")
    patient = _patient(patient_id)
    day = _date(dos, "dos", "Date of the group")
    cohort, start, end = _scheduled(patient, cohort_id, day)
    tz = cohort.program.tz
    reason = _text(reason, "reason", "Reason")
    if kind == "excused":
        if not reason:
            raise Invalid("An excuse needs its documentation, e.g. \u201cflu, doctor's note "
                          "on file\u201d.", field="reason")
        notice_at = now
    else:
        nday = _date(notice_date, "notice_date", "Date the notice came in")
        try:
            clock = parse_clock(notice_time, "Time the notice came in")
        except TimeInputError as exc:
            raise Invalid(str(exc), field="notice_time") from exc
        notice_at = local_to_utc(nday, clock, tz)
        if notice_at > now + timedelta(minutes=1):
            raise Invalid("The notice time is in the future; enter when the call came in.",
                          field="notice_time")
        if notice_at >= end:
            raise Invalid("The notice came in after the group ended: that is a no-show, "
                          "not a cancellation.", field="notice_time")
        policy = policy_in_force(facts.policy_terms(cohort.program_id), day)
        if now >= end and policy is not None and (start - notice_at) >= timedelta(hours=policy.notice_hours):
            raise Invalid(f"The group ended at {fmt_local(end, tz)} on {day:%b %-d}; a cancellation "
                          "recorded after the group cannot be timely. Record it before the group, "
                          "or record a documented excuse.", field="notice_time")
    if db.session.scalar(select(AbsenceNotice.id).where(
            AbsenceNotice.patient_id == patient.id, AbsenceNotice.cohort_id == cohort.id,
            AbsenceNotice.dos == day, AbsenceNotice.kind == kind)):
        raise Conflict(f"A{'n excuse' if kind == 'excused' else ' cancellation'} is already "
                       f"recorded for {cohort.name} on {day:%b %-d}.")
    notice = AbsenceNotice(patient_id=patient.id, cohort_id=cohort.id, dos=day, kind=kind,
                           notice_at=notice_at, reason=reason, recorded_by_id=user.id,
                           recorded_at=now)
    db.session.add(notice)
    if kind == "cancellation":
        entry = db.session.scalar(select(AttendanceEntry).join(GroupSession).where(
            GroupSession.cohort_id == cohort.id, GroupSession.dos == day,
            AttendanceEntry.patient_id == patient.id))
        if entry is not None and entry.session.status == "open" and not entry.is_signed:
            entry.status = "cancelled"
    db.session.commit()
    return notice


# ------------------------------------------------------------------------------------------
# Fees
# ------------------------------------------------------------------------------------------

def fee_context(patient: Patient, session_id: int):
    """(absence, decision) for the patient's row on the session, or NotFound."""
    session = db.session.get(GroupSession, session_id)
    if session is None:
        raise NotFound("There is no such group session.")
    program = session.cohort.program
    rows = [a for a in facts.load_rows(program, session.dos, session.dos, patient_ids=[patient.id])
            if a.session_id == session.id]
    if not rows:
        raise NotFound(f"{patient.roster_name} is not on that group's roster.")
    absence = rows[0]
    decision = facts.fee_for(absence, patient, facts.acknowledgments([patient.id]).get(patient.id, []),
                             facts.policy_terms(program.id), facts.forbidding_payers(),
                             facts.payer_spans([patient.id]).get(patient.id))
    return absence, decision


def charge_fee(patient_id: int, session_id: int, *, user: User, now: datetime | None = None
               ) -> FeeLedgerEntry:
    """Charge the policy's fee for one absence. Refused (Invalid, with each rule and its
    source) for Medicaid and QMB patients, contracts that forbid it, Medicare without a uniform
    policy, no acknowledgment signed before the absence, classifications that carry no fee.
    Conflict if that absence was already charged."""
    now = now or now_utc()
    patient = _patient(patient_id)
    absence, decision = fee_context(patient, session_id)
    if absence.classification is None:
        raise Invalid(f"{patient.roster_name} attended that group; there is nothing to charge.")
    if not decision.allowed:
        raise Invalid("No fee may be charged: " + decision.summary,
                      details=[f"{r.message} ({r.source})" for r in decision.refusals])
    if db.session.scalar(select(FeeLedgerEntry.id).where(
            FeeLedgerEntry.patient_id == patient.id, FeeLedgerEntry.session_id == session_id,
            FeeLedgerEntry.kind == "charge")):
        raise Conflict("That absence was already charged; waive the charge to correct it.")
    program_id = db.session.get(GroupSession, session_id).cohort.program_id
    policy = policy_in_force(facts.policy_terms(program_id), absence.dos)
    entry = FeeLedgerEntry(patient_id=patient.id, kind="charge", amount_cents=decision.amount_cents,
                           session_id=session_id, dos=absence.dos, classification=absence.code,
                           policy_id=policy.policy_id if policy else None,
                           reason=f"{absence.classification.label}, {absence.cohort_name} "
                                  f"{absence.dos:%b %-d}" + (f" ({'; '.join(decision.notes)})" if decision.notes else ""),
                           recorded_by_id=user.id, recorded_at=now)
    db.session.add(entry)
    db.session.commit()
    return entry


def waive_fee(charge_id: int, *, reason: str | None, user: User, now: datetime | None = None
              ) -> FeeLedgerEntry:
    """Waive what remains of a charge, with a reason (the charge line itself never changes)."""
    charge = db.session.get(FeeLedgerEntry, charge_id)
    if charge is None or charge.kind != "charge":
        raise NotFound("There is no such charge.")
    reason = _text(reason, "reason", "Reason")
    if not reason:
        raise Invalid("Give the reason for waiving the fee.", field="reason")
    if db.session.scalar(select(FeeLedgerEntry.id).where(FeeLedgerEntry.charge_id == charge.id,
                                                         FeeLedgerEntry.kind == "waive")):
        raise Conflict("That charge was already waived.")
    entry = FeeLedgerEntry(patient_id=charge.patient_id, kind="waive", amount_cents=charge.amount_cents,
                           charge_id=charge.id, dos=charge.dos, session_id=charge.session_id,
                           reason=reason, recorded_by_id=user.id, recorded_at=now or now_utc())
    db.session.add(entry)
    db.session.commit()
    return entry


def balance_cents(patient_id: int) -> int:
    total = 0
    for kind, amount in db.session.execute(select(FeeLedgerEntry.kind, FeeLedgerEntry.amount_cents)
                                           .where(FeeLedgerEntry.patient_id == patient_id)):
        total += amount if kind == "charge" else -amount
    return total


def record_payment(patient_id: int, *, amount: str | None, note: str | None, user: User,
                   now: datetime | None = None) -> FeeLedgerEntry:
    """A payment against the patient's fee balance (never more than the balance)."""
    patient = _patient(patient_id)
    cents = parse_cents(amount, "amount")
    if cents <= 0:
        raise Invalid("A payment must be more than $0.00.", field="amount")
    owed = balance_cents(patient.id)
    if cents > owed:
        raise Invalid(f"The payment ({usd(cents)}) is more than the balance ({usd(owed)}).",
                      field="amount")
    entry = FeeLedgerEntry(patient_id=patient.id, kind="payment", amount_cents=cents,
                           reason=_text(note, "note", "Note"), recorded_by_id=user.id,
                           recorded_at=now or now_utc())
    db.session.add(entry)
    db.session.commit()
    return entry


def set_qmb(patient_id: int, value: str | None, *, user: User) -> bool:
    """Record whether the patient is a Qualified Medicare Beneficiary (``"yes"``/``"no"``), as
    the census import does; a QMB patient is never charged a fee (42 USC 1396a(n)(3)(B)). The
    change is in the admin log, in the same transaction. Returns the new value."""
    from portal.services import admin_log

    if value not in ("yes", "no"):
        raise Invalid("Choose whether the patient is a Qualified Medicare Beneficiary.", field="qmb")
    patient = _patient(patient_id)
    new = value == "yes"
    old = bool(patient.qmb)
    if old != new:
        patient.qmb = new
        before, after = admin_log.diff_text({"QMB": ("Y" if old else "N", "Y" if new else "N")})
        admin_log.record(user, "patient", patient.id, f"MRN {patient.mrn}", "QMB status",
                         before, after)
    db.session.commit()
    return new


# ------------------------------------------------------------------------------------------
# Outreach
# ------------------------------------------------------------------------------------------

def log_outreach(patient_id: int, *, dos: str | None, method: str | None, outcome: str | None,
                 note: str | None, user: User, now: datetime | None = None) -> OutreachAttempt:
    """Log one outreach attempt after an absence (at the current time)."""
    patient = _patient(patient_id)
    if method not in OUTREACH_METHODS:
        raise Invalid("Choose how you reached out.", field="method")
    if outcome not in OUTREACH_OUTCOMES:
        raise Invalid("Choose the outcome.", field="outcome")
    day = _date(dos, "dos", "Date of the missed group", required=False)
    now = now or now_utc()
    attempt = OutreachAttempt(patient_id=patient.id, dos=day, at=now, method=method,
                              outcome=outcome, note=_text(note, "note", "Note"), staff_id=user.id)
    db.session.add(attempt)
    db.session.commit()
    return attempt


# ------------------------------------------------------------------------------------------
# Thresholds: letters and clinical-review tasks
# ------------------------------------------------------------------------------------------

def patient_triggers(patient: Patient, program: Program, *, today: date, days: int = 120):
    rows = facts.load_rows(program, today - timedelta(days=days), today, patient_ids=[patient.id])
    policies = facts.policy_terms(program.id)
    return triggers(facts.occurrences(rows, patient.id), lambda d: policy_in_force(policies, d))


def primary_counselor(patient: Patient, day: date) -> str:
    for e in sorted(patient.enrollments, key=lambda e: e.start_date, reverse=True):
        if e.active_on(day) and e.primary_counselor:
            return e.primary_counselor
    return ""


def open_review_task(patient: Patient, trigger, *, now: datetime | None = None) -> ClinicalReviewTask:
    """The task for ``trigger`` (created once; later calls return it)."""
    task = db.session.scalar(select(ClinicalReviewTask).where(
        ClinicalReviewTask.patient_id == patient.id, ClinicalReviewTask.trigger_dos == trigger.dos))
    if task is None:
        task = ClinicalReviewTask(patient_id=patient.id, trigger_dos=trigger.dos,
                                  reason=trigger.reason[:300],
                                  assignee=primary_counselor(patient, trigger.dos) or "Unassigned",
                                  created_at=now or now_utc())
        db.session.add(task)
    return task


def sweep(program: Program, *, now: datetime | None = None, days: int = 60) -> int:
    """Open a clinical-review task for every threshold crossed in the last ``days`` (cron-safe,
    idempotent). Returns how many were created."""
    now = now or now_utc()
    today = local_today(program.tz, now)
    rows = facts.load_rows(program, today - timedelta(days=days), today, now=now)
    policies = facts.policy_terms(program.id)
    patients = facts.patients_by_id({a.patient_id for a in rows})
    existing = set(db.session.execute(select(ClinicalReviewTask.patient_id, ClinicalReviewTask.trigger_dos)))
    created = 0
    for pid, patient in patients.items():
        for t in triggers(facts.occurrences(rows, pid), lambda d: policy_in_force(policies, d)):
            if (pid, t.dos) not in existing:
                open_review_task(patient, t, now=now)
                created += 1
    db.session.commit()
    return created


def open_task_for(patient_id: int, trigger_dos: str | None, *, now: datetime | None = None
                  ) -> ClinicalReviewTask:
    """Open the clinical-review task for a crossed threshold without a letter (no mail
    consent, or the clinician wants it now). Invalid if no threshold was crossed that day."""
    now = now or now_utc()
    patient = _patient(patient_id)
    day = _date(trigger_dos, "trigger_dos", "Date of the threshold")
    program = db.session.scalar(select(Program).join(Cohort, Cohort.program_id == Program.id)
                                .join(Enrollment, Enrollment.cohort_id == Cohort.id)
                                .where(Enrollment.patient_id == patient.id).limit(1))
    if program is None:
        raise Invalid("The patient is not enrolled in any group.")
    trigger = next((t for t in patient_triggers(patient, program, today=local_today(program.tz, now))
                    if t.dos == day), None)
    if trigger is None:
        raise Invalid(f"No threshold was crossed on {day:%b %-d, %Y}.", field="trigger_dos")
    task = open_review_task(patient, trigger, now=now)
    db.session.commit()
    return task


def close_task(task_id: int, *, resolution: str | None, user: User, now: datetime | None = None
               ) -> ClinicalReviewTask:
    task = db.session.get(ClinicalReviewTask, task_id)
    if task is None:
        raise NotFound("There is no such task.")
    if task.status == "done":
        raise Conflict("This review is already done.")
    resolution = _text(resolution, "resolution", "Resolution")
    if not resolution:
        raise Invalid("Say what the review decided (e.g. \u201cplan updated; step-down "
                      "discussed\u201d).", field="resolution")
    task.status, task.resolution, task.closed_by_id = "done", resolution, user.id
    task.closed_at = now or now_utc()
    db.session.commit()
    return task


def _address(patient: Patient) -> tuple[str, ...]:
    zip5 = (patient.zip or "")
    zip_fmt = f"{zip5[:5]}-{zip5[5:]}" if len(zip5) == 9 else zip5
    last = f"{patient.city or ''}, {patient.state or ''} {zip_fmt}".strip(" ,")
    lines = [patient.full_name, patient.address_line1 or "", patient.address_line2 or "", last]
    return tuple(line for line in lines if line.strip()) if patient.address_line1 and patient.city else (patient.full_name,)


def _phone(digits: str | None) -> str:
    d = re.sub(r"\D", "", digits or "")
    return f"({d[:3]}) {d[3:6]}-{d[6:]}" if len(d) == 10 else ""


def create_letter(patient_id: int, trigger_dos: str | None, *, user: User,
                  now: datetime | None = None) -> NoShowLetter:
    """Produce, archive and index the attendance letter for a crossed threshold, and open the
    clinical-review task for the primary counselor.

    Refused (Invalid) without the patient's mail consent, without a mailing address or program
    phone, for a date where no threshold was crossed, or if any part a reader could see would
    name the program's kind; Conflict if the letter exists. Renders outside the transaction."""
    now = now or now_utc()
    patient = _patient(patient_id)
    day = _date(trigger_dos, "trigger_dos", "Date of the threshold")
    if not patient.mail_consent:
        raise Invalid(f"{patient.roster_name} has not consented to mail from the program; no "
                      "letter may be sent. Reach out by phone and log it.", field="mail_consent")
    program = db.session.scalar(select(Program).join(Cohort, Cohort.program_id == Program.id)
                                .join(Enrollment, Enrollment.cohort_id == Cohort.id)
                                .where(Enrollment.patient_id == patient.id).limit(1))
    if program is None:
        raise Invalid("The patient is not enrolled in any group.")
    today = local_today(program.tz, now)
    trigger = next((t for t in patient_triggers(patient, program, today=today) if t.dos == day), None)
    if trigger is None:
        raise Invalid(f"No letter threshold was crossed on {day:%b %-d, %Y}.", field="trigger_dos")
    if db.session.scalar(select(NoShowLetter.id).where(NoShowLetter.patient_id == patient.id,
                                                       NoShowLetter.trigger_dos == day)):
        raise Conflict("That letter was already produced; it is in the archive.")
    policy = policy_in_force(facts.policy_terms(program.id), day)
    sender = db.session.get(NoShowPolicy, policy.policy_id).letter_sender
    counselor = primary_counselor(patient, day).split(",")[0].strip() or "the front desk"
    ret = tuple(x for x in ((program.service_line1 or (program.address or "").split(",")[0]),
                            (f"{program.service_city}, {program.service_state} {program.service_zip[:5]}"
                             if program.service_city and program.service_zip else
                             ",".join((program.address or "").split(",")[1:]).strip())) if x)
    names = [f"{d:%A, %B %-d}" for d in trigger.dates]
    missed = names[0] if len(names) == 1 else "; ".join(names[:-1]) + " and " + names[-1]
    try:
        letter = build_letter({"first_name": patient.preferred_first or patient.legal_first,
                               "missed_dates": missed, "phone": _phone(program.contact_phone),
                               "reply_by": f"{today + timedelta(days=LETTER_REPLY_DAYS):%A, %B %-d}",
                               "counselor": counselor, "sender": sender},
                              sender=sender, return_address=ret, recipient=_address(patient))
    except LetterError as exc:
        raise Invalid(f"The letter cannot be sent: {exc}.") from exc
    record = {"kind": "no_show_letter", "program": {"name": sender},
              "patient": {"id": patient.id, "mrn": patient.mrn},
              "trigger": {"dos": day.isoformat(), "kind": trigger.kind, "reason": trigger.reason,
                          "dates": [d.isoformat() for d in trigger.dates]},
              "letter": {"sender": letter.sender, "return_address": list(letter.return_address),
                         "recipient": list(letter.recipient), "body": letter.body},
              "date_label": f"{today:%B %-d, %Y}", "created_at": now.isoformat()}
    ids = (patient.id, user.id)
    db.session.rollback()
    pdf = letter_pdf(record)
    try:
        patient = db.session.get(Patient, ids[0])
        # The title and subject stay neutral too: they appear in the auditor's document list.
        doc = archive_document(kind="no_show_letter", title=f"Attendance letter {day.isoformat()}",
                               dos=day, subject={"patient_id": str(ids[0]), "trigger_dos": day.isoformat()},
                               actor=f"user:{ids[1]}", record=record, pdf=pdf, occurred_at=now,
                               patient_lines=[PatientLine(ids[0], {"patient_id": str(ids[0]),
                                                                   "trigger_dos": day.isoformat(),
                                                                   "reason": trigger.reason})])
        row = NoShowLetter(patient_id=ids[0], trigger_dos=day, trigger=trigger.reason[:300],
                           document_id=doc.id, created_by_id=ids[1], created_at=now)
        db.session.add(row)
        open_review_task(patient, trigger, now=now)
        db.session.add(OutreachAttempt(patient_id=ids[0], dos=day, at=now, method="letter",
                                       outcome="sent", note="Attendance letter (archived)",
                                       staff_id=ids[1]))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return row


__all__ = ["LABELS", "balance_cents", "charge_fee", "close_task", "create_letter", "fee_context",
           "log_outreach", "open_review_task", "parse_cents", "patient_triggers", "primary_counselor",
           "publish_policy", "record_notice", "record_payment", "sign_acknowledgment", "sweep",
           "usd", "waive_fee"]
