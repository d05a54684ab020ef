"""Who may reach which route: every view declares its policy, and a route without one is refused.

The permission test walks ``app.url_map`` and checks every endpoint against every role, so a new
route that forgets its policy fails the suite instead of quietly being open.
"""
from __future__ import annotations

from typing import Callable

from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask_login import current_user

from portal.models.people import ROLES

PUBLIC = frozenset({"public"})
# Roles that may write. Auditors are read-only by rule (42 CFR Part 2 scoped access), so a write
# route listing "auditor" is a programming error caught at start-up...
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# ... except these, each deliberate and named here (endpoint -> what it may write), so a new one
# is an edit to this list, reviewed as such. The view must also carry ``@auditor_write``; either
# without the other refuses to start. The URL-map test names them too
# (tests/web/test_auditor_grants.py::test_auditor_walk_over_the_url_map_changes_nothing).
AUDITOR_WRITES: dict[str, str] = {
    # Issue 14: an auditor requests the audit file of a patient an active grant covers. It
    # writes a background-job row, then (when the worker has built the file) the disclosure
    # record, whose recipient, purpose and legal basis come from the grant, never the form.
    "audit_files.auditor_request": "a background job, then the disclosure record of the audit file",
}


def allow(*roles: str, session_only: bool = False) -> Callable:
    """Decorator: only users whose role is in ``roles`` reach the view (else 403).

    ``session_only`` marks a POST that changes nothing but the user's own login session
    (sign out), the one kind of write an auditor may make.
    Raises ``ValueError`` at import time for an unknown role name.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}")

    def mark(view):
        view.access_policy = frozenset(roles)
        view.session_only = session_only
        return view

    return mark


def auditor_write(view):
    """Decorator: this write route admits auditors, as one of ``AUDITOR_WRITES`` (it must be
    listed there, and its view must check the auditor's grant itself)."""
    view.auditor_write = True
    return view


def admits_auditor_write(app: Flask, endpoint: str | None) -> bool:
    """Is ``endpoint`` a named exception to the auditor's read-only rule?"""
    view = app.view_functions.get(endpoint) if endpoint else None
    return bool(getattr(view, "auditor_write", False)) and endpoint in AUDITOR_WRITES


def public(view):
    """Decorator: the view needs no login (login page, health check)."""
    view.access_policy = PUBLIC
    return view


def policy_of(app: Flask, endpoint: str) -> frozenset[str] | None:
    if endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, "access_policy", None)


def check_policies(app: Flask) -> None:
    """Refuse to start when a write route admits the auditor role (unless it is one of
    ``AUDITOR_WRITES`` and marked ``@auditor_write``), or when a view is marked without being
    listed."""
    for rule in app.url_map.iter_rules():
        policy = policy_of(app, rule.endpoint) or frozenset()
        view = app.view_functions.get(rule.endpoint)
        if getattr(view, "auditor_write", False) and rule.endpoint not in AUDITOR_WRITES:
            raise RuntimeError(f"route {rule.rule} is marked @auditor_write but "
                               f"{rule.endpoint} is not listed in AUDITOR_WRITES")
        if getattr(view, "session_only", False) or admits_auditor_write(app, rule.endpoint):
            continue
        if "auditor" in policy and (rule.methods or set()) & WRITE_METHODS:
            raise RuntimeError(f"route {rule.rule} accepts writes and admits auditors")


def enforce() -> None:
    """``before_request`` hook: apply the endpoint's policy."""
    g.patient_id = None  # set by views that show one patient's records (for the access log)
    if request.endpoint is None:  # no route matched: let the 404/405 handler answer
        return None
    policy = policy_of(current_app, request.endpoint)
    if policy is None:
        abort(500, description=f"route {request.endpoint} has no access policy")
    if policy is PUBLIC:
        return None
    if not current_user.is_authenticated:
        back = request.full_path if request.query_string else request.path
        if request.headers.get("HX-Request") == "true":
            resp = current_app.response_class(status=401)
            resp.headers["HX-Redirect"] = url_for("auth.login", next=back)
            return resp
        return redirect(url_for("auth.login", next=back))
    if current_user.role not in policy:
        abort(403, description="Your role does not give access to this page.")
    view = current_app.view_functions[request.endpoint]
    if (current_user.role == "auditor" and request.method in WRITE_METHODS
            and not getattr(view, "session_only", False)
            and not admits_auditor_write(current_app, request.endpoint)):
        abort(403, description="Auditor access is read-only.")
    g.user = current_user
    return None


