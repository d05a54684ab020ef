"""Authorizations: work queue, a patient's authorizations and timeline, requests, step-down,
payer decisions and letters."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("authorizations", __name__, url_prefix="/authorizations")


@bp.record_once
def _globals(state) -> None:
    from portal.authorizations.badges import auth_gap, overdue_authorizations

    state.app.jinja_env.globals["auth_gap"] = auth_gap
    state.app.jinja_env.globals["overdue_authorizations"] = overdue_authorizations
    state.app.jinja_env.filters["when"] = _when


def _when(instant, tz) -> str:
    """An instant in the program's zone: "today 3:05 PM", else with its date."""
    if instant is None:
        return "—"
    from portal.clock import local_today

    local = instant.astimezone(tz)
    if local.date() == local_today(tz):
        return local.strftime("today %-I:%M %p")
    return local.strftime("%a %b %-d, %Y %-I:%M %p %Z")


from portal.authorizations import views  # noqa: E402  (routes register on bp)

__all__ = ["bp", "views"]
