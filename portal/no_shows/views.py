"""No-show pages.

- ``GET  /billing/no-shows``                          today's and the week's absences, fees, letters due, tasks, patterns
- ``GET  /no-shows/policy``                           policy versions; ``POST`` publishes the next (admin)
- ``GET  /no-shows/patients/<id>``                    the patient's absences, notices, ledger, outreach, letters, tasks
- ``POST /no-shows/patients/<id>/notices``            record a cancellation (with notice time) or a documented excuse
- ``POST /no-shows/patients/<id>/fees``               charge the fee for one absence (billing)
- ``POST /no-shows/fees/<charge_id>/waive``           waive a charge with a reason (billing)
- ``POST /no-shows/patients/<id>/payments``           record a payment (billing)
- ``POST /no-shows/patients/<id>/outreach``           log an outreach attempt
- ``POST /no-shows/patients/<id>/letters``            produce the threshold letter (archived PDF)
- ``POST /no-shows/patients/<id>/mail-consent``       record mail consent given or withdrawn
- ``POST /no-shows/patients/<id>/qmb``                record QMB status (billing; no fee ever)
- ``GET|POST /no-shows/patients/<id>/acknowledge``    the patient signs the policy on the tablet
- ``POST /no-shows/patients/<id>/tasks``              open the review task for a threshold (no letter)
- ``POST /no-shows/tasks/<id>/close``                 a clinician closes a clinical-review task
"""
from __future__ import annotations

import base64
import binascii
from datetime import date, datetime, timedelta

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.access_control import allow
from portal.clock import fmt_local, local_today, now_utc
from portal.extensions import db
from portal.patient_access import patient_for_page
from portal.models import (ClinicalReviewTask, Cohort, Enrollment, FeeLedgerEntry, NoShowLetter,
                           NoShowPolicy, OutreachAttempt, Patient, PolicyAcknowledgment)
from portal.models.no_shows import OUTREACH_METHODS, OUTREACH_OUTCOMES
from portal.no_shows import facts
from portal.no_shows.chart import HEIGHT, WIDTH, week_bars
from portal.program import current_program
from portal.rules.no_shows import (COUNTED, LABELS, UNCLASSIFIED, pattern, policy_in_force, triggers,
                                   weekly_counts)
from portal.services import no_shows as svc
from portal.services.errors import Invalid, ServiceError

bp = Blueprint("no_shows", __name__)

STAFF = ("facilitator", "clinician", "billing", "admin")
BILLING = ("billing", "admin")
CLINICAL = ("clinician", "admin")
HISTORY_DAYS = 90
CHART_WEEKS = 12


@bp.app_template_filter("no_show_label")
def _label(code: str | None) -> str:
    return LABELS.get(code or "", "")


def _patient(patient_id: int) -> Patient:
    return patient_for_page(patient_id)


# ----------------------------------------------------------------------------------------
# Billing "No-shows" page
# ----------------------------------------------------------------------------------------

