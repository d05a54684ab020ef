"""Admin pages (role admin): program settings, staff, cohorts and schedule, payers, closures,
and the admin log. Views parse the form and call one service; services write and log."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import views  # noqa: E402  (registers the routes)

__all__ = ["bp", "views"]
