"""Jobs: start one (a row, then a message on the queue), run one (in a worker), find one for its
owner, expire old results. The only code that writes ``background_jobs``.

Why the state is a table and not the queue's result store: any web process answers polls and
downloads, restarts lose nothing, the owner check is a plain query, and the access log and
expiry work on the same database as everything else. The queue carries only the job id.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from flask import Flask, current_app
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import BackgroundJob, User
from portal.models.types import utcnow

log = logging.getLogger("portal.jobs")

#: A user's jobs waiting or running beyond this are refused, so a stuck button cannot start dozens.
MAX_ACTIVE_PER_USER = 3
#: What people see when a job fails; the details (a traceback without values) go to the log.
FAILED_MESSAGE = ("The job failed and produced no file. Try again; if it keeps failing, tell your "
                  "administrator (the details are in the worker's log).")
STALE_MESSAGE = ("The worker stopped before finishing this job (it was restarted or shut down). "
                 "Start it again.")
NEVER_RAN_MESSAGE = ("No job worker picked this job up within a day, so it was cancelled. Ask your "
                     "administrator whether the job workers are running, then start it again.")
#: A job still waiting after this long was lost by the queue or nothing is running it.
NEVER_RAN_AFTER = timedelta(days=1)
QUEUE_DOWN_MESSAGE = ("The background queue is not reachable, so the job could not start. Try "
                      "again in a minute; if it keeps failing, tell your administrator.")


class JobLimit(Exception):
    """The user already has ``MAX_ACTIVE_PER_USER`` jobs waiting or running."""


class JobFailed(Exception):
    """Raised by a job's work to fail with a message for people (what to fix), shown as it is:
    write it like a form error, with no patient's name. ``details`` (at most 20 short items,
    e.g. MRN and date) are listed under it. Any other exception fails with a generic message."""

    def __init__(self, message: str, *, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = [str(d)[:120] for d in (details or [])][:20]


@dataclass(frozen=True)
class Kind:
    name: str
    work: Callable[["JobContext"], None]
    #: Heading of the progress page ("Claim-line export").
    title: str
    #: ``describe(job) -> str``: the access-log line written when the result is downloaded.
    describe: Callable[[BackgroundJob], str] | None
    #: (endpoint, label) of the page the job was started from, linked from its progress page.
    back: tuple[str, str] | None = None
    #: ``still_allowed(job) -> bool``: may its owner still see the job and take its file? (An
    #: auditor's audit file: only while the grant it was made under is active.) None: always.
    still_allowed: Callable[[BackgroundJob], bool] | None = None
    #: ``patient_of(job) -> int | None``: the patient whose records the file holds, for the
    #: access-log row of its download.
    patient_of: Callable[[BackgroundJob], int | None] | None = None


_KINDS: dict[str, Kind] = {}


def register(kind: str, *, title: str | None = None,
             describe: Callable[[BackgroundJob], str] | None = None,
             back: tuple[str, str] | None = None,
             still_allowed: Callable[[BackgroundJob], bool] | None = None,
             patient_of: Callable[[BackgroundJob], int | None] | None = None):
    """Decorator: ``work(ctx)`` runs jobs of ``kind``. Register at import of the feature module
    (web and worker processes both import every feature through ``create_app``).

    ``title`` heads the progress page; ``describe(job)`` is the access-log line of a download
    (default: kind and filename); ``back`` = (endpoint without arguments, label) is linked from
    the progress page; ``still_allowed(job)`` is asked on every progress poll and download
    (False: 404, as for a job that is not theirs); ``patient_of(job)`` names the patient in the
    download's access-log row."""
    if not kind or len(kind) > 64:
        raise ValueError("a job kind is 1 to 64 characters")

    def mark(work: Callable[[JobContext], None]):
        known = _KINDS.get(kind)
        if known is not None and known.work.__qualname__ != work.__qualname__:
            raise ValueError(f"job kind {kind!r} is already registered by {known.work.__qualname__}")
        _KINDS[kind] = Kind(kind, work, title or kind.replace("_", " ").capitalize(), describe,
                            back, still_allowed, patient_of)
        return work

    return mark


