"""Sign in and out (Flask-Login sessions, Flask-WTF form with CSRF)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from portal.access_control import allow, public
from portal.extensions import db, limiter, login_manager
from portal.models.people import ROLES, User
from portal.passwords import check_password

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"


@login_manager.user_loader
def _load_user(user_id: str):
    return db.session.get(User, int(user_id))


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths: an open redirect would make a phishing link look real."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               error_message="Too many sign-in attempts from this device. Wait a minute and "
                             "try again.")
@public
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = db.session.scalar(
            select(User).where(func.lower(User.email) == form.email.data.strip().lower()))
        if user and user.is_active and check_password(user.password_hash, form.password.data):
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or url_for("home.index"))
        form.password.errors.append("Email or password is not right.")
        status = 422
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@allow(*ROLES, session_only=True)
def logout():
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


__all__ = ["bp", "current_user"]
