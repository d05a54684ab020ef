"""Treatment plans: write a version, collect the patient's tablet signature, the clinician's and
(where the payer file requires it) a supervisor's; the last required signature renders the
plan to PDF outside any transaction and archives it, and the version takes effect that
program-local date. A review is a new version (objective keys carry over).

Each function completes and commits, or raises a ``ServiceError`` having written nothing.
"""
from __future__ import annotations

import json
from datetime import date, datetime

from flask import current_app
from sqlalchemy import func, select

from portal.clock import fmt_local, now_utc
from portal.documents.clinical import PLAN_ATTESTATION, render_plan_pdf
from portal.documents.render import RenderTimeout
from portal.extensions import db
from portal.models import Patient, TreatmentPlan, User
from portal.rules import notes as rules
from portal.rules.claim_lines import split_credentials
from portal.rules.payer_rules import NoRulesInForceError, UnknownPayerError
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound
from portal.services.notes import clean_text
from portal.signatures import SignatureRejected, check_signature_png

MAX_ROWS = 20
ASAM_EDITIONS = {"3": "ASAM Criteria, 3rd edition (2013)", "4": "ASAM Criteria, 4th edition (2023)"}


def get_plan(plan_id: int) -> TreatmentPlan:
    plan = db.session.get(TreatmentPlan, plan_id)
    if plan is None:
        raise NotFound(f"There is no treatment plan {plan_id}.")
    return plan


def patient_plans(patient_id: int) -> list[TreatmentPlan]:
    return list(db.session.scalars(select(TreatmentPlan).where(
        TreatmentPlan.patient_id == patient_id).order_by(TreatmentPlan.version.desc())))


def _plan_rules(patient: Patient, on: date):
    try:
        return current_app.extensions["rulebook"].rules_for(patient.payer.rule_key, on)
    except (UnknownPayerError, NoRulesInForceError):
        return None


def validate_content(form_rows: list[dict], interventions: list[dict], *, written_on: date,
                     keep_keys: list[str] | None = None) -> dict:
    """Rows -> plan content. Every row needs an ASAM dimension, a problem, a long-term goal, a
    measurable objective and a target date on or after the day the plan is written; at least
    one intervention with modality, frequency and responsible staff. Blank rows are dropped."""
    problems = []
    used = set()
    keep_keys = keep_keys or []
    for i, row in enumerate(form_rows[:MAX_ROWS]):
        label = f"Problem {i + 1}"
        text = clean_text(row.get("text"), f"{label}: problem", max_chars=4000)
        goal = clean_text(row.get("goal"), f"{label}: goal", max_chars=4000)
        objective = clean_text(row.get("objective"), f"{label}: objective", max_chars=4000)
        target = (row.get("target_date") or "").strip()
        dimension = (row.get("dimension") or "").strip()
        if not any((text, goal, objective, target)):
            continue
        if dimension not in {"1", "2", "3", "4", "5", "6"}:
            raise Invalid(f"{label}: choose the ASAM dimension (1-6) it belongs to.", field=label)
        if not (text and goal and objective):
            raise Invalid(f"{label}: a problem needs its long-term goal and a measurable "
                          "objective.", field=label)
        try:
            target_date = date.fromisoformat(target)
        except ValueError:
            raise Invalid(f"{label}: enter the objective's target date (YYYY-MM-DD).",
                          field=label) from None
        if target_date < written_on:
            raise Invalid(f"{label}: the target date {target_date:%B %-d, %Y} is before the plan "
                          "is written.", field=label)
        key = (row.get("key") or "").strip()
        if key not in keep_keys or key in used:
            key = ""
        problems.append({"key": key, "dimension": dimension, "text": text, "goal": goal,
                         "objective": objective, "target_date": target_date.isoformat()})
        if key:
            used.add(key)
    n = 1
    for p in problems:
        if not p["key"]:
            while f"O{n}" in used:
                n += 1
            p["key"] = f"O{n}"
            used.add(p["key"])
    if not problems:
        raise Invalid("Add at least one problem with its ASAM dimension, goal, measurable "
                      "objective and target date.", field="Problem 1")
    items = []
    for i, row in enumerate(interventions[:MAX_ROWS]):
        vals = [clean_text(row.get(k), f"Intervention {i + 1}: {k}", max_chars=1000)
                for k in ("modality", "frequency", "staff")]
        if not any(vals):
            continue
        if not all(vals):
            raise Invalid(f"Intervention {i + 1}: give its modality, frequency and responsible "
                          "staff.", field=f"Intervention {i + 1}")
        items.append(dict(zip(("modality", "frequency", "staff"), vals)))
    if not items:
        raise Invalid("Add at least one intervention (modality, frequency, responsible staff).",
                      field="Intervention 1")
    return {"problems": problems, "interventions": items}


