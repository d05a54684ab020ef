"""Error pages that fit the request: a full page for a normal request (or an htmx history
restore), a short inline message for an htmx request. A 5xx never swaps a whole page into a row."""
from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from sqlalchemy.exc import OperationalError

from portal.extensions import db

TITLES = {
    400: "The request could not be used",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Not possible now",
    413: "Too large",
    503: "Not available right now",
    422: "Please fix this",
    429: "Please wait",
    500: "Something went wrong",
}


SCOPED_NOT_FOUND = ("There is no such record within your access. Your access covers only the "
                    "patients and dates of service of your grants.")


def _scoped_user() -> bool:
    from flask_login import current_user

    from portal.access_scope import is_scoped

    try:
        return current_user.is_authenticated and is_scoped(current_user.role)
    except Exception:  # no user loader context (e.g. a static file): not scoped
        return False


def is_partial_request() -> bool:
    """True for an htmx request that expects a fragment (a history restore wants a full page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def error_response(status: int, message: str):
    """Render ``message`` as a full error page or an htmx flash partial with ``status``."""
    title = TITLES.get(status, "Error")
    if is_partial_request():
        resp = render_template("_flash.html", level="error", title=title, message=message)
        headers = {}
        # Views that render their own inline error set their own target; generic errors go to
        # the page's flash region so they never replace the element that triggered them.
        headers["HX-Retarget"] = "#flash"
        headers["HX-Reswap"] = "innerHTML"
        # A form that keeps only part of its answer (hx-select, e.g. the audit-file panel) would
        # filter the message out and show nothing at all: select the message itself instead.
        headers["HX-Reselect"] = ".flash"
        return resp, status, headers
    return render_template("error.html", title=title, message=message, status=status), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(err):
        return error_response(400, "This form has expired or was not sent from the portal. "
                                   "Reload the page and try again. Nothing was saved.")

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        db.session.rollback()
        message = err.description or TITLES.get(err.code or 500, "Error")
        if err.code == 404 and _scoped_user():
            # An auditor reads the same words whether a record does not exist or lies outside
            # their grants: a missing record and a hidden one cannot be told apart.
            message = SCOPED_NOT_FOUND
        return error_response(err.code or 500, message)

    @app.errorhandler(OperationalError)
    def _database_down(err: OperationalError):
        # PostgreSQL restarting or unreachable: the transaction was lost, so nothing was saved;
        # the connection pool's pre-ping reconnects on a later request.
        db.session.rollback()
        # The driver's first line ("database is locked", "connection refused") names the
        # fault without SQL or parameters (no PHI); the load bench counts these lines.
        orig = getattr(err, "orig", err)
        reason = (str(orig).splitlines() or [""])[0][:120]
        app.logger.error("database unavailable on %s %s: %s: %s", request.method, request.path,
                         type(orig).__name__, reason)
        return error_response(503, "The database could not be reached (it may be restarting). "
                                   "Nothing was saved; try again in a minute.")

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if isinstance(err, HTTPException):
            return _http(err)
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "The portal hit an error and saved nothing. "
                                   "Try again; if it keeps happening, tell your administrator.")
