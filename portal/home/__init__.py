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
    return {"ok": True}
