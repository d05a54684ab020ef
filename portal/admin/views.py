"""Admin views. Each page is one template; a form posts with htmx (hx-select="#main") or as a
plain form, and gets the same page back, with a 422 and the messages when input is refused."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from portal.access_control import allow
from portal.admin import bp
from portal.clock import local_today
from portal.extensions import db
from portal.models import AdminLogEntry, Closure, Cohort, Payer, User
from portal.models.people import ROLES
from portal.program import current_program
from portal.services import accounts, admin_settings, session_changes
from portal.services.errors import ServiceError

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LOG_PAGE = 100


def _me():
    return current_user._get_current_object()


def _errors(exc: ServiceError) -> list[str]:
    return exc.details or [exc.message]


@bp.route("/")
@allow("admin")
def index():
    return redirect(url_for(".program"))


@bp.route("/program", methods=["GET", "POST"])
@allow("admin")
def program():
    prog = current_program()
    errors, status = [], 200
    if request.method == "POST":
        try:
            changed = admin_settings.update_program(prog, request.form, by=_me())
        except ServiceError as exc:
            db.session.rollback()
            errors, status = _errors(exc), exc.status
        else:
            flash(f"Saved ({len(changed)} field(s) changed)." if changed else "Nothing changed.")
            return redirect(url_for(".program"))
    return render_template("admin/program.html", program=prog, errors=errors,
                           form=request.form if errors else None), status


def _staff_page(status=200, **ctx):
    staff = db.session.scalars(select(User).order_by(User.is_active_user.desc(), User.name)).all()
    return render_template("admin/staff.html", staff=staff, roles=ROLES,
                           no_password=accounts.NO_PASSWORD, **ctx), status


@bp.route("/staff", methods=["GET", "POST"])
@allow("admin")
def staff():
    if request.method == "GET":
        return _staff_page()
    try:
        user = accounts.create_staff(name=request.form.get("name", ""),
                                     email=request.form.get("email", ""),
                                     role=request.form.get("role", ""),
                                     credential=request.form.get("credential"),
                                     npi=request.form.get("npi"), by=_me())
        token = accounts.create_link(user, purpose="invite", by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _staff_page(exc.status, errors=_errors(exc), form=request.form)
    return _staff_page(link=_link_url(token), link_user=user)


def _link_url(token: str) -> str:
    base = current_app.config.get("PORTAL_BASE_URL")
    path = url_for("accounts.set_password", token=token)
    return (base.rstrip("/") + path) if base else url_for("accounts.set_password", token=token,
                                                          _external=True)


def _user_or_404(user_id: int) -> User:
    try:
        return accounts.find_user(user_id)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)


@bp.route("/staff/<int:user_id>/link", methods=["POST"])
@allow("admin")
def staff_link(user_id: int):
    user = _user_or_404(user_id)
    purpose = "invite" if user.password_hash == accounts.NO_PASSWORD else "reset"
    try:
        token = accounts.create_link(user, purpose=purpose, by=_me())
    except ServiceError as exc:
        return _staff_page(exc.status, errors=_errors(exc))
    return _staff_page(link=_link_url(token), link_user=user)


@bp.route("/staff/<int:user_id>/role", methods=["POST"])
@allow("admin")
def staff_role(user_id: int):
    user = _user_or_404(user_id)
    try:
        accounts.change_role(user, request.form.get("role", ""), by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _staff_page(exc.status, errors=_errors(exc))
    flash(f"{user.name} is now {user.role}.")
    return _staff_page()


@bp.route("/staff/<int:user_id>/supervisor", methods=["POST"])
@allow("admin")
def staff_supervisor(user_id: int):
    user = _user_or_404(user_id)
    raw = request.form.get("supervisor_id", "")
    try:
        accounts.set_supervisor(user, int(raw) if raw.isdigit() else None, by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _staff_page(exc.status, errors=_errors(exc))
    flash(f"Supervisor of {user.name} saved.")
    return _staff_page()


@bp.route("/staff/<int:user_id>/active", methods=["POST"])
@allow("admin")
def staff_active(user_id: int):
    user = _user_or_404(user_id)
    active = request.form.get("active") == "yes"
    try:
        accounts.set_active(user, active, by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _staff_page(exc.status, errors=_errors(exc))
    flash(f"{user.name} is {'active again' if active else 'deactivated'}.")
    return _staff_page()


def _facilitators():
    return db.session.scalars(select(User).where(
        User.role.in_(("facilitator", "clinician", "admin")),
        User.is_active_user.is_(True)).order_by(User.name)).all()


def _cohorts_page(status=200, **ctx):
    prog = current_program()
    cohorts = db.session.scalars(select(Cohort).where(Cohort.program_id == prog.id)
                                 .order_by(Cohort.start_local)).all()
    return render_template("admin/cohorts.html", cohorts=cohorts, facilitators=_facilitators(),
                           weekday_names=WEEKDAY_NAMES, program=prog, **ctx), status


@bp.route("/cohorts", methods=["GET", "POST"])
@allow("admin")
def cohorts():
    if request.method == "GET":
        return _cohorts_page()
    try:
        cohort, warnings = admin_settings.save_cohort(None, request.form, current_program(),
                                                      by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _cohorts_page(exc.status, errors=_errors(exc), form=request.form)
    flash(f"Cohort {cohort.name} created.")
    for w in warnings:
        flash(f"Warning: {w}")
    return redirect(url_for(".cohort", cohort_id=cohort.id))


def _cohort_or_404(cohort_id: int) -> Cohort:
    cohort = db.session.get(Cohort, cohort_id)
    if cohort is None or cohort.program_id != current_program().id:
        abort(404, description=f"There is no cohort {cohort_id}.")
    return cohort


def _from_date() -> date:
    raw = request.args.get("from", "")
    try:
        return date.fromisoformat(raw) if raw else local_today(current_program().tz)
    except ValueError:
        abort(422, description=f'"{raw}" is not a date (YYYY-MM-DD).')


def _cohort_page(cohort: Cohort, status=200, **ctx):
    first = ctx.pop("first", None) or _from_date()
    return render_template("admin/cohort.html", cohort=cohort, facilitators=_facilitators(),
                           weekday_names=WEEKDAY_NAMES, tz=cohort.program.tz, first=first,
                           earlier=first - timedelta(days=14), later=first + timedelta(days=14),
                           dates=session_changes.sessions_for(cohort, first), **ctx), status


@bp.route("/cohorts/<int:cohort_id>", methods=["GET", "POST"])
@allow("admin")
def cohort(cohort_id: int):
    c = _cohort_or_404(cohort_id)
    if request.method == "GET":
        return _cohort_page(c)
    try:
        _c, warnings = admin_settings.save_cohort(c, request.form, current_program(), by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _cohort_page(c, exc.status, errors=_errors(exc), form=request.form)
    flash("Schedule saved.")
    for w in warnings:
        flash(f"Warning: {w}")
    return redirect(url_for(".cohort", cohort_id=c.id))


@bp.route("/cohorts/<int:cohort_id>/dates/<day>/<action>", methods=["POST"])
@allow("admin")
def session_date(cohort_id: int, day: str, action: str):
    """One date of the cohort: cancel, reinstate, move (times) or cover (facilitator)."""
    c = _cohort_or_404(cohort_id)
    try:
        dos = date.fromisoformat(day)
    except ValueError:
        abort(404, description=f'"{day}" is not a date (YYYY-MM-DD).')
    if action not in ("cancel", "reinstate", "move", "cover"):
        abort(404, description=f"Unknown change {action!r}.")
    first = dos - timedelta(days=dos.weekday())
    try:
        session = session_changes.session_on(c, dos)
        if action == "cancel":
            session_changes.cancel(session, request.form.get("reason", ""), by=_me())
        elif action == "reinstate":
            session_changes.reinstate(session, by=_me())
        elif action == "move":
            session_changes.move(session, request.form.get("start", ""),
                                 request.form.get("end", ""), by=_me())
        else:
            fid = request.form.get("facilitator_id", "")
            session_changes.cover(session, int(fid) if fid.isdigit() else 0, by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _cohort_page(c, exc.status, errors=_errors(exc), first=first)
    flash(f"{c.name}, {dos:%A %B %-d}: {action} saved.")
    return _cohort_page(c, first=first)


def _payers_page(status=200, **ctx):
    payers = db.session.scalars(select(Payer).order_by(Payer.name)).all()
    used = {p.rule_key for p in payers}
    rulebook = current_app.extensions["rulebook"]
    free = sorted(k for k in rulebook.payers if k not in used)
    return render_template("admin/payers.html", payers=payers, free_rules=free,
                           rulebook=rulebook, **ctx), status


@bp.route("/payers", methods=["GET", "POST"])
@allow("admin")
def payers():
    if request.method == "GET":
        return _payers_page()
    try:
        payer = admin_settings.save_payer(None, request.form, current_app.extensions["rulebook"],
                                          by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _payers_page(exc.status, errors=_errors(exc), form=request.form)
    flash(f"Payer {payer.name} added.")
    return redirect(url_for(".payers"))


@bp.route("/payers/<int:payer_id>", methods=["POST"])
@allow("admin")
def payer(payer_id: int):
    p = db.session.get(Payer, payer_id)
    if p is None:
        abort(404, description=f"There is no payer {payer_id}.")
    try:
        admin_settings.save_payer(p, request.form, current_app.extensions["rulebook"], by=_me())
    except ServiceError as exc:
        db.session.rollback()
        return _payers_page(exc.status, errors=_errors(exc), edit_id=p.id, form=request.form)
    flash(f"Payer {p.name} saved.")
    return redirect(url_for(".payers"))


@bp.route("/closures", methods=["GET", "POST"])
@allow("admin")
def closures():
    prog = current_program()
    errors, status = [], 200
    if request.method == "POST":
        try:
            admin_settings.add_closure(prog, request.form.get("date", ""),
                                       request.form.get("reason", ""), by=_me())
        except ServiceError as exc:
            db.session.rollback()
            errors, status = _errors(exc), exc.status
        else:
            flash("Closure added.")
            return redirect(url_for(".closures"))
    rows = db.session.scalars(select(Closure).where(Closure.program_id == prog.id)
                              .order_by(Closure.date.desc())).all()
    return render_template("admin/closures.html", closures=rows, errors=errors,
                           today=local_today(prog.tz), form=request.form if errors else None), status


@bp.route("/log")
@allow("admin")
def log():
    """The admin log, newest first, filtered by object type, actor and free text."""
    q = select(AdminLogEntry).order_by(AdminLogEntry.at.desc(), AdminLogEntry.id.desc())
    kind = request.args.get("object", "").strip()
    who = request.args.get("actor", "").strip()
    text = request.args.get("q", "").strip()
    if kind:
        q = q.where(AdminLogEntry.object_type == kind)
    if who:
        q = q.where(AdminLogEntry.actor.ilike(f"%{who}%"))
    if text:
        like = f"%{text}%"
        q = q.where(or_(AdminLogEntry.object_label.ilike(like), AdminLogEntry.before.ilike(like),
                        AdminLogEntry.after.ilike(like), AdminLogEntry.action.ilike(like)))
    rows = db.session.scalars(q.limit(LOG_PAGE + 1)).all()
    kinds = db.session.scalars(select(AdminLogEntry.object_type).distinct()
                               .order_by(AdminLogEntry.object_type)).all()
    return render_template("admin/log.html", rows=rows[:LOG_PAGE], more=len(rows) > LOG_PAGE,
                           kinds=kinds, kind=kind, who=who, text=text,
                           tz=current_program().tz, now=datetime.now().astimezone())
