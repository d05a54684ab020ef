"""Background jobs (portal/jobs) through the queue, run in-process as a worker would: start,
progress, download by the owner only, failures without PHI, the per-user limit, expiry (on
access and by the periodic purge), stalled workers, an unreachable broker, immediate mode.

The path through the queue runs on SQLite (the demo's) and on Redis (production's), the latter
skipped with its reason when no redis-server answers on 127.0.0.1:6379. Separate processes
(two gunicorn servers and a worker): tests/web/test_jobs_live.py.
"""
from __future__ import annotations

import logging
import os
import re
import stat
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from portal.errors import SCOPED_NOT_FOUND
from portal.extensions import db
from portal.jobs import JobContext, JobLimit, MAX_ACTIVE_PER_USER, register, start
from portal.jobs.queue import PURGE_TASK, RUN_TASK, huey_of, make_huey, run_pending
from portal.jobs.service import (FAILED_MESSAGE, QUEUE_DOWN_MESSAGE, STALE_MESSAGE, purge_expired,
                                 result_dir)
from portal.models import AccessLogEntry, BackgroundJob
from portal.models.types import utcnow
from tests import factories
from tests.web.test_jobs_live import REDIS_DB, REDIS_HOST, REDIS_PORT, redis_answers

SEEN_PROGRESS: list[tuple[int, str]] = []


@register("test_echo", title="Test report", describe=lambda job: f"EXPORT test echo {job.filename}")
def echo(ctx: JobContext) -> None:
    ctx.report(40, "Deriving claim lines")
    # What another process sees while the job runs: report() has committed.
    engine = create_engine(db.engine.url)
    with engine.connect() as conn:
        SEEN_PROGRESS.append(tuple(conn.execute(text(
            "SELECT progress, stage FROM background_jobs WHERE id = :id"), {"id": ctx.job_id}).one()))
    engine.dispose()
    ctx.report(30, "Going back is ignored")
    body = f"user={ctx.user_id} word={ctx.params['word']}\n".encode()
    ctx.save_result(body, filename="echo.txt", mimetype="text/plain", summary="One line.",
                    info={"lines": 1})


@register("test_from_path")
def from_path(ctx: JobContext) -> None:
    path = os.path.join(ctx.params["dir"], "made-by-job.pdf")
    with open(path, "wb") as fh:
        fh.write(b"%PDF-1.7 not really")
    ctx.save_result(path, filename="binder.pdf", mimetype="application/pdf")


@register("test_render")
def lays_out(ctx: JobContext) -> None:
    from portal.documents import render

    ctx.save_result(render._worker.render("<p>One page.</p>", 60), filename="one.pdf",
                    mimetype="application/pdf")


@register("test_fail")
def fail(ctx: JobContext) -> None:
    ctx.save_result(b"half", filename="half.txt", mimetype="text/plain")
    raise ValueError("Marisol Alvarez MRN 100231 could not be parsed")  # PHI in a message


@register("test_no_result")
def no_result(ctx: JobContext) -> None:
    ctx.report(50, "Working")


@pytest.fixture(params=["sqlite", "redis"])
def queue(app, request):
    """The app's queue on SQLite (the test's file) or on Redis db REDIS_DB (own queue name)."""
    if request.param == "redis":
        why = redis_answers()
        if why:
            pytest.skip(why)
        app.config["PORTAL_QUEUE_URL"] = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
        app.config["PORTAL_QUEUE_NAME"] = f"test-{uuid.uuid4().hex[:12]}"
        app.extensions["huey"] = make_huey(app)
    yield request.param
    if request.param == "redis":
        huey_of(app).flush()


def job_row(job_id: str) -> BackgroundJob:
    db.session.expire_all()
    return db.session.get(BackgroundJob, job_id)


def drain(app) -> int:
    db.session.rollback()
    return run_pending(app)


