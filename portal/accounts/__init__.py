"""Staff's own account: set a password through a one-time link, change one's password."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user

from portal.access_control import allow, public
from portal.extensions import limiter
from portal.models.people import ROLES
from portal.rules.password_policy import MIN_LENGTH
from portal.services import accounts as svc
from portal.services.errors import Invalid, ServiceError

bp = Blueprint("accounts", __name__)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@public
def set_password(token: str):
    """The page a one-time link opens. The token is in the path, so the page sets
    Referrer-Policy: no-referrer (a link to elsewhere must not carry it away)."""
    try:
        link = svc.link_for(token)
    except ServiceError as exc:
        resp = render_template("accounts/link_invalid.html", message=exc.message)
        return resp, 410 if exc.status == 409 else 404, {"Referrer-Policy": "no-referrer"}
    errors = []
    if request.method == "POST":
        try:
            user = svc.use_link(token, request.form.get("password", ""),
                                request.form.get("password_again", ""))
        except Invalid as exc:
            errors = exc.details or [exc.message]
        except ServiceError as exc:
            abort(exc.status, description=exc.message)
        else:
            if current_user.is_authenticated:
                logout_user()
            flash(f"Your password is set, {user.name}. Sign in with {user.email}.")
            return redirect(url_for("auth.login"))
    return (render_template("accounts/set_password.html", link=link, errors=errors,
                            min_length=MIN_LENGTH),
            422 if errors else 200, {"Referrer-Policy": "no-referrer"})


@bp.route("/account/password", methods=["GET", "POST"])
@allow(*(r for r in ROLES if r != "auditor"))
def change_password():
    """Staff change their own password. (Auditors get accounts from the admin and reset links:
    their role is read-only by rule, so this write route does not admit them.)"""
    errors = []
    if request.method == "POST":
        try:
            svc.change_own_password(current_user._get_current_object(),
                                    request.form.get("current", ""),
                                    request.form.get("password", ""),
                                    request.form.get("password_again", ""))
        except Invalid as exc:
            errors = exc.details or [exc.message]
        else:
            flash("Your password is changed.")
            return redirect(url_for("home.index"))
    return (render_template("accounts/change_password.html", errors=errors,
                            min_length=MIN_LENGTH), 422 if errors else 200)