def create_plan(patient_id: int, *, author: User, rows: list[dict], interventions: list[dict],
                asam_edition: str, now: datetime | None = None) -> TreatmentPlan:
    """A new draft version: version 1, or a review of the latest signed version (its objective
    keys carry over so notes keep their link). Raises NotFound, Conflict (an unsigned draft
    already exists), Invalid."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("There is no such patient.")
    if asam_edition not in ASAM_EDITIONS:
        raise Invalid("Choose the ASAM Criteria edition the plan follows.", field="asam_edition")
    now = now or now_utc()
    written_on = now.astimezone(patient_tz(patient)).date()
    versions = patient_plans(patient_id)
    if any(v.status == "draft" for v in versions):
        raise Conflict("This patient already has an unsigned plan draft; finish or sign it first.")
    previous = next((v for v in versions if v.status == "signed"), None)
    keep = [o["key"] for o in previous.objectives] if previous else []
    content = validate_content(rows, interventions, written_on=written_on, keep_keys=keep)
    version_no = (db.session.scalar(select(func.max(TreatmentPlan.version)).where(
        TreatmentPlan.patient_id == patient_id)) or 0) + 1
    pr = _plan_rules(patient, written_on)
    plan = TreatmentPlan(patient_id=patient_id, version=version_no,
                         previous_id=previous.id if previous else None,
                         asam_edition=asam_edition, level_of_care=patient.level_of_care or "2.1",
                         content_json=json.dumps(content, ensure_ascii=False),
                         created_by_id=author.id, created_at=now,
                         supervisor_required=bool(pr and pr.plan.supervisor_signature))
    db.session.add(plan)
    db.session.commit()
    return plan


def patient_tz(patient: Patient):
    from portal.program import current_program
    return current_program().tz


def _draft(plan_id: int) -> TreatmentPlan:
    plan = get_plan(plan_id)
    if plan.status != "draft":
        raise Conflict("This plan version is signed and archived; it can no longer change. "
                       "Start a review (a new version) or write an addendum.")
    return plan


def _not_before_creation(plan: TreatmentPlan, when: datetime, who: str) -> None:
    if when < plan.created_at:
        raise Invalid(f"The {who} signature would be dated {when:%Y-%m-%d %H:%M} UTC, before the "
                      f"plan was written ({plan.created_at:%Y-%m-%d %H:%M} UTC). A plan cannot be "
                      "signed before it exists.", field="signed_at")


def sign_plan_patient(plan_id: int, *, png: bytes, max_png_bytes: int,
                      now: datetime | None = None) -> TreatmentPlan:
    """The patient's signature from the tablet signing dialog (judged like a roster signature)."""
    plan = _draft(plan_id)
    when = now or now_utc()
    _not_before_creation(plan, when, "patient's")
    if plan.patient_signed_at is not None:
        raise Conflict("The patient has already signed this plan version.")
    try:
        image = check_signature_png(png, max_png_bytes)
    except SignatureRejected as exc:
        raise Invalid(str(exc), field="signature") from exc
    plan.patient_signature_png = image.png
    plan.patient_signature_sha256 = image.sha256
    plan.patient_signed_at = when
    db.session.commit()
    return _finish_if_complete(plan.id)


def sign_plan_staff(plan_id: int, *, user: User, attested: bool, as_supervisor: bool = False,
                    now: datetime | None = None) -> TreatmentPlan:
    """The clinician's (or supervisor's) electronic signature: name, credential, NPI, time."""
    plan = _draft(plan_id)
    when = now or now_utc()
    who = "supervisor's" if as_supervisor else "clinician's"
    _not_before_creation(plan, when, who)
    if not attested:
        raise Invalid("Tick the box to confirm you reviewed the plan with the patient.",
                      field="attest")
    if not user.credential:
        raise Invalid("Your account has no credential on file; a plan signature must carry it.")
    if as_supervisor:
        if not plan.supervisor_required:
            raise Conflict("This payer does not require a supervisor's signature on the plan.")
        if plan.supervisor_signed_at is not None:
            raise Conflict("The supervisor has already signed this plan version.")
        if user.id == plan.clinician_id:
            raise Invalid("The supervisor must be someone other than the signing clinician.")
        pr = _plan_rules(plan.patient, plan.created_at.date())
        allowed = pr.supervision.supervisor_credentials if pr else frozenset()
        if allowed and not (split_credentials(user.credential) & allowed):
            raise Invalid(f"Your credential ({user.credential}) may not supervise under this "
                          "payer's rules.")
        plan.supervisor_id, plan.supervisor_signed_at = user.id, when
    else:
        if plan.clinician_signed_at is not None:
            raise Conflict("A clinician has already signed this plan version.")
        plan.clinician_id, plan.clinician_signed_at = user.id, when
    db.session.commit()
    return _finish_if_complete(plan.id)