def kind_of(job: BackgroundJob) -> Kind | None:
    return _KINDS.get(job.kind)


# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------

def result_ttl(app: Flask | None = None) -> timedelta:
    return timedelta(seconds=float((app or current_app).config.get("PORTAL_JOB_RESULT_TTL", 3600)))


def stale_after(app: Flask | None = None) -> timedelta:
    return timedelta(seconds=float((app or current_app).config.get("PORTAL_JOB_STALE_SECONDS", 900)))


def result_dir(app: Flask | None = None) -> Path:
    """Where finished files wait for their download (0700; each file 0600)."""
    app = app or current_app
    path = Path(app.config.get("PORTAL_JOB_DIR") or Path(app.instance_path) / "job-results")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------
# Start (web process)
# ----------------------------------------------------------------------------------------

def start(kind: str, *, user_id: int, params: dict | None = None) -> BackgroundJob:
    """Record a queued job for ``user_id`` and put its id on the queue; returns the row
    (``job.id`` is the token for ``jobs.progress`` / ``jobs.download``).

    ``params`` must be JSON (ids and dates as strings, never PHI text). Raises ``JobLimit``
    (clear message) when the user already has ``MAX_ACTIVE_PER_USER`` jobs waiting or running;
    ``KeyError`` for an unregistered kind (a programming error). Commits the session."""
    if kind not in _KINDS:
        raise KeyError(f"no job kind {kind!r} is registered")
    params_json = json.dumps(params or {}, sort_keys=True)
    # One user's starts are serialized (PostgreSQL: the user's row lock; SQLite: the write lock
    # BEGIN IMMEDIATE takes), so two clicks in two web processes cannot both pass the limit.
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())
    active = db.session.scalar(select(func.count()).select_from(BackgroundJob).where(
        BackgroundJob.user_id == user_id, BackgroundJob.state.in_(("queued", "running"))))
    if active >= MAX_ACTIVE_PER_USER:
        db.session.rollback()
        raise JobLimit(f"You already have {active} jobs waiting or running. Wait for one of them "
                       "to finish (its page shows the progress), then start this one.")
    job_id = secrets.token_urlsafe(24)
    job = BackgroundJob(id=job_id, user_id=user_id, kind=kind,
                        params=params_json, state="queued", progress=0,
                        stage="Waiting for a worker", created_at=utcnow(), updated_at=utcnow())
    db.session.add(job)
    db.session.commit()
    from portal.jobs.queue import enqueue

    # Nothing of this session may be touched until the message is sent: reading the expired row
    # would open a transaction, and on SQLite (BEGIN IMMEDIATE) hold the write lock an
    # immediate-mode job, or a fast worker, needs.
    try:
        enqueue(current_app._get_current_object(), job_id)
    except Exception as exc:  # noqa: BLE001  (the broker is down: say so on the page)
        log.error("job %s (%s): could not be queued: %s", job_id[:8], kind, type(exc).__name__)
        _finish(job, "failed", error=QUEUE_DOWN_MESSAGE)
        db.session.commit()
        return job
    # Immediate mode (or a very fast worker) may have finished it already in another session.
    db.session.refresh(job)
    return job


# ----------------------------------------------------------------------------------------
# Run (worker process)
# ----------------------------------------------------------------------------------------

