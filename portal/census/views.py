"""Census upload page for admin and billing: upload -> preview (a dry run) -> commit.

The commit never trusts anything parsed on the client: the preview stores the uploaded bytes in
the instance folder under their SHA-256, the commit form carries only that hash, and the commit
re-reads, re-hashes and re-checks the bytes inside the writing transaction.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, session
from flask_login import user_logged_out
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired, FileSize
from wtforms import HiddenField
from wtforms.validators import DataRequired, Regexp

from portal.access_control import allow
from portal.census.importer import CensusSetupError, import_census
from portal.census.parse import COLUMNS, OPTIONAL_COLUMNS
from portal.errors import is_partial_request

bp = Blueprint("census", __name__, url_prefix="/admin/census")

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
SESSION_KEY = "census_upload_sha256"
# A previewed file holds patient data; it is kept only until committed, signed out of, or
# this old (purged by every census request, at most every PURGE_EVERY_SECONDS by any request,
# and by `flask census purge-uploads` from cron).
UPLOAD_TTL_SECONDS = 3600
PURGE_EVERY_SECONDS = 300
# A report lists at most this many problems (a wrong file could have tens of thousands).
MAX_LISTED_PROBLEMS = 200


class UploadForm(FlaskForm):
    file = FileField("Census export (CSV file)", validators=[
        FileRequired("Choose the census export file to upload."),
        FileAllowed(["csv"], "Only a .csv file can be imported; export the census from the EHR "
                             "as CSV (UTF-8)."),
        FileSize(max_size=MAX_UPLOAD_BYTES, message="The file is larger than 2 MB, far more "
                 "than a census export; check that you chose the right file."),
    ])


class CommitForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])


def _upload_dir() -> Path:
    path = Path(current_app.instance_path) / "census_uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def purge_stale_uploads(folder: Path, ttl: float = UPLOAD_TTL_SECONDS) -> int:
    """Delete previews (and abandoned temp files) older than ``ttl`` seconds; returns how many."""
    now, gone = time.time(), 0
    for old in list(folder.glob("*.csv")) + list(folder.glob("*.tmp")):
        try:
            if now - old.stat().st_mtime > ttl:
                old.unlink(missing_ok=True)
                gone += 1
        except FileNotFoundError:
            pass  # another worker got there first
    return gone


_last_purge = 0.0


@bp.before_app_request
def _purge_on_a_timer() -> None:
    global _last_purge
    now = time.time()
    if now - _last_purge < PURGE_EVERY_SECONDS:
        return
    _last_purge = now
    folder = Path(current_app.instance_path) / "census_uploads"
    if folder.is_dir():
        purge_stale_uploads(folder)


def _store(data: bytes) -> str:
    """Keep ``data`` under its SHA-256 (returned), readable by the portal's user only."""
    token = hashlib.sha256(data).hexdigest()
    folder = _upload_dir()
    purge_stale_uploads(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, folder / f"{token}.csv")
    return token


def discard_preview() -> None:
    """Delete the file this session previewed (its rows hold PHI), if any."""
    token = session.pop(SESSION_KEY, None)
    if isinstance(token, str) and len(token) == 64 and all(c in "0123456789abcdef" for c in token):
        (_upload_dir() / f"{token}.csv").unlink(missing_ok=True)


@user_logged_out.connect
def _discard_at_sign_out(_app, **_extra) -> None:
    # Sign-out and the idle lock both sign the user out: the preview goes with the session.
    discard_preview()


def _render(status: int = 200, **context):
    context.setdefault("form", UploadForm())
    context.setdefault("columns", COLUMNS)
    context.setdefault("optional_columns", OPTIONAL_COLUMNS)
    context.setdefault("max_listed", MAX_LISTED_PROBLEMS)
    if is_partial_request():
        return render_template("census/_preview.html", **context), status
    return render_template("census/upload.html", **context), status


@bp.route("/", methods=["GET", "POST"])
@allow("admin", "billing")
def upload():
    """GET: the upload form. POST: a dry run of the uploaded file (422 when it has errors)."""
    form = UploadForm()
    if not form.is_submitted():
        return _render(form=form)
    if not form.validate():
        return _render(422, form=form)
    data = form.file.data.read()
    try:
        report = import_census(data)
    except CensusSetupError as exc:
        abort(409, description=str(exc))
    token = None
    if report.ok and report.changes:
        token = _store(data)
        session[SESSION_KEY] = token
    return _render(200 if report.ok else 422, form=form, report=report, token=token,
                   filename=form.file.data.filename)


@bp.route("/commit", methods=["POST"])
@allow("admin", "billing")
def commit():
    """Write the file previewed in this session, named by its SHA-256 ``token``."""
    form = CommitForm()
    if not form.validate_on_submit():
        abort(400, description="The import to commit was not named; upload the file again.")
    token = form.token.data
    path = _upload_dir() / f"{token}.csv"
    if session.get(SESSION_KEY) != token or not path.exists():
        abort(409, description="This preview is no longer current (another file was previewed, "
                               "or it was already imported). Upload the file again.")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != token:
        abort(409, description="The stored upload does not match its preview. Upload the file again.")
    try:
        report = import_census(data, commit=True)
    except CensusSetupError as exc:
        abort(409, description=str(exc))
    if report.committed:
        path.unlink(missing_ok=True)
        session.pop(SESSION_KEY, None)
    return _render(200 if report.ok else 422, report=report, token=None)
