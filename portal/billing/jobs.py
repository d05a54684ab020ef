"""In-process export jobs: a thread per job and a dict keyed by an unguessable job id.

A year of claim lines takes over a second to load and derive, so the page starts the work with
a POST and polls a progress partial (Hypermedia Systems' "archive" pattern). Jobs live in this
process's memory (``app.extensions["billing_export_jobs"]``): with several worker processes the
poll must reach the same worker (sticky sessions), and a restart forgets unfinished jobs, which
the user simply starts again. Each job belongs to the user who started it; anyone else asking
for it gets 404 as if it did not exist. Finished files are kept ``KEEP_SECONDS`` and then dropped.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from flask import Flask

KEEP_SECONDS = 3600
#: A user's unfinished jobs beyond this are refused, so a stuck button cannot start dozens.
MAX_RUNNING_PER_USER = 3
EXT_KEY = "billing_export_jobs"


@dataclass
class Job:
    """``progress`` 0..100 (percent); ``stage`` is a short sentence for people; ``result`` the
    file bytes once ``state`` is "done"; ``error`` a message when "failed"."""

    id: str
    user_id: int
    kind: str
    params: dict
    created: float = field(default_factory=time.monotonic)
    state: str = "running"  # running | done | failed
    progress: int = 0
    stage: str = "Starting"
    result: bytes | None = None
    filename: str = ""
    mimetype: str = "text/csv"
    rows: int = 0
    patients: int = 0
    error: str | None = None
    thread: threading.Thread | None = None

    def report(self, progress: int, stage: str) -> None:
        self.progress, self.stage = max(self.progress, min(int(progress), 100)), stage


class JobLimit(Exception):
    """The user already has ``MAX_RUNNING_PER_USER`` jobs running."""


def _registry(app: Flask) -> tuple[dict[str, Job], threading.Lock]:
    reg = app.extensions.get(EXT_KEY)
    if reg is None:
        reg = app.extensions.setdefault(EXT_KEY, ({}, threading.Lock()))
    return reg


def start(app: Flask, *, user_id: int, kind: str, params: dict,
          work: Callable[[Flask, Job], None]) -> Job:
    """Start ``work(app, job)`` in a daemon thread; it must fill ``job.result`` or raise.

    Any exception marks the job failed with a generic message (details go to the log), so
    a thread never dies with an unhandled error. Raises ``JobLimit``."""
    jobs, lock = _registry(app)
    with lock:
        now = time.monotonic()
        for jid in [j.id for j in jobs.values() if now - j.created > KEEP_SECONDS]:
            jobs.pop(jid, None)
        running = sum(1 for j in jobs.values() if j.user_id == user_id and j.state == "running")
        if running >= MAX_RUNNING_PER_USER:
            raise JobLimit(f"You already have {running} exports running; wait for one to finish.")
        job = Job(id=secrets.token_urlsafe(16), user_id=user_id, kind=kind, params=params)
        jobs[job.id] = job

    def run():
        try:
            work(app, job)
            job.report(100, "Ready to download")
            job.state = "done"
        except Exception:  # noqa: BLE001  (reported on the page, logged with traceback)
            app.logger.exception("export job %s failed", job.id)
            job.error = "The export failed and produced no file. Try again; if it keeps " \
                        "failing, tell your administrator."
            job.state = "failed"

    job.thread = threading.Thread(target=run, name=f"export-{job.id[:6]}", daemon=True)
    job.thread.start()
    return job


def get(app: Flask, job_id: str, user_id: int) -> Job | None:
    """The job if it exists and belongs to ``user_id``; else None (never another user's)."""
    jobs, lock = _registry(app)
    with lock:
        job = jobs.get(job_id)
    if job is None or job.user_id != user_id:
        return None
    return job


def join_all(app: Flask, timeout: float = 30.0) -> None:
    """Wait for running job threads to finish (tests and orderly shutdown: a thread still
    holding a database connection must not outlive the engine it came from)."""
    jobs, lock = _registry(app)
    with lock:
        threads = [j.thread for j in jobs.values() if j.thread is not None]
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
