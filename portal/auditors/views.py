"""Auditor grant pages: grant, list, revoke (admin; billing when the program allows it), create
an auditor account (admin), and what each auditor viewed (the access log, per auditor).
Views parse input, call one service and pick the page; every write is in
``portal.auditors.service``."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.access_control import allow
from portal.auditors import service as svc
from portal.auditors.rules import LEGAL_BASES
from portal.clock import now_utc
from portal.extensions import db
from portal.models import AccessLogEntry, Patient, Payer, User
from portal.program import current_program
from portal.services import accounts
from portal.services.errors import ServiceError

bp = Blueprint("auditors", __name__, url_prefix="/auditors")

GRANTERS = svc.GRANTERS
LOG_PAGE = 200
BILLING_REFUSED = ("The program does not let billing staff grant auditor access; an "
                   "administrator can allow it on Admin \u2192 Program.")


@bp.record_once
def _globals(state) -> None:
    state.app.jinja_env.globals["program_tz"] = lambda: current_program().tz
    state.app.jinja_env.globals["may_grant_auditors"] = _may_grant
    state.app.jinja_env.globals["may_open_history"] = _may_open_history


def _may_grant() -> bool:
    return current_user.is_authenticated and svc.may_grant(current_user, current_program())


def _may_open_history(patient) -> bool:
    from portal.auditors import access

    if not access.scoped():
        return True
    return any(g.dos_from is None and g.dos_to is None for g in access.scope().grants_for(patient))


def _me():
    return current_user._get_current_object()


def _granter() -> None:
    """Billing reaches these pages only when the program allows it (admins always)."""
    if not svc.may_grant(current_user, current_program()):
        abort(403, description=BILLING_REFUSED)


def _page(status: int = 200, **ctx):
    program = current_program()
    ctx.setdefault("form", {})
    return render_template(
        "auditors/grants.html", groups=svc.all_grants(), auditors=svc.auditors(),
        payers=db.session.scalars(select(Payer).order_by(Payer.name)).all(),
        bases=LEGAL_BASES, tz=program.tz, now=now_utc(),
        is_admin=current_user.role == "admin", **ctx), status


@bp.route("/grants")
@allow(*GRANTERS)
def grants():
    _granter()
    return _page()


@bp.route("/grants", methods=["POST"])
@allow(*GRANTERS)
def grant():
    _granter()
    try:
        g = svc.create_grant(request.form, program=current_program(), by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _page(exc.status, grant_errors=exc.details or [exc.message], form=request.form)
    flash(f"Access granted to {g.auditor.name} until "
          f"{g.expires_at.astimezone(current_program().tz):%b %-d, %Y %-I:%M %p %Z}.")
    return redirect(url_for(".grants"), code=303)


@bp.route("/grants/<int:grant_id>/revoke", methods=["POST"])
@allow(*GRANTERS)
def revoke(grant_id: int):
    _granter()
    try:
        g = svc.find_grant(grant_id)
        svc.revoke_grant(g, request.form.get("reason", ""), program=current_program(), by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _page(exc.status, grant_errors=exc.details or [exc.message], revoke_id=grant_id,
                     revoke_form=request.form)
    flash(f"Grant {g.id} of {g.auditor.name} revoked; their access under it ended now.")
    return redirect(url_for(".grants"), code=303)


@bp.route("/accounts", methods=["POST"])
@allow("admin")
def create_account():
    """A new auditor account and its one-time set-password link (the staff invite flow)."""
    try:
        user = accounts.create_staff(name=request.form.get("name", ""),
                                     email=request.form.get("email", ""), role="auditor",
                                     credential=None, npi=None, by=_me())
        token = accounts.create_link(user, purpose="invite", by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _page(exc.status, account_errors=exc.details or [exc.message],
                     account_form=request.form)
    base = current_app.config.get("PORTAL_BASE_URL")
    path = url_for("accounts.set_password", token=token)
    link = (base.rstrip("/") + path) if base else url_for("accounts.set_password", token=token,
                                                          _external=True)
    return _page(link=link, link_user=user)


@bp.route("/setting", methods=["POST"])
@allow("admin")
def setting():
    """The program setting: may billing staff grant auditor access?"""
    allowed = request.form.get("billing_grants_auditors") == "yes"
    changed = svc.set_billing_may_grant(current_program(), allowed, by=_me())
    flash(("Billing staff may now grant auditor access." if allowed else
           "Only administrators may grant auditor access now.") if changed else "Nothing changed.")
    return redirect(url_for("admin.program") + "#auditor-setting", code=303)


@bp.route("/<int:user_id>/views")
@allow(*GRANTERS)
def viewed(user_id: int):
    """What one auditor viewed: every page and download, newest first, with the patient."""
    _granter()
    auditor = db.session.get(User, user_id)
    if auditor is None or auditor.role != "auditor":
        abort(404, description="There is no auditor with that id.")
    rows = db.session.execute(
        select(AccessLogEntry, Patient.mrn)
        .outerjoin(Patient, Patient.id == AccessLogEntry.patient_id)
        .where(AccessLogEntry.user_id == auditor.id)
        .order_by(AccessLogEntry.at.desc(), AccessLogEntry.id.desc()).limit(LOG_PAGE + 1)).all()
    program = current_program()
    return render_template("auditors/viewed.html", auditor=auditor, rows=rows[:LOG_PAGE],
                           more=len(rows) > LOG_PAGE, tz=program.tz,
                           grants=svc.grants_of(auditor), status_of=svc.status_of)