@bp.route("/billing/no-shows")
@allow("billing", "admin", "clinician")
def billing_page():
    """``?date=YYYY-MM-DD`` (program-local, default today): that day's and its ISO week's
    absences with fee decisions; letters due; open review tasks; patterns; weekly chart.
    ``?cohort=NAME`` narrows absences, patterns and the chart to one cohort."""
    program = current_program()
    today = local_today(program.tz)
    raw = (request.args.get("date") or "").strip()
    try:
        day = date.fromisoformat(raw) if raw else today
    except ValueError:
        abort(400, description=f"Dates are written like 2026-11-30 (got \u201c{raw[:20]}\u201d).")
    cohorts = list(db.session.scalars(select(Cohort.name).where(Cohort.program_id == program.id)
                                      .order_by(Cohort.start_local)))
    cohort = (request.args.get("cohort") or "").strip() or None
    if cohort and cohort not in cohorts:
        abort(400, description=f"There is no cohort \u201c{cohort[:60]}\u201d.")
    monday = day - timedelta(days=day.weekday())
    window_start = day - timedelta(days=HISTORY_DAYS)
    rows = [a for a in facts.load_rows(program, window_start, monday + timedelta(days=6))
            if cohort is None or a.cohort_name == cohort]
    policies = facts.policy_terms(program.id)
    week = [a for a in facts.absences(rows) if monday <= a.dos <= monday + timedelta(days=6)]
    patients = facts.patients_by_id({a.patient_id for a in rows})
    acks = facts.acknowledgments(patients)
    forbidding = facts.forbidding_payers()
    charged = {(pid, sid) for pid, sid in db.session.execute(
        select(FeeLedgerEntry.patient_id, FeeLedgerEntry.session_id).where(FeeLedgerEntry.kind == "charge"))}
    spans = facts.payer_spans(patients)
    week_rows = [(a, patients[a.patient_id],
                  facts.fee_for(a, patients[a.patient_id], acks.get(a.patient_id, []), policies, forbidding,
                                spans.get(a.patient_id)),
                  (a.patient_id, a.session_id) in charged)
                 for a in sorted(week, key=lambda a: (a.dos, a.cohort_name)) if a.patient_id in patients]
    letters_made = set(db.session.execute(select(NoShowLetter.patient_id, NoShowLetter.trigger_dos)))
    letters_due, concerns = [], []
    for pid, patient in sorted(patients.items(), key=lambda kv: kv[1].legal_last):
        occ = facts.occurrences(rows, pid)
        for t in triggers(occ, lambda d: policy_in_force(policies, d)):
            if (pid, t.dos) not in letters_made:
                letters_due.append((patient, t))
        p = pattern(occ, day)
        if p:
            concerns.append((patient, p))
    reached = set(db.session.execute(select(OutreachAttempt.patient_id, OutreachAttempt.dos)
                                     .where(OutreachAttempt.dos >= monday)))
    outreach_due = [(a, patients[a.patient_id]) for a in week
                    if a.code in COUNTED and (a.patient_id, a.dos) not in reached and a.patient_id in patients]
    tasks = db.session.scalars(select(ClinicalReviewTask).where(ClinicalReviewTask.status == "open")
                               .options(selectinload(ClinicalReviewTask.patient))
                               .order_by(ClinicalReviewTask.trigger_dos)).all()
    bars = week_bars(weekly_counts([(a.dos, a.code) for a in facts.absences(rows)], day, CHART_WEEKS))
    return render_template(
        "no_shows/billing.html", day=day, today=today, monday=monday, week_rows=week_rows,
        day_rows=[r for r in week_rows if r[0].dos == day], letters_due=letters_due,
        concerns=concerns, tasks=tasks, outreach_due=outreach_due, cohorts=cohorts, cohort=cohort, bars=bars, chart_w=WIDTH, chart_h=HEIGHT,
        policy=policy_in_force(policies, day), usd=svc.usd, fmt_local=fmt_local, tz=program.tz,
        unclassified=sum(1 for a in week if a.code == UNCLASSIFIED))


# ----------------------------------------------------------------------------------------
# Policy
# ----------------------------------------------------------------------------------------

@bp.route("/no-shows/policy")
@allow(*STAFF, "auditor")
def policy():
    return _policy_page()


def _policy_page(error: ServiceError | None = None, status: int = 200):
    program = current_program()
    versions = db.session.scalars(select(NoShowPolicy).where(NoShowPolicy.program_id == program.id)
                                  .order_by(NoShowPolicy.version.desc())).all()
    today = local_today(program.tz)
    form = request.form if error else {}
    if not error and versions:  # start the next version from the latest one's terms
        v = versions[0]
        form = {"grace_minutes": v.grace_minutes, "notice_hours": v.notice_hours,
                "fee": f"{v.fee_cents // 100}.{v.fee_cents % 100:02d}", "uniform": v.uniform,
                "letter_consecutive": v.letter_consecutive, "letter_count": v.letter_count,
                "window_days": v.window_days, "letter_sender": v.letter_sender, "body": v.body}
    return render_template("no_shows/policy.html", versions=versions, error=error,
                           form=form, today=today, usd=svc.usd,
                           fmt_local=fmt_local, tz=program.tz), status


