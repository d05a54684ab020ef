"""Treatment plans: the patient's plan page (versions, draft, review), the patient's tablet
signature (the roster's signing dialog), and the clinician's and supervisor's signatures."""
from __future__ import annotations

from flask import (abort, current_app, flash, make_response, redirect, render_template,
                   request, url_for)
from flask_login import current_user

from portal.access_control import allow
from portal.errors import is_partial_request
from portal.patient_access import patient_for_page
from portal.models import Patient
from portal.notes import bp
from portal.program import current_program
from portal.rosters.views import _decode_png
from portal.rules import notes as rules
from portal.services import plans as svc
from portal.services.errors import ServiceError

PLAN_WRITERS = ("clinician", "admin")
PLAN_READERS = ("facilitator", "clinician", "admin")
BLANK_ROWS = 3


def _patient(patient_id: int) -> Patient:
    return patient_for_page(patient_id)


def _rows_from_form(form) -> tuple[list[dict], list[dict]]:
    rows = [{k: form.get(f"{k}_{i}", "") for k in ("key", "dimension", "text", "goal",
                                                   "objective", "target_date")}
            for i in range(svc.MAX_ROWS)]
    interventions = [{k: form.get(f"iv_{k}_{i}", "") for k in ("modality", "frequency", "staff")}
                     for i in range(svc.MAX_ROWS)]
    return rows, interventions


def _plan_page(patient: Patient, *, status: int = 200, **extra):
    plans = svc.patient_plans(patient.id)
    draft = next((p for p in plans if p.status == "draft"), None)
    latest_signed = next((p for p in plans if p.status == "signed"), None)
    seed = (latest_signed.content if latest_signed else {"problems": [], "interventions": []})
    return render_template("notes/plan.html", patient=patient, plans=plans, draft=draft,
                           latest=latest_signed, seed=seed, blank_rows=BLANK_ROWS,
                           dimensions=rules.ASAM_DIMENSIONS, editions=svc.ASAM_EDITIONS,
                           missing=svc.missing_signatures(draft) if draft else [],
                           tz=current_program().tz, **extra), status


@bp.route("/plans/patients/<int:patient_id>")
@allow(*PLAN_READERS)
def plan(patient_id: int):
    return _plan_page(_patient(patient_id))


@bp.route("/plans/patients/<int:patient_id>/versions", methods=["POST"])
# The form posts to its own page's URL (registered first, so url_for builds it): a save that
# fails re-renders the form at the URL the user was on, not at /versions (QA #16).
@bp.route("/plans/patients/<int:patient_id>", methods=["POST"])
@allow(*PLAN_WRITERS)
def new_version(patient_id: int):
    """Write the first plan, or a review (the next version)."""
    patient = _patient(patient_id)
    rows, interventions = _rows_from_form(request.form)
    try:
        svc.create_plan(patient.id, author=current_user._get_current_object(), rows=rows,
                        interventions=interventions,
                        asam_edition=request.form.get("asam_edition", ""))
    except ServiceError as exc:
        if exc.status not in (409, 422):
            abort(exc.status, description=exc.message)
        return _plan_page(patient, status=exc.status, error=exc.message, form=request.form)
    flash("Plan written. Now collect the signatures.")
    return redirect(url_for(".plan", patient_id=patient.id))


@bp.route("/plans/<int:plan_id>/patient-sign")
@allow(*PLAN_READERS)
def plan_sign_panel(plan_id: int):
    try:
        plan = svc.get_plan(plan_id)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    _patient(plan.patient_id)
    if plan.status != "draft" or plan.patient_signed_at is not None:
        abort(409, description="This plan version needs no patient signature now.")
    if not is_partial_request():
        return redirect(url_for(".plan", patient_id=plan.patient_id))
    return render_template("notes/_plan_sign_panel.html", plan=plan)


@bp.route("/plans/<int:plan_id>/patient-signature", methods=["POST"])
@allow(*PLAN_READERS)
def plan_patient_signature(plan_id: int):
    try:
        plan = svc.get_plan(plan_id)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    _patient(plan.patient_id)
    patient_id = plan.patient_id
    try:
        svc.sign_plan_patient(plan_id, png=_decode_png("signature_png"),
                              max_png_bytes=current_app.config["MAX_SIGNATURE_BYTES"])
    except ServiceError as exc:
        if exc.status in (409, 422):
            plan = svc.get_plan(plan_id)
            return render_template("notes/_plan_sign_panel.html", plan=plan, error=exc.message,
                                   final=exc.status == 409), exc.status
        abort(exc.status, description=exc.message)
    target = url_for(".plan", patient_id=patient_id)
    flash("The patient signed the plan.")
    if is_partial_request():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


@bp.route("/plans/<int:plan_id>/sign", methods=["POST"])
@allow(*PLAN_WRITERS)
def plan_staff_signature(plan_id: int):
    try:
        plan = svc.get_plan(plan_id)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    patient = _patient(plan.patient_id)
    try:
        svc.sign_plan_staff(plan_id, user=current_user._get_current_object(),
                            attested=request.form.get("attest") == "yes",
                            as_supervisor=request.form.get("as") == "supervisor")
    except ServiceError as exc:
        if exc.status not in (409, 422):
            abort(exc.status, description=exc.message)
        return _plan_page(patient, status=exc.status, error=exc.message)
    flash("Signed.")
    return redirect(url_for(".plan", patient_id=patient.id))
