"""Job pages, for every feature's background jobs (owner only; anyone else gets 404).

- ``GET /jobs/<job_id>``          progress: the htmx partial ``jobs/_progress.html`` (polls
                                  itself about every second until done or failed), or a full
                                  page around it.
- ``GET /jobs/<job_id>/download`` the finished file (one ``EXPORT`` row in the access log).

A result past its time answers 404 with a message saying it expired and how to get it again.
"""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, g, render_template, request, send_file
from flask_login import current_user
from sqlalchemy import select

from portal.access_control import allow
from portal.errors import error_response, is_partial_request
from portal.extensions import db
from portal.jobs.service import job_for, kind_of, result_file, result_ttl
from portal.models import AccessLogEntry, BackgroundJob, Program
from portal.models.people import ROLES
from portal.models.types import utcnow

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
#: Results up to this size are sent from memory; larger ones are streamed from their file.
SMALL_FILE = 4 * 1024 * 1024

NOT_FOUND = ("There is no job with that number for you. Jobs belong to the person who started "
             "them, and their files are deleted after a while.")


def _ttl_words() -> str:
    seconds = round(result_ttl().total_seconds())
    if seconds < 120:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = round(seconds / 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'' if hours == 1 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def _expired_message() -> str:
    return (f"This file has expired and was deleted: finished files are kept for {_ttl_words()}. "
            "Start the job again to get a new one.")


def _owned_or_404(job_id: str) -> BackgroundJob:
    job = job_for(job_id, current_user.id)
    kind = kind_of(job) if job is not None else None
    if job is None or (kind is not None and kind.still_allowed is not None
                       and not kind.still_allowed(job)):
        abort(404, description=NOT_FOUND)
    if kind is not None and kind.patient_of is not None:
        g.patient_id = kind.patient_of(job)  # the access log names whose records these are
    return job


def _tz():
    program = db.session.scalar(select(Program).order_by(Program.id).limit(1))
    return program.tz if program else ZoneInfo("UTC")


def _title(job: BackgroundJob) -> str:
    kind = kind_of(job)
    return kind.title if kind else "Background job"


#: A job waiting longer than this gets a hint that the workers may not be running.
SLOW_PICKUP = timedelta(seconds=60)


def _context(job: BackgroundJob) -> dict:
    kind = kind_of(job)
    waiting_long = job.state == "queued" and job.created_at <= utcnow() - SLOW_PICKUP
    return dict(job=job, title=_title(job), expired_message=_expired_message(), tz=_tz(),
                back=kind.back if kind else None, waiting_long=waiting_long)


def progress_partial(job: BackgroundJob) -> str:
    """The polling progress component for ``job``: what a feature's start view returns to htmx
    (with status 202), or includes in its own page."""
    return render_template("jobs/_progress.html", **_context(job))


@bp.route("/<job_id>")
@allow(*ROLES)
def progress(job_id: str):
    job = _owned_or_404(job_id)
    status = 404 if job.state == "expired" else 200
    ctx = _context(job)
    if is_partial_request():
        # An expired job's partial still swaps in (htmx ignores 4xx bodies by default), so
        # the poll ends on the message instead of on an unchanged bar.
        return render_template("jobs/_progress.html", **ctx)
    return render_template("jobs/progress.html", **ctx), status


@bp.route("/<job_id>/download")
@allow(*ROLES)
def download(job_id: str):
    job = _owned_or_404(job_id)
    if job.state == "expired":
        return error_response(404, _expired_message())
    if job.state != "done":
        abort(409, description="This job has not finished yet; its page shows the progress.")
    path = result_file(job)
    if path is None:
        return error_response(404, _expired_message())
    kind = kind_of(job)
    described = kind.describe(job) if kind and kind.describe else f"EXPORT {job.kind} {job.filename}"
    # Every download of a result is a disclosure: its own row, committed before the file goes
    # out (the after-request hook rolls back anything a view leaves pending).
    db.session.add(AccessLogEntry(
        user_id=current_user.id, role=current_user.role, method="EXPORT",
        path=f"{described} job={job.id[:8]}"[:500], endpoint="jobs.download",
        patient_id=kind.patient_of(job) if kind and kind.patient_of else None,
        status_code=200, remote_addr=(request.remote_addr or "")[:64]))
    db.session.commit()
    mimetype = job.mimetype or "application/octet-stream"
    name = job.filename or "result"
    if (job.result_bytes or 0) <= SMALL_FILE:
        # Read at once: a small file is sent from memory and its handle closed right here.
        resp = Response(path.read_bytes(), mimetype=mimetype)
        resp.headers["Content-Disposition"] = _attachment(name)
    else:
        resp = send_file(path, mimetype=mimetype, as_attachment=True, download_name=name,
                         max_age=0, conditional=False, etag=False)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _attachment(name: str) -> str:
    from werkzeug.http import dump_options_header

    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    options = {"filename": ascii_name}
    if ascii_name != name:
        from urllib.parse import quote

        options["filename*"] = f"UTF-8''{quote(name, safe='')}"
    return dump_options_header("attachment", options)
