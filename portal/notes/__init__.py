"""Clinical documentation pages: the notes queue after a roster closes, "My unsigned notes",
writing and signing encounter notes, treatment plans (with the patient's tablet signature),
and addenda. Views parse input, call one service, and pick the page."""
from flask import Blueprint

bp = Blueprint("notes", __name__)

from portal.notes import addendum_views, plan_views, views  # noqa: E402  (register the routes)

__all__ = ["addendum_views", "bp", "plan_views", "views"]