def test_start_worker_progress_download_on_the_queue(app, client, login, world, queue):
    SEEN_PROGRESS.clear()
    job = start("test_echo", user_id=world.billing.id, params={"word": "hello"})
    assert re.fullmatch(r"[\w-]{32}", job.id) and job.state == "queued"
    login.as_(world.billing)
    waiting = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in waiting and "Waiting for a worker" in waiting
    assert '<label for="progress-' in waiting and '<progress id="progress-' in waiting

    assert drain(app) == 1
    assert SEEN_PROGRESS == [(40, "Deriving claim lines")]
    row = job_row(job.id)
    assert (row.state, row.progress, row.stage) == ("done", 100, "Ready to download")
    assert row.expires_at - row.finished_at == timedelta(hours=1)  # the default TTL
    path = row.result_path
    assert os.path.dirname(path) == str(result_dir(app))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(result_dir(app)).st_mode) == 0o700

    done = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "every 1s" not in done and "Test report ready." in done and "One line." in done
    assert f'href="/jobs/{job.id}/download"' in done
    page = client.get(f"/jobs/{job.id}")
    assert page.status_code == 200 and "<h1>Test report</h1>" in page.get_data(as_text=True)
    resp = client.get(f"/jobs/{job.id}/download")
    assert resp.status_code == 200 and resp.data == f"user={world.billing.id} word=hello\n".encode()
    assert resp.headers["Content-Disposition"] == 'attachment; filename=echo.txt'
    assert resp.headers["Cache-Control"] == "no-store" and resp.mimetype == "text/plain"
    logged = db.session.scalars(select(AccessLogEntry).where(
        AccessLogEntry.endpoint == "jobs.download", AccessLogEntry.method == "EXPORT")).all()
    assert [e.path for e in logged] == [f"EXPORT test echo echo.txt job={job.id[:8]}"]
    assert logged[0].user_id == world.billing.id


def test_only_the_requester_sees_or_downloads_a_job(app, client, login, world):
    job = start("test_echo", user_id=world.billing.id, params={"word": "mine"})
    drain(app)
    for other in (world.admin, world.auditor, world.facilitator):
        login.as_(other)
        for url in (f"/jobs/{job.id}", f"/jobs/{job.id}/download"):
            resp = client.get(url)
            assert resp.status_code == 404, (other.role, url)
            # An auditor reads the same words for every 404 (portal/errors.py), so nothing
            # tells them a job exists; staff are told why.
            expected = SCOPED_NOT_FOUND if other.role == "auditor" else \
                "belong to the person who started them"
            assert expected in resp.get_data(as_text=True)
    assert client.get("/jobs/" + "x" * 300).status_code == 404
    assert client.get("/jobs/not-a-job/download").status_code == 404
    assert not db.session.scalars(select(AccessLogEntry).where(AccessLogEntry.method == "EXPORT")).all()
    client.post("/logout", data={"csrf_token": factories.csrf_from(
        client.get("/", follow_redirects=True).get_data(as_text=True))})
    assert client.get(f"/jobs/{job.id}").status_code == 302  # signed out: to the sign-in page


def test_a_result_past_its_time_is_gone_on_access_and_says_so(app, client, login, world):
    job = start("test_echo", user_id=world.billing.id, params={"word": "old"})
    drain(app)
    row = job_row(job.id)
    path = row.result_path
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    login.as_(world.billing)
    resp = client.get(f"/jobs/{job.id}/download")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and "This file has expired and was deleted" in html
    assert "kept for 1 hour" in html and "Start the job again" in html
    assert not os.path.exists(path)
    assert job_row(job.id).state == "expired" and job_row(job.id).result_path is None
    page = client.get(f"/jobs/{job.id}")
    assert page.status_code == 404 and "This file has expired" in page.get_data(as_text=True)
    partial = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "This file has expired" in partial and "every 1s" not in partial