@bp.route("/no-shows/policy", methods=["POST"])
@allow("admin")
def publish():
    try:
        p = svc.publish_policy(current_program(), current_user._get_current_object(), request.form)
    except ServiceError as exc:
        return _policy_page(exc, exc.status)
    flash(f"Policy version {p.version} published and archived.")
    return redirect(url_for(".policy"), code=303)


# ----------------------------------------------------------------------------------------
# Patient page
# ----------------------------------------------------------------------------------------

def _upcoming(patient: Patient, program, today: date, days: int = 14):
    """(cohort, date) choices for a phoned-in cancellation: the patient's groups that have
    not ended yet, from today."""
    out = []
    now_local = now_utc().astimezone(program.tz).replace(tzinfo=None)
    enrollments = db.session.scalars(select(Enrollment).where(Enrollment.patient_id == patient.id)).all()
    for n in range(days):
        d = today + timedelta(days=n)
        for e in sorted(enrollments, key=lambda e: e.cohort.start_local):
            ends = datetime.combine(d, e.cohort.start_local) + timedelta(minutes=e.cohort.duration_minutes)
            if e.active_on(d) and d.isoweekday() in e.cohort.weekday_set and ends > now_local:
                out.append((e.cohort, d))
    return out


def _patient_page(patient: Patient, error: ServiceError | None = None, status: int = 200,
                  section: str | None = None):
    program = current_program()
    today = local_today(program.tz)
    rows = facts.load_rows(program, today - timedelta(days=HISTORY_DAYS), today + timedelta(days=14),
                           patient_ids=[patient.id])
    policies = facts.policy_terms(program.id)
    acks_all = facts.acknowledgments([patient.id]).get(patient.id, [])
    forbidding = facts.forbidding_payers()
    ledger = db.session.scalars(select(FeeLedgerEntry).where(FeeLedgerEntry.patient_id == patient.id)
                                .order_by(FeeLedgerEntry.recorded_at, FeeLedgerEntry.id)).all()
    charged = {e.session_id: e for e in ledger if e.kind == "charge"}
    waived = {e.charge_id for e in ledger if e.kind == "waive"}
    spans = facts.payer_spans([patient.id]).get(patient.id)
    absences = [(a, facts.fee_for(a, patient, acks_all, policies, forbidding, spans), charged.get(a.session_id),
                 facts.payer_for(patient, a.dos, spans))
                for a in reversed(facts.absences(rows))]
    occ = facts.occurrences([r for r in rows if r.dos <= today], patient.id)
    trig = triggers(occ, lambda d: policy_in_force(policies, d))
    letters = db.session.scalars(select(NoShowLetter).where(NoShowLetter.patient_id == patient.id)
                                 .order_by(NoShowLetter.trigger_dos.desc())).all()
    made = {lt.trigger_dos for lt in letters}
    tasks = db.session.scalars(select(ClinicalReviewTask).where(ClinicalReviewTask.patient_id == patient.id)
                               .order_by(ClinicalReviewTask.trigger_dos.desc())).all()
    outreach = db.session.scalars(select(OutreachAttempt).where(OutreachAttempt.patient_id == patient.id)
                                  .order_by(OutreachAttempt.at.desc())).all()
    reached_after = [o.dos for o in outreach if o.dos]
    outreach_due = [a for a, _d, _c, _p in absences if a.code in COUNTED and a.dos not in reached_after]
    acks = db.session.scalars(select(PolicyAcknowledgment).where(PolicyAcknowledgment.patient_id == patient.id)
                              .order_by(PolicyAcknowledgment.signed_at.desc())).all()
    current = policy_in_force(policies, today)
    needs_ack = current is not None and current.policy_id not in {a.policy_id for a in acks}
    bars = week_bars(weekly_counts([(a.dos, a.code) for a in facts.absences(rows) if a.dos <= today],
                                   today, CHART_WEEKS))
    return render_template(
        "no_shows/patient.html", patient=patient, absences=absences, ledger=ledger, waived=waived,
        balance=svc.balance_cents(patient.id), letters_due=[t for t in trig if t.dos not in made],
        letters=letters, tasks=tasks, task_dates={t.trigger_dos for t in tasks}, outreach=outreach, outreach_due=outreach_due, acks=acks,
        needs_ack=needs_ack, current=current, pattern=pattern(occ, today), bars=bars,
        chart_w=WIDTH, chart_h=HEIGHT, upcoming=_upcoming(patient, program, today), today=today,
        now_local=now_utc().astimezone(program.tz), error=error, section=section,
        form=request.form if error else {}, usd=svc.usd, fmt_local=fmt_local, tz=program.tz,
        methods=OUTREACH_METHODS, outcomes=OUTREACH_OUTCOMES,
        past_absences=[a for a, _d, _c, _p in absences if a.dos <= today]), status


