"""``flask --app portal jobs worker``: the process that runs background jobs (huey's consumer
with the portal's app); ``jobs purge`` deletes expired results now; ``jobs run-pending`` runs
what is queued and exits (maintenance, tests)."""
from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

jobs_cli = AppGroup("jobs", help="Background jobs (exports, audit files) on the task queue.")


@jobs_cli.command("worker")
@click.option("--threads", "-w", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Jobs this process runs at once (threads). Run more processes for more.")
@click.option("--no-periodic", is_flag=True,
              help="Do not run the periodic purge of expired results in this process (when "
                   "several workers run, one with the purge is enough).")
@with_appcontext
def worker(threads: int, no_periodic: bool):
    """Run jobs until stopped. SIGINT (Ctrl-C) or SIGHUP finishes the running jobs first;
    SIGTERM stops at once (a job cut off is marked failed after PORTAL_JOB_STALE_SECONDS)."""
    from portal.jobs.queue import huey_of

    app = current_app._get_current_object()
    huey = huey_of(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    storage = type(huey.storage).__name__.replace("Storage", "")
    click.echo(f"Job worker: {threads} thread(s), queue {huey.name!r} on {storage}"
               f"{'' if no_periodic else ', purging expired results every 5 minutes'}.")
    consumer = huey.create_consumer(workers=threads, worker_type="thread",
                                    periodic=not no_periodic, check_worker_health=True,
                                    initial_delay=0.1, backoff=1.15, max_delay=1.0)
    consumer.run()


@jobs_cli.command("purge")
@with_appcontext
def purge():
    """Delete results past PORTAL_JOB_RESULT_TTL now (the worker also does it every 5 minutes)."""
    from portal.jobs.service import purge_expired

    counts = purge_expired(current_app._get_current_object())
    click.echo(f"Expired {counts['expired']} result(s); {counts['stale']} stalled job(s) marked "
               f"failed; {counts['deleted']} old job record(s) deleted.")


@jobs_cli.command("run-pending")
@with_appcontext
def run_pending_cmd():
    """Run the jobs waiting in the queue in this process, then exit."""
    from portal.jobs.queue import run_pending

    click.echo(f"Ran {run_pending(current_app._get_current_object())} job(s).")