def test_the_periodic_purge_deletes_results_past_the_configured_ttl(app, world):
    app.config["PORTAL_JOB_RESULT_TTL"] = 60
    job = start("test_echo", user_id=world.billing.id, params={"word": "x"})
    drain(app)
    app.config["PORTAL_JOB_RESULT_TTL"] = 3600
    keep = start("test_echo", user_id=world.billing.id, params={"word": "y"})
    drain(app)
    row, kept = job_row(job.id), job_row(keep.id)
    assert row.expires_at - row.finished_at == timedelta(seconds=60)
    path, kept_path, moment = row.result_path, kept.result_path, row.expires_at
    db.session.rollback()
    assert purge_expired(app, now=moment + timedelta(seconds=1))["expired"] == 1
    assert not os.path.exists(path) and os.path.exists(kept_path)
    assert job_row(job.id).state == "expired" and job_row(keep.id).state == "done"
    # the queue runs that purge every 5 minutes, and so does `flask jobs purge` on demand
    huey = huey_of(app)
    assert {k.rsplit(".", 1)[1] for k in huey._registry._registry} == {PURGE_TASK, RUN_TASK}
    assert [t.name for t in huey._registry.periodic_tasks] == [PURGE_TASK]
    db.session.rollback()
    out = app.test_cli_runner().invoke(args=["jobs", "purge"])
    assert out.exit_code == 0 and "Expired 0 result(s)" in out.output


def test_a_failed_job_says_so_generically_and_logs_no_phi(app, client, login, world, caplog):
    caplog.set_level(logging.ERROR, logger="portal.jobs")
    job = start("test_fail", user_id=world.billing.id)
    drain(app)
    row = job_row(job.id)
    assert row.state == "failed" and row.error == FAILED_MESSAGE and row.result_path is None
    assert not [p for p in result_dir(app).iterdir()]  # the half-written result was removed
    text_logged = caplog.text
    assert "ValueError" in text_logged and "test_jobs.py" in text_logged
    assert "Marisol" not in text_logged and "100231" not in text_logged
    login.as_(world.billing)
    html = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'role="alert"' in html and "The job failed and produced no file" in html
    assert "every 1s" not in html
    assert client.get(f"/jobs/{job.id}/download").status_code == 409


def test_a_job_that_saves_nothing_fails(app, world):
    job = start("test_no_result", user_id=world.billing.id)
    drain(app)
    assert job_row(job.id).state == "failed"


def test_a_result_saved_from_a_path_is_moved_into_the_store(app, client, login, world, tmp_path):
    job = start("test_from_path", user_id=world.billing.id, params={"dir": str(tmp_path)})
    drain(app)
    row = job_row(job.id)
    assert row.state == "done" and not (tmp_path / "made-by-job.pdf").exists()
    assert stat.S_IMODE(os.stat(row.result_path).st_mode) == 0o600
    login.as_(world.billing)
    resp = client.get(f"/jobs/{job.id}/download")
    assert resp.data == b"%PDF-1.7 not really" and resp.mimetype == "application/pdf"


def test_a_large_result_is_streamed_from_its_file(app, client, login, world, monkeypatch):
    from portal.jobs import views

    monkeypatch.setattr(views, "SMALL_FILE", 0)
    app.config["PORTAL_JOB_RESULT_TTL"] = 90
    job = start("test_echo", user_id=world.billing.id, params={"word": "große"})
    drain(app)
    login.as_(world.billing)
    resp = client.get(f"/jobs/{job.id}/download")
    try:
        assert resp.status_code == 200 and resp.is_streamed
        assert resp.get_data() == f"user={world.billing.id} word=große\n".encode()
        assert resp.headers["Content-Disposition"] == "attachment; filename=echo.txt"
        assert resp.headers["Cache-Control"] == "no-store"
    finally:
        resp.close()
    row = job_row(job.id)
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert "kept for 90 seconds" in client.get(f"/jobs/{job.id}").get_data(as_text=True)