@bp.route("/no-shows/patients/<int:patient_id>")
@allow(*STAFF, "auditor")
def patient(patient_id: int):
    return _patient_page(_patient(patient_id))


def _act(patient_id: int, section: str, action, done: str):
    patient = _patient(patient_id)
    try:
        action(patient)
    except ServiceError as exc:
        db.session.rollback()
        return _patient_page(_patient(patient_id), exc, exc.status, section)
    flash(done)
    return redirect(url_for(".patient", patient_id=patient_id) + f"#{section}", code=303)


def _user():
    return current_user._get_current_object()


@bp.route("/no-shows/patients/<int:patient_id>/notices", methods=["POST"])
@allow(*STAFF)
def notice(patient_id: int):
    f = request.form
    # The form's one select carries "cohort id|date"; separate fields are accepted too.
    cohort_id, _, dos = (f.get("cohort_dos") or "").partition("|")
    return _act(patient_id, "notices", lambda p: svc.record_notice(
        p.id, kind=f.get("kind", ""), cohort_id=cohort_id or f.get("cohort_id"), dos=dos or f.get("dos"),
        notice_date=f.get("notice_date"), notice_time=f.get("notice_time"), reason=f.get("reason"),
        user=_user()), "Recorded.")


@bp.route("/no-shows/patients/<int:patient_id>/fees", methods=["POST"])
@allow(*BILLING)
def charge(patient_id: int):
    raw = (request.form.get("session_id") or "").strip()

    def act(p):
        if not raw.isdigit():
            raise Invalid("Choose the absence to charge.", field="session_id")
        svc.charge_fee(p.id, int(raw), user=_user())
    return _act(patient_id, "absences", act, "Fee charged.")


@bp.route("/no-shows/fees/<int:charge_id>/waive", methods=["POST"])
@allow(*BILLING)
def waive(charge_id: int):
    charge = db.session.get(FeeLedgerEntry, charge_id)
    if charge is None:
        abort(404, description="There is no such charge.")
    return _act(charge.patient_id, "ledger", lambda p: svc.waive_fee(
        charge_id, reason=request.form.get("reason"), user=_user()), "Charge waived.")


@bp.route("/no-shows/patients/<int:patient_id>/payments", methods=["POST"])
@allow(*BILLING)
def payment(patient_id: int):
    return _act(patient_id, "ledger", lambda p: svc.record_payment(
        p.id, amount=request.form.get("amount"), note=request.form.get("note"), user=_user()),
        "Payment recorded.")


@bp.route("/no-shows/patients/<int:patient_id>/outreach", methods=["POST"])
@allow(*STAFF)
def outreach(patient_id: int):
    f = request.form
    return _act(patient_id, "outreach", lambda p: svc.log_outreach(
        p.id, dos=f.get("dos"), method=f.get("method"), outcome=f.get("outcome"),
        note=f.get("note"), user=_user()), "Outreach logged.")


