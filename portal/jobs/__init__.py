"""Background jobs on a real task queue (huey), shared by every feature.

    from portal.jobs import register, start, JobContext, JobLimit

    @register("billing_csv", title="Claim-line export")   # at import of the feature module
    def work(ctx: JobContext) -> None:                    # in a worker, inside an app context
        ctx.params; ctx.user_id
        ctx.report(40, "Deriving claim lines")           # percent + a stage for people
        ctx.save_result(data_or_path, filename="x.csv", mimetype="text/csv")
        # raise JobFailed("message for people") to fail with that message; any other
        # exception fails with a generic one (details in the worker's log, without values)

    job = start("billing_csv", user_id=current_user.id, params={...})   # the DB row
    return progress_partial(job), 202          # htmx: the polling progress component
    url_for("jobs.progress", job_id=job.id)    # htmx progress partial / page
    url_for("jobs.download", job_id=job.id)    # the file, owner only

Workers are separate processes: ``flask --app portal jobs worker`` (docs/operations.md,
"Background jobs"). The state lives in the ``background_jobs`` table; the queue (SQLite file in
the instance folder, or Redis with ``PORTAL_QUEUE_URL``) carries job ids only.
"""
from __future__ import annotations

from flask import Flask

from portal.jobs.service import (MAX_ACTIVE_PER_USER, JobContext, JobFailed, JobLimit, job_for,
                                 register, start)

__all__ = ["JobContext", "JobFailed", "JobLimit", "MAX_ACTIVE_PER_USER", "init_app", "job_for",
           "progress_partial", "register", "start"]


def progress_partial(job) -> str:
    """The htmx progress component for ``job`` (``templates/jobs/_progress.html``)."""
    from portal.jobs.views import progress_partial as render

    return render(job)


def init_app(app: Flask) -> None:
    """The app's queue, the ``jobs`` blueprint and the ``flask jobs`` commands."""
    from portal.jobs.commands import jobs_cli
    from portal.jobs.queue import init_app as init_queue
    from portal.jobs.views import bp

    init_queue(app)
    app.register_blueprint(bp)
    app.cli.add_command(jobs_cli)
