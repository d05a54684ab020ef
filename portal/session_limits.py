"""Idle lock and absolute limit for sessions on shared tablets (a ``before_request`` hook that
runs before the access policy).

- Idle longer than the role's ``SESSION_IDLE_SECONDS``: the session is locked. The user is
  signed out on the server; the browser keeps only who was signed in (to offer the lock screen)
  and the CSRF token (so the lock screen's form is accepted). An htmx request gets 401 with
  ``X-Portal-Locked`` and ``HX-Reswap: none``: nothing on the page is replaced, and
  ``static/js/lock.js`` shows the lock screen over it. A page load goes to the sign-in page,
  which offers the same user's email.
- Older than ``SESSION_ABSOLUTE_SECONDS`` since sign-in: the session ends.
"""
from __future__ import annotations

import time

from flask import current_app, flash, g, request, session
from flask_login import current_user, logout_user

from portal.access_control import PUBLIC, policy_of

# Keys a locked session keeps; everything else (census preview, flashes of the user) goes.
_KEEP_WHEN_LOCKED = ("csrf_token",)


def idle_limit(role: str) -> int:
    limits = current_app.config["SESSION_IDLE_SECONDS"]
    return int(limits.get(role, min(limits.values())))


def _lock(now: int) -> None:
    uid = current_user.id
    keep = {k: session[k] for k in _KEEP_WHEN_LOCKED if k in session}
    logout_user()
    session.clear()
    session.update(keep)  # the CSRF token stays: the lock screen's form must be accepted
    session["locked_uid"] = uid
    session["locked_at"] = now
    g.session_locked = True


def _end(now: int, message: str) -> None:
    from portal.auth import clear_session

    logout_user()
    clear_session()
    flash(message)


def _forget() -> None:
    from portal.auth import clear_session

    clear_session()


def check() -> object | None:
    """Apply the idle and absolute limits; answer an htmx request on a locked session."""
    if request.endpoint == "static":
        return None
    # The user is read from this request's cookie, never inherited: where requests share one
    # app context (the test suite), ``g`` would otherwise carry the previous request's user.
    g.pop("_login_user", None)
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    now = int(time.time())
    absolute = int(current_app.config["SESSION_ABSOLUTE_SECONDS"])
    if "_user_id" in session:
        if not current_user.is_authenticated:
            _forget()  # ended elsewhere (sign-out, password change) or replayed
        elif now - int(session.get("login_at") or 0) > absolute:
            _end(now, f"Your session reached its {absolute // 3600}-hour limit. Please sign "
                      "in again.")
        elif now - int(session.get("seen_at") or 0) > idle_limit(current_user.role):
            _lock(now)
        else:
            session["seen_at"] = now
    if "locked_uid" in session and now - int(session.get("locked_at") or 0) > absolute:
        _forget()
    if ("locked_uid" in session and request.headers.get("HX-Request") == "true"
            and request.endpoint is not None
            and policy_of(current_app, request.endpoint) is not PUBLIC):
        resp = current_app.response_class(
            "This screen is locked. Sign in again to continue.", status=401)
        resp.headers["X-Portal-Locked"] = "1"
        resp.headers["HX-Reswap"] = "none"
        return resp
    return None