def missing_signatures(plan: TreatmentPlan) -> list[str]:
    out = []
    if plan.patient_signed_at is None:
        out.append("patient")
    if plan.clinician_signed_at is None:
        out.append("clinician")
    if plan.supervisor_required and plan.supervisor_signed_at is None:
        out.append("supervisor")
    return out


def _person(user: User, at: datetime, tz) -> dict:
    return {"user_id": str(user.id), "name": user.name, "credential": user.credential or "",
            "npi": user.npi or "", "at": at.isoformat().replace("+00:00", "Z"),
            "at_local": fmt_local(at, tz, "%b %-d, %Y %-I:%M %p %Z")}


def plan_record(plan: TreatmentPlan, effective: date, tz, program) -> dict:
    p = plan.patient
    dims = rules.ASAM_DIMENSIONS[plan.asam_edition]
    prev = db.session.get(TreatmentPlan, plan.previous_id) if plan.previous_id else None
    last = max(t for t in (plan.patient_signed_at, plan.clinician_signed_at,
                           plan.supervisor_signed_at) if t)
    return {
        "kind": "treatment_plan",
        "program": {"name": program.name, "billing_npi": program.billing_npi,
                    "time_zone": program.time_zone},
        "plan_id": str(plan.id), "version": plan.version,
        "patient": {"id": str(p.id), "mrn": p.mrn, "name": p.full_name},
        "asam_edition": plan.asam_edition, "asam_edition_label": ASAM_EDITIONS[plan.asam_edition],
        "level_of_care": plan.level_of_care,
        "created_at": plan.created_at.isoformat().replace("+00:00", "Z"),
        "created_at_local": fmt_local(plan.created_at, tz, "%b %-d, %Y %-I:%M %p %Z"),
        "effective_date": effective.isoformat(),
        "previous": ({"version": prev.version, "entry_seq": prev.document.entry_seq
                      if prev.document else None} if prev else None),
        "problems": [dict(row, dimension_label=dims[row["dimension"]])
                     for row in plan.content["problems"]],
        "interventions": plan.content["interventions"],
        "signatures": {
            "patient": {"sha256": plan.patient_signature_sha256,
                        "at": plan.patient_signed_at.isoformat().replace("+00:00", "Z"),
                        "at_local": fmt_local(plan.patient_signed_at, tz, "%b %-d, %Y %-I:%M %p %Z")},
            "clinician": _person(plan.clinician, plan.clinician_signed_at, tz),
            "supervisor": (_person(plan.supervisor, plan.supervisor_signed_at, tz)
                           if plan.supervisor_signed_at else None),
        },
        "completed_at": last.isoformat().replace("+00:00", "Z"),
        "attestation": PLAN_ATTESTATION,
    }


def _finish_if_complete(plan_id: int) -> TreatmentPlan:
    """When every required signature is in: render, archive, and put the version in effect."""
    from portal.program import current_program

    plan = get_plan(plan_id)
    if missing_signatures(plan) or plan.status != "draft":
        return plan
    program = current_program()
    tz = program.tz
    last = max(t for t in (plan.patient_signed_at, plan.clinician_signed_at,
                           plan.supervisor_signed_at) if t)
    effective = last.astimezone(tz).date()
    record = plan_record(plan, effective, tz, program)
    png = plan.patient_signature_png
    db.session.rollback()
    try:
        pdf = render_plan_pdf(record, {record["signatures"]["patient"]["sha256"]: png},
                              seconds=current_app.config["PORTAL_RENDER_SECONDS"])
    except RenderTimeout as exc:
        raise Invalid(f"{exc} Shorten the plan text; the signatures are kept.") from exc
    plan = db.session.scalar(select(TreatmentPlan).where(TreatmentPlan.id == plan_id)
                             .with_for_update())
    if plan.status != "draft":
        db.session.rollback()
        return plan
    line = {"patient_id": str(plan.patient_id), "mrn": record["patient"]["mrn"],
            "name": record["patient"]["name"], "version": str(plan.version),
            "effective_date": record["effective_date"],
            "objectives": ", ".join(o["key"] for o in plan.objectives),
            "signature_sha256": plan.patient_signature_sha256}
    try:
        doc = archive_document(
            kind="treatment_plan",
            title=f"Treatment plan {record['patient']['mrn']} v{plan.version}",
            dos=effective, subject={"plan_id": str(plan.id), "patient_id": str(plan.patient_id),
                                    "version": str(plan.version)},
            actor=f"user:{plan.clinician_id}", record=record, pdf=pdf, occurred_at=last,
            patient_lines=[PatientLine(plan.patient_id, line)])
        plan.status = "signed"
        plan.effective_date = effective
        plan.document_id = doc.id
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return plan
