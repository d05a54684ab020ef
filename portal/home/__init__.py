"""Landing page: send each role to the page it works from."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from portal.access_control import allow, public
from portal.models.people import ROLES

bp = Blueprint("home", __name__)

START_PAGE = {
    "facilitator": "rosters.today",
    "clinician": "rosters.today",
    "billing": "readiness.program",
    "auditor": "readiness.program",
    "admin": "readiness.program",
}


@bp.route("/")
@allow(*ROLES)
def index():
    return redirect(url_for(START_PAGE.get(current_user.role, "rosters.today")))


@bp.route("/healthz")
@public
def healthz():
    """For the load balancer and monitoring: can this worker do its job? The database answers
    and the archive and checkpoint folders take a new file. 200 or 503; no PHI, no paths."""
    from portal.services.health import check_health

    checks = check_health()
    ok = all(v == "ok" for v in checks.values())
    return {"ok": ok, **checks}, 200 if ok else 503
