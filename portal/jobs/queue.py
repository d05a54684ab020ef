"""The task queue: huey, with SQLite storage by default and Redis in production.

``PORTAL_QUEUE_URL`` unset: ``SqliteHuey`` in ``<instance>/job-queue.sqlite3`` (``make demo``
needs no extra service; web and worker processes on one machine share the file).
``PORTAL_QUEUE_URL=redis://host:6379/0``: ``RedisHuey`` (several machines, docs/operations.md).
``PORTAL_QUEUE_IMMEDIATE=1``: run each job inside ``start()`` (huey's immediate mode; a debugging
aid, never for production: the request waits for the work).

The queue carries only job ids; the job's state is the ``background_jobs`` row. Each app gets
its own huey instance (``app.extensions["huey"]``) with two tasks: ``run_job`` and the
periodic ``purge_expired_results`` (results past ``PORTAL_JOB_RESULT_TTL``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask
from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey

EXT_KEY = "huey"
RUN_TASK = "run_job"
PURGE_TASK = "purge_expired_results"


def make_huey(app: Flask) -> Huey:
    """Build the app's huey from its config and register the portal's tasks on it."""
    cfg = app.config
    url = (cfg.get("PORTAL_QUEUE_URL") or "").strip()
    name = cfg.get("PORTAL_QUEUE_NAME") or "iop-portal"
    immediate = str(cfg.get("PORTAL_QUEUE_IMMEDIATE") or "").lower() in ("1", "true", "yes", "on")
    if url.startswith(("redis://", "rediss://", "unix://")):
        huey: Huey = RedisHuey(name, url=url, results=False, immediate=immediate)
    elif url:
        raise ValueError(f"PORTAL_QUEUE_URL must be a redis:// URL (or unset for the SQLite "
                         f"queue in the instance folder), not {url.split(':', 1)[0]}://")
    else:
        path = Path(cfg.get("PORTAL_QUEUE_FILE") or Path(app.instance_path) / "job-queue.sqlite3")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        huey = SqliteHuey(name, filename=str(path), results=False, immediate=immediate)

    from portal.jobs.service import purge_expired, run

    @huey.task(name=RUN_TASK)
    def run_task(job_id: str) -> None:
        run(app, job_id)

    # Every 5 minutes; results are also expired on access, so a download never outlives its TTL.
    @huey.periodic_task(crontab(minute="*/5"), name=PURGE_TASK)
    def purge_task() -> None:
        counts = purge_expired(app)
        if any(counts.values()):
            app.logger.info("jobs purge: %s", counts)

    huey._portal_run = run_task  # noqa: SLF001  (looked up by enqueue)
    return huey


def init_app(app: Flask) -> None:
    app.extensions[EXT_KEY] = make_huey(app)


def huey_of(app: Flask) -> Huey:
    return app.extensions[EXT_KEY]


def enqueue(app: Flask, job_id: str) -> None:
    huey_of(app)._portal_run(job_id)  # noqa: SLF001


def run_pending(app: Flask, *, limit: int = 100) -> int:
    """Run queued tasks in this process until the queue is empty (tests and `flask jobs
    run-pending`); the worker process does the same in a loop. Returns how many ran."""
    huey = huey_of(app)
    ran = 0
    while ran < limit:
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
        ran += 1
    return ran


def wait_for_pending(app: Flask, *, timeout: float = 30.0, poll: float = 0.05) -> None:
    """Block until the queue is empty and every job row has left ``queued``/``running`` (a
    separate worker is doing the work); tests only."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import BackgroundJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        active = db.session.scalar(select(func.count()).select_from(BackgroundJob).where(
            BackgroundJob.state.in_(("queued", "running"))))
        if not active:
            return
        time.sleep(poll)
    raise TimeoutError("jobs still waiting or running")