def test_a_user_may_have_only_so_many_jobs_waiting(app, client, login, world):
    for _ in range(MAX_ACTIVE_PER_USER):
        start("test_echo", user_id=world.billing.id, params={"word": "w"})
    with pytest.raises(JobLimit, match="Wait for one of them to finish"):
        start("test_echo", user_id=world.billing.id, params={"word": "w"})
    start("test_echo", user_id=world.admin.id, params={"word": "w"})  # others are not limited
    login.as_(world.billing)
    token = factories.csrf_from(client.get("/billing/exports").get_data(as_text=True))
    resp = client.post("/billing/exports", data={"csrf_token": token, "from": "2026-11-01",
                                                 "to": "2026-11-02"})
    assert resp.status_code == 429 and "jobs waiting or running" in resp.get_data(as_text=True)
    drain(app)  # once they finish, new ones start
    assert start("test_echo", user_id=world.billing.id, params={"word": "w"}).state == "queued"


def test_a_running_job_whose_worker_died_is_marked_failed(app, client, login, world):
    job = start("test_echo", user_id=world.billing.id, params={"word": "w"})
    row = job_row(job.id)
    row.state, row.updated_at = "running", utcnow() - timedelta(hours=1)
    db.session.commit()
    db.session.rollback()
    assert purge_expired(app)["stale"] == 1
    assert (job_row(job.id).state, job_row(job.id).error) == ("failed", STALE_MESSAGE)
    drain(app)  # the message still in the queue does not run a failed job
    assert job_row(job.id).state == "failed"


def test_a_job_nobody_picks_up_says_so_then_is_cancelled(app, client, login, world):
    job = start("test_echo", user_id=world.billing.id, params={"word": "w"})
    row = job_row(job.id)
    row.created_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    login.as_(world.billing)
    html = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "taking longer than usual" in html and "every 1s" in html
    row = job_row(job.id)
    row.created_at = utcnow() - timedelta(days=2)
    db.session.commit()
    html = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No job worker picked this job up within a day" in html and "every 1s" not in html
    assert job_row(job.id).state == "failed"


def test_an_unreachable_broker_fails_the_job_with_a_message(app, client, login, world):
    app.config["PORTAL_QUEUE_URL"] = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    app.extensions["huey"] = make_huey(app)
    job = start("test_echo", user_id=world.billing.id, params={"word": "w"})
    assert job.state == "failed" and job.error == QUEUE_DOWN_MESSAGE


def test_immediate_mode_runs_the_job_inside_start(app, world):
    app.config["PORTAL_QUEUE_IMMEDIATE"] = "1"
    app.extensions["huey"] = make_huey(app)
    job = start("test_echo", user_id=world.billing.id, params={"word": "now"})
    assert job.state == "done"


def test_a_worker_gives_back_its_render_process_after_each_job(app, world, run_jobs):
    from portal.documents import render

    job = start("test_render", user_id=world.billing.id)
    assert run_jobs() == 1
    db.session.refresh(job)
    assert job.state == "done"
    with open(job.result_path, "rb") as fh:
        assert fh.read(5) == b"%PDF-"
    assert render._worker._proc is None  # the next job lays out in a fresh process


def test_kinds_are_checked(app, world):
    with pytest.raises(KeyError):
        start("no_such_kind", user_id=world.billing.id)
    with pytest.raises(ValueError, match="already registered"):
        register("test_echo")(lambda ctx: None)
    with pytest.raises(ValueError, match="redis://"):
        app.config["PORTAL_QUEUE_URL"] = "amqp://broker"
        make_huey(app)


def test_ttl_and_stale_settings_come_from_the_environment(monkeypatch, tmp_path):
    from portal.config import load_config

    monkeypatch.setenv("PORTAL_JOB_RESULT_TTL", "120")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "x")
    cfg = load_config(tmp_path)
    assert cfg["PORTAL_JOB_RESULT_TTL"] == 120 and cfg["PORTAL_JOB_STALE_SECONDS"] == 900
    assert cfg["PORTAL_QUEUE_FILE"] == str(tmp_path / "job-queue.sqlite3")
    for bad in ("0", "-5", "an hour"):
        monkeypatch.setenv("PORTAL_JOB_RESULT_TTL", bad)
        with pytest.raises(ValueError, match="PORTAL_JOB_RESULT_TTL must be a number of seconds"):
            load_config(tmp_path)
