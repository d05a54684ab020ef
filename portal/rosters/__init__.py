from flask import Blueprint

bp = Blueprint("rosters", __name__)

from portal.rosters import views  # noqa: E402  (registers the routes)

__all__ = ["bp", "views"]