class JobContext:
    """What a job's work function gets: its ``params``, ``user_id``, ``job_id``, and the two
    ways to talk back, ``report`` (progress) and ``save_result`` (the file)."""

    def __init__(self, job: BackgroundJob, app: Flask):
        self.job_id = job.id
        self.kind = job.kind
        self.user_id = job.user_id
        self.params: dict[str, Any] = json.loads(job.params or "{}")
        self.app = app
        self._progress = 0
        self._result: tuple[Path, str, str, str | None, dict | None] | None = None

    def report(self, progress: int, stage: str) -> None:
        """Progress in percent (never goes back) and a short sentence for people.

        Commits the job's database session (so pollers in other processes see it): call it
        between steps of the work, never in the middle of a write you may roll back."""
        self._progress = max(self._progress, min(int(progress), 99))
        job = db.session.get(BackgroundJob, self.job_id)
        if job is None:  # deleted under us (an admin purge): finish quietly
            return
        job.progress, job.stage, job.updated_at = self._progress, stage[:200], utcnow()
        db.session.commit()

    def save_result(self, data: bytes | str | os.PathLike, *, filename: str, mimetype: str,
                    summary: str | None = None, info: dict | None = None) -> None:
        """The job's file: ``bytes``, or the path of a file the job wrote (moved into the result
        store). ``filename`` is what the browser saves it as; ``summary`` a sentence shown with
        the download link ("5 lines for 2 patients"); ``info`` JSON facts for the feature's
        access-log description. The result becomes visible when the work function returns."""
        folder = result_dir(self.app)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-")
        os.close(fd)
        os.chmod(tmp, 0o600)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                with open(tmp, "wb") as fh:
                    fh.write(data)
            else:
                shutil.move(os.fspath(data), tmp)
                os.chmod(tmp, 0o600)
            final = folder / f"{secrets.token_hex(16)}.result"
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self._result is not None:  # saved twice: only the last one counts
            self._result[0].unlink(missing_ok=True)
        self._result = (final, filename, mimetype, summary, info)


def run(app: Flask, job_id: str) -> None:
    """Run one job by id (the queue task). Never raises for the job's own errors: any exception
    marks the job failed with a generic message; the log gets the traceback without values."""
    from portal.documents.render import release_renderer

    with app.app_context():
        try:
            _run(app, job_id)
        finally:
            db.session.remove()
            # A job may lay out hundreds of documents (an audit file); the render process keeps
            # part of what they cost. The next job starts from a fresh one, so a worker's
            # memory does not grow from export to export (bench/audit_file.py).
            release_renderer()


def _run(app: Flask, job_id: str) -> None:
    job = db.session.get(BackgroundJob, job_id)
    if job is None or job.state != "queued":
        return  # already run (a message delivered twice), expired, or deleted
    kind = _KINDS.get(job.kind)
    job.state, job.stage, job.updated_at = "running", "Starting", utcnow()
    db.session.commit()
    ctx = JobContext(job, app)
    try:
        if kind is None:
            raise LookupError(f"no job kind {job.kind!r} is registered in this worker")
        kind.work(ctx)
        if ctx._result is None:
            raise RuntimeError(f"job kind {job.kind!r} finished without saving a result")
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        if ctx._result is not None:
            ctx._result[0].unlink(missing_ok=True)
        if isinstance(exc, JobFailed):
            log.info("job %s (%s) refused: %s", job_id[:8], ctx.kind, type(exc).__name__)
            message, details = exc.message[:500], exc.details
        else:
            log.error("job %s (%s) failed: %s", job_id[:8], ctx.kind, _phi_free_trace(exc))
            message, details = FAILED_MESSAGE, []
        job = db.session.get(BackgroundJob, job_id)
        if job is not None:
            _finish(job, "failed", error=message)
            if details:
                job.result_info = json.dumps({"details": details})
            db.session.commit()
        return
    db.session.rollback()  # whatever the work left pending was not meant to persist
    path, filename, mimetype, summary, info = ctx._result
    job = db.session.get(BackgroundJob, job_id)
    if job is None:
        path.unlink(missing_ok=True)
        return
    job.result_path, job.filename, job.mimetype = str(path), filename[:255], mimetype[:100]
    job.result_bytes = path.stat().st_size
    job.summary = summary[:300] if summary else None
    job.result_info = json.dumps(info, sort_keys=True) if info else None
    _finish(job, "done")
    db.session.commit()


def _finish(job: BackgroundJob, state: str, *, error: str | None = None) -> None:
    now = utcnow()
    job.state, job.finished_at, job.updated_at = state, now, now
    job.expires_at = now + result_ttl()
    if state == "done":
        job.progress, job.stage = 100, "Ready to download"
    else:
        job.stage, job.error = "Failed", error


