"""Sign in, sign out and the shared-tablet lock (Flask-Login sessions, Flask-WTF forms with CSRF).

Session rules (docs/operations.md, "Sessions"):
- a session carries the user's ``session_version``; signing out bumps it, so a copied cookie
  dies with the sign-out (``portal.services.auth.invalidate_sessions``);
- ``session.clear()`` at sign-in and sign-out: nothing of one user (CSRF token, a census
  preview) carries over to the next;
- idle for longer than the role's timeout, the session locks (``portal.session_limits``): the
  page stays open behind a lock screen and the same user signs in again to carry on;
- after the absolute limit (12 h by default) the session ends.
"""
from __future__ import annotations

import re
import time
from urllib.parse import unquote, urlsplit

from flask import (Blueprint, current_app, flash, g, make_response, redirect, render_template,
                   request, session, url_for)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from portal import session_limits
from portal.access_control import allow, public
from portal.extensions import db, limiter, login_manager
from portal.models.people import ROLES, User
from portal.services.auth import authenticate, invalidate_sessions

bp = Blueprint("auth", __name__)
bp.before_app_request(session_limits.check)  # before the access policy (registered later)

login_manager.login_view = "auth.login"
# A session cookie replayed from another address or browser is refused outright.
login_manager.session_protection = "strong"

SESSION_VERSION = "sv"
LOGIN_AT = "login_at"
SEEN_AT = "seen_at"
LOCKED_UID = "locked_uid"
LOCKED_AT = "locked_at"


@bp.app_context_processor
def _session_globals():
    return {"session_idle_seconds": lambda: session_limits.idle_limit(current_user.role)}


@login_manager.user_loader
def _load_user(user_id: str):
    if not re.fullmatch(r"[0-9]{1,10}", user_id or ""):
        return None
    user = db.session.get(User, int(user_id))
    # A session from before the user's last sign-out, password change or deactivation.
    if user is None or session.get(SESSION_VERSION) != user.session_version:
        return None
    return user


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a same-origin path of this portal, else None.

    Browsers read ``//host``, ``/\\host``, ``/\t/host`` and (after a proxy or framework decodes
    it) ``/%2F%2Fhost`` as another site, so the path must start with exactly one slash before
    and after percent-decoding, hold no backslash or control character, and name a page the
    portal serves. An open redirect would make a phishing link look like the portal's own."""
    if not target or len(target) > 2000:
        return None
    decoded = target
    for _ in range(3):  # double and triple encoding
        decoded = unquote(decoded)
    for text in (target, decoded):
        if _UNSAFE_CHARS.search(text) or not text.startswith("/") or text.startswith("//"):
            return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    try:
        current_app.url_map.bind("portal.invalid").match(parts.path, method="GET")
    except RequestRedirect:
        pass  # e.g. a missing trailing slash: still this portal's page
    except HTTPException:
        return None
    return target


def _failed(response) -> bool:
    """Only failed attempts count against the limits (a success is 302 or 204)."""
    return response.status_code >= 400


def _account_key() -> str:
    return "account:" + (request.form.get("email") or "").strip().lower()[:254]


def _address_key() -> str:
    return "address:" + (get_remote_address() or "")


_ACCOUNT_LIMIT = limiter.shared_limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"], scope="sign-in-account",
    key_func=_account_key, methods=["POST"], deduct_when=_failed,
    error_message="Too many sign-in attempts for this account. Wait a few minutes and "
                  "try again, or ask an administrator to check the account.")
_ADDRESS_LIMIT = limiter.shared_limit(
    lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"], scope="sign-in-address",
    key_func=_address_key, methods=["POST"], deduct_when=_failed,
    error_message="Too many sign-in attempts from this device. Wait a minute and try again.")


def clear_session() -> None:
    """``session.clear()``, and forget the CSRF token this request already derived from it."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)


def start_session(user: User) -> None:
    """A fresh session for ``user``: nothing of the previous session survives."""
    if current_user.is_authenticated:
        logout_user()  # lets per-session data (a census preview) clean up after itself
    clear_session()
    login_user(user)
    now = int(time.time())
    session[SESSION_VERSION] = user.session_version
    session[LOGIN_AT] = now
    session[SEEN_AT] = now


def locked_user() -> User | None:
    """The user whose idle session is locked in this browser, if any."""
    uid = session.get(LOCKED_UID)
    return db.session.get(User, uid) if isinstance(uid, int) else None


@bp.route("/login", methods=["GET", "POST"])
@_ADDRESS_LIMIT
@_ACCOUNT_LIMIT
@public
def login():
    if request.method == "GET" and request.args.get("switch"):
        # "Not you?" on the lock screen: drop the locked session, start clean.
        if current_user.is_authenticated:
            logout_user()
        clear_session()
        return redirect(url_for("auth.login"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("home.index"))
    locked = locked_user()
    form = LoginForm()
    if request.method == "GET" and locked is not None:
        form.email.data = locked.email
    status = 200
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            target = safe_next(request.args.get("next"))
            if locked is not None and locked.id != user.id:
                target = None  # another person: start on their own home page
            start_session(user)
            return redirect(target or url_for("home.index"))
        form.password.errors.append("Email or password is not right.")
        status = 422
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form, locked=locked), status


@bp.route("/unlock", methods=["POST"])
@_ADDRESS_LIMIT
@_ACCOUNT_LIMIT
@public
def unlock():
    """The lock screen's sign-in (htmx): the same user only. 204 with the session's new CSRF
    token in ``X-CSRF-Token`` (the page behind the lock keeps its forms and unsaved input);
    422 with the lock form's error."""
    expected = locked_user() or (current_user if current_user.is_authenticated else None)
    if expected is None:
        resp = make_response("", 401)
        resp.headers["HX-Redirect"] = url_for("auth.login")
        return resp
    form = LoginForm()
    user = None
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
    if user is None or user.id != expected.id:
        return render_template("auth/_lock_error.html",
                               message="That password is not right. Try again, or sign in as "
                                       "someone else."), 422
    start_session(user)
    resp = make_response("", 204)
    resp.headers["X-CSRF-Token"] = generate_csrf()
    return resp


@bp.route("/session/alive")
@allow(*ROLES)
def alive():
    """The lock screen's keep-alive: someone is using the page without sending requests (typing
    times, a patient signing). The session hook has already recorded the activity."""
    return "", 204


@bp.route("/logout", methods=["POST"])
@allow(*ROLES, session_only=True)
def logout():
    user_id = current_user.id
    logout_user()
    clear_session()
    invalidate_sessions(user_id)  # every copy of this session's cookie stops working
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


__all__ = ["bp", "current_user", "locked_user", "safe_next", "start_session"]