@bp.route("/no-shows/patients/<int:patient_id>/letters", methods=["POST"])
@allow("clinician", "billing", "admin")
def letter(patient_id: int):
    return _act(patient_id, "letters", lambda p: svc.create_letter(
        p.id, request.form.get("trigger_dos"), user=_user()),
        "Letter produced and archived; a clinical-review task is open for the primary counselor.")


@bp.route("/no-shows/patients/<int:patient_id>/mail-consent", methods=["POST"])
@allow(*CLINICAL)
def mail_consent(patient_id: int):
    def act(p):
        value = request.form.get("consent")
        if value not in ("yes", "no"):
            raise Invalid("Choose whether the patient consents to mail.", field="consent")
        p.mail_consent = value == "yes"
        db.session.commit()
    return _act(patient_id, "letters", act, "Mail consent recorded.")


@bp.route("/no-shows/patients/<int:patient_id>/qmb", methods=["POST"])
@allow(*BILLING)
def qmb(patient_id: int):
    return _act(patient_id, "ledger", lambda p: svc.set_qmb(p.id, request.form.get("qmb"), user=_user()),
                "QMB status recorded.")


@bp.route("/no-shows/patients/<int:patient_id>/tasks", methods=["POST"])
@allow(*CLINICAL)
def open_task(patient_id: int):
    return _act(patient_id, "tasks", lambda p: svc.open_task_for(p.id, request.form.get("trigger_dos")),
                "Clinical-review task opened for the primary counselor.")


@bp.route("/no-shows/tasks/<int:task_id>/close", methods=["POST"])
@allow(*CLINICAL)
def close_task(task_id: int):
    task = db.session.get(ClinicalReviewTask, task_id)
    if task is None:
        abort(404, description="There is no such task.")
    return _act(task.patient_id, "tasks", lambda p: svc.close_task(
        task_id, resolution=request.form.get("resolution"), user=_user()), "Review recorded.")


# ----------------------------------------------------------------------------------------
# Acknowledgment on the tablet
# ----------------------------------------------------------------------------------------

def _current_policy() -> NoShowPolicy | None:
    program = current_program()
    t = policy_in_force(facts.policy_terms(program.id), local_today(program.tz))
    return db.session.get(NoShowPolicy, t.policy_id) if t else None


@bp.route("/no-shows/patients/<int:patient_id>/acknowledge")
@allow("facilitator", "clinician", "admin")
def acknowledge_form(patient_id: int):
    patient = _patient(patient_id)
    policy = _current_policy()
    if policy is None:
        abort(409, description="No policy is in force today; publish one first.")
    return render_template("no_shows/acknowledge.html", patient=patient, policy=policy,
                           usd=svc.usd, error=None)


@bp.route("/no-shows/patients/<int:patient_id>/acknowledge", methods=["POST"])
@allow("facilitator", "clinician", "admin")
def acknowledge(patient_id: int):
    patient = _patient(patient_id)
    policy = _current_policy()
    if policy is None:
        abort(409, description="No policy is in force today; publish one first.")
    raw = request.form.get("signature_png") or ""
    try:
        if not raw.startswith("data:image/png;base64,"):
            raise Invalid("Please sign in the box.", field="signature")
        try:
            png = base64.b64decode(raw.split(",", 1)[1], validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("The signature was damaged in transit; please sign again.", field="signature")
        ack = svc.sign_acknowledgment(patient.id, policy.id, png=png, witness=_user(),
                                      max_png_bytes=current_app.config["MAX_SIGNATURE_BYTES"])
    except ServiceError as exc:
        db.session.rollback()
        return render_template("no_shows/_acknowledge_form.html", patient=_patient(patient_id),
                               policy=_current_policy(), usd=svc.usd, error=exc.message), exc.status
    return render_template("no_shows/_acknowledged.html", patient=patient, ack=ack,
                           fmt_local=fmt_local, tz=current_program().tz)