def _phi_free_trace(exc: BaseException) -> str:
    """The exception's type and where it happened, without its message: messages (database
    errors with their parameters, a value that did not parse) can carry patient data."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-6:]))
    return f"{type(exc).__module__}.{type(exc).__qualname__} at {where}"


# ----------------------------------------------------------------------------------------
# Read and expire (web process, periodic task)
# ----------------------------------------------------------------------------------------

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def job_for(job_id: str, user_id: int) -> BackgroundJob | None:
    """The job if it exists and belongs to ``user_id`` (else None: never another user's).
    A result past its time is deleted here, on access, and the job comes back ``expired``."""
    # Ids are url-safe tokens: anything else (a NUL byte, which PostgreSQL refuses in text)
    # is simply not a job, and never reaches the database.
    job = db.session.get(BackgroundJob, job_id) if _JOB_ID.fullmatch(job_id or "") else None
    if job is None or job.user_id != user_id:
        return None
    now = utcnow()
    if job.state in ("done", "failed") and job.expires_at and job.expires_at <= now:
        _expire(job)
        db.session.commit()
    elif job.state == "running" and job.updated_at <= now - stale_after():
        _finish(job, "failed", error=STALE_MESSAGE)
        db.session.commit()
    elif job.state == "queued" and job.created_at <= now - NEVER_RAN_AFTER:
        _finish(job, "failed", error=NEVER_RAN_MESSAGE)
        db.session.commit()
    return job


def result_file(job: BackgroundJob) -> Path | None:
    """The finished file, if it is still there and inside the result store."""
    if job.state != "done" or not job.result_path:
        return None
    path = Path(job.result_path)
    try:
        inside = path.resolve().parent == result_dir().resolve()
    except OSError:
        return None
    return path if inside and path.is_file() else None


def _expire(job: BackgroundJob) -> None:
    if job.result_path:
        Path(job.result_path).unlink(missing_ok=True)
    if job.state == "done":
        job.state, job.stage = "expired", "Expired"
    job.result_path = None


def purge_expired(app: Flask, *, now: datetime | None = None) -> dict[str, int]:
    """Delete results past their time, fail running jobs whose worker went silent and jobs no
    worker picked up within a day, and drop job rows a week after they expired. Run every few minutes by the queue's periodic task and
    by ``flask jobs purge``. Returns counts."""
    now = now or utcnow()
    with app.app_context():
        try:
            expired = db.session.scalars(select(BackgroundJob).where(
                BackgroundJob.state.in_(("done", "failed")), BackgroundJob.expires_at <= now)).all()
            for job in expired:
                _expire(job)
            stale = db.session.scalars(select(BackgroundJob).where(
                BackgroundJob.state == "running",
                BackgroundJob.updated_at <= now - stale_after(app))).all()
            for job in stale:
                _finish(job, "failed", error=STALE_MESSAGE)
            never = db.session.scalars(select(BackgroundJob).where(
                BackgroundJob.state == "queued",
                BackgroundJob.created_at <= now - NEVER_RAN_AFTER)).all()
            for job in never:
                _finish(job, "failed", error=NEVER_RAN_MESSAGE)
            old = db.session.scalars(select(BackgroundJob).where(
                BackgroundJob.state.in_(("expired", "failed")),
                BackgroundJob.expires_at <= now - timedelta(days=7))).all()
            for job in old:
                if job.result_path:
                    Path(job.result_path).unlink(missing_ok=True)
                db.session.delete(job)
            db.session.commit()
            orphans = _remove_orphan_files(app, now)
            return {"expired": len(expired), "stale": len(stale) + len(never), "deleted": len(old),
                    "orphans": orphans}
        finally:
            db.session.remove()


def _remove_orphan_files(app: Flask, now: datetime) -> int:
    """Files no job names (a worker killed between writing and recording), after a day."""
    folder = result_dir(app)
    known = {Path(p).name for p in db.session.scalars(
        select(BackgroundJob.result_path).where(BackgroundJob.result_path.is_not(None)))}
    removed = 0
    cutoff = (now - timedelta(days=1)).timestamp()
    for path in folder.iterdir():
        if path.name not in known and path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
