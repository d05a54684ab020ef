"""Faults while closing rosters: a worker SIGKILLed mid-close, the database connection cut
(what a PostgreSQL restart does to the portal), the archive folder full, read-only or gone.
Each time: a clear answer, nothing half-written (the roster is either closed and archived or
still open with no entry), and `audit verify` passes once things are back."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from portal.clock import local_today
from portal.extensions import db
from portal.models import ArchivedDocument, GroupSession
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.conftest import PG_URL
from tests.live_portal import ROOT, LivePortal, Tablet, portal_env, prepare

pytestmark = pytest.mark.slow


def verify_passes(runner) -> None:
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output


@pytest.fixture
def open_roster(world, client, login):
    """Today's AM roster, signed and timed, ready to close; the facilitator signed in."""
    from portal.demo.signature_art import squiggle_png
    from portal.services import roster as svc

    day = local_today(world.program.tz)
    session = {s.cohort.name: s for s in ensure_sessions(world.program, day)}["AM IOP"]
    tz = world.program.tz
    for i, entry in enumerate(list(session.entries)):
        svc.sign_attendance(session.id, entry.id, png=squiggle_png(seed=i), strokes=None,
                            user_agent="pytest", max_png_bytes=512 * 1024)
    svc.set_session_times(session.id, start=session.scheduled_start.astimezone(tz).strftime("%H:%M"),
                          end=session.scheduled_end.astimezone(tz).strftime("%H:%M"))
    login.as_(world.facilitator)
    token = factories.csrf_from(client.get(f"/sessions/{session.id}").get_data(as_text=True))
    return session.id, token


def _close(client, world, session_id, token):
    import base64

    from portal.demo.signature_art import squiggle_png

    png = "data:image/png;base64," + base64.b64encode(squiggle_png(seed=99)).decode()
    return client.post(f"/sessions/{session_id}/close",
                       data={"typed_name": world.facilitator.name, "attest": "yes",
                             "signature_png": png},
                       headers={"X-CSRFToken": token, "HX-Request": "true"})


def _state(session_id):
    db.session.rollback()
    session = db.session.get(GroupSession, session_id)
    docs = db.session.scalar(select(func.count()).select_from(ArchivedDocument))
    entries = db.session.execute(text("SELECT count(*) FROM audit_entries")).scalar()
    db.session.rollback()
    return session.status, session.document_id, docs, entries


# --- the archive folder -----------------------------------------------------------------------

@pytest.mark.parametrize("code, word", [(errno.ENOSPC, "full"), (errno.EROFS, "read-only")])
def test_archive_full_or_read_only_closes_nothing_and_says_so(app, client, world, runner,
                                                              open_roster, monkeypatch, code, word):
    from audit_archive.filestore import FileStore

    session_id, token = open_roster
    real_put = FileStore.put

    def failing_put(self, data):  # the fault hook: the disk refuses the write
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(FileStore, "put", failing_put)
    resp = _close(client, world, session_id, token)
    assert resp.status_code == 503
    body = resp.get_data(as_text=True)
    assert f"its disk is {word}" in body and "Nothing was saved" in body
    assert _state(session_id) == ("open", None, 0, 0)
    verify_passes(runner)
    # Recovery: the administrator frees space; the same close now works.
    monkeypatch.setattr(FileStore, "put", real_put)
    assert _close(client, world, session_id, token).status_code == 204
    status, doc_id, docs, entries = _state(session_id)
    assert status == "closed" and doc_id and docs == 1 and entries == 1
    verify_passes(runner)


def test_archive_folder_gone_is_a_clear_error_and_healthz_says_503(app, client, world, runner,
                                                                   open_roster, tmp_path):
    session_id, token = open_roster
    good = app.config["PORTAL_ARCHIVE_DIR"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    app.config["PORTAL_ARCHIVE_DIR"] = str(blocker / "archive")  # cannot be created
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["archive"].startswith("not writable")
    assert health.get_json()["database"] == "ok"
    assert "not-a-folder" not in health.get_data(as_text=True)  # no paths
    resp = _close(client, world, session_id, token)
    assert resp.status_code == 503 and "Nothing was saved" in resp.get_data(as_text=True)
    assert _state(session_id) == ("open", None, 0, 0)
    app.config["PORTAL_ARCHIVE_DIR"] = good
    assert client.get("/healthz").status_code == 200
    assert _close(client, world, session_id, token).status_code == 204
    verify_passes(runner)


# --- the database connection cut (PostgreSQL restart) -------------------------------------------

def _end_test_session():
    """End the test's own session, whose connection was just cut (its rollback fails, and the
    connection is discarded), so the next request checks a connection out of the pool."""
    from sqlalchemy.exc import OperationalError

    try:
        db.session.remove()
    except OperationalError:
        db.session.remove()


def _terminate_other_backends():
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PORTAL_TEST_DATABASE_URL)")
def test_database_connections_cut_mid_close_save_nothing_and_recover(app, client, world, runner,
                                                                     open_roster, monkeypatch):
    """pg_terminate_backend on every connection of the portal's database is what a PostgreSQL
    restart does to the portal (the shared server itself is not restarted in tests)."""
    from portal.services import roster as svc

    session_id, token = open_roster
    real = svc.archive_document

    def cut_then_archive(**kw):
        _terminate_other_backends()  # the close's transaction (holding FOR UPDATE) is lost
        return real(**kw)

    monkeypatch.setattr(svc, "archive_document", cut_then_archive)
    resp = _close(client, world, session_id, token)
    assert resp.status_code == 503
    assert "database could not be reached" in resp.get_data(as_text=True)
    monkeypatch.setattr(svc, "archive_document", real)
    assert _state(session_id) == ("open", None, 0, 0)
    _terminate_other_backends()  # and once more between requests: the pool reconnects
    # The test holds one app context (and so one session) across requests; a worker starts
    # each request with a fresh one, whose checkout pool_pre_ping tests.
    _end_test_session()
    db.session.add(world.facilitator)  # the test's own objects join its new session
    assert client.get(f"/sessions/{session_id}").status_code == 200
    assert _close(client, world, session_id, token).status_code == 204
    assert _state(session_id)[0] == "closed"
    verify_passes(runner)


def test_a_dropped_connection_between_requests_reconnects(app, client, world, open_roster):
    """pool_pre_ping: a connection the database closed is replaced, not used."""
    session_id, _ = open_roster
    if PG_URL:
        _terminate_other_backends()
        _end_test_session()  # as a new request would: its checkout is what pool_pre_ping tests
    else:
        db.session.remove()
        db.engine.dispose()
    assert client.get(f"/sessions/{session_id}").status_code == 200


# --- a worker SIGKILLed while closing --------------------------------------------------------------

def test_sigkill_of_a_worker_during_close_leaves_whole_rosters_only(tmp_path):
    """One gunicorn worker closes rosters; it is SIGKILLed at several points of a close (during
    the PDF render, around the archive append). The master starts a new worker; every roster is
    then either closed with its entry or still open with none, closing the open ones again
    works, and `audit verify` passes."""
    env = portal_env(tmp_path / "instance", f"sqlite:///{tmp_path / 'instance' / 'portal.sqlite3'}")
    world = prepare(env, tablets=1, cohorts_per_tablet=4, patients=4)
    email, info = next(iter(world.items()))
    sessions = info["sessions"]
    with LivePortal(env, workers=1, log=tmp_path / "gunicorn.log") as portal:
        tablet = Tablet(portal.port)
        assert tablet.sign_in(email) == 302
        outcomes = []
        for session, delay in zip(sessions, (0.0, 0.2, 0.5, 1.0)):
            # Everything but the close first, then the close in a thread; the worker is killed
            # `delay` seconds after it starts working on the close (its CPU time moves).
            steps = run_roster_until_close(tablet, session)
            assert all(s < 300 for _, s in steps), steps
            (worker,) = portal.worker_pids()
            result = {}

            def close():
                try:
                    result["status"] = close_request(tablet, session, info["name"])
                except OSError as exc:
                    result["error"] = type(exc).__name__

            before = _cpu_ticks(worker)
            t = threading.Thread(target=close)
            t.start()
            deadline = time.time() + 30
            while _cpu_ticks(worker) - before < 3 and t.is_alive() and time.time() < deadline:
                time.sleep(0.005)
            time.sleep(delay)
            os.kill(worker, signal.SIGKILL)
            t.join(60)
            outcomes.append(result)
            tablet.close()  # the connection died with the worker
            _wait_for_new_worker(portal, worker)
        # Recovery: whatever was left open closes now.
        tablet = Tablet(portal.port)
        assert tablet.sign_in(email) == 302
        for session in sessions:
            status = close_request(tablet, session, info["name"])
            assert status in (204, 409), status  # 409: it had closed before the kill
    verify = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "audit", "verify"],
                            env=env, cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    check = subprocess.run([sys.executable, "-c", _COUNT], env=env, cwd=ROOT, capture_output=True,
                           text=True, check=True)
    closed, docs, entries = json.loads(check.stdout.strip().splitlines()[-1])
    # The kill landed mid-close at least once (the tablet's connection dropped without an answer).
    assert any("error" in o for o in outcomes), outcomes
    assert closed == docs == len(sessions), (closed, docs, entries, outcomes)
    assert entries >= docs  # reconciliations aside, one chain entry per closed roster


_COUNT = r'''
import json
from sqlalchemy import text
from portal import create_app
from portal.extensions import db
app = create_app()
with app.app_context():
    closed = db.session.execute(text("SELECT count(*) FROM group_sessions WHERE status='closed' AND document_id IS NOT NULL")).scalar()
    docs = db.session.execute(text("SELECT count(*) FROM archived_documents")).scalar()
    entries = db.session.execute(text("SELECT count(*) FROM audit_entries")).scalar()
    print(json.dumps([closed, docs, entries]))
'''


def run_roster_until_close(tablet, session):
    from tests.live_portal import signature_data_uri

    sid = session["id"]
    out = []
    for k, entry in enumerate(session["entries"]):
        status, _, _ = tablet.request("POST", f"/sessions/{sid}/entries/{entry}/signature",
                                      {"signature_png": signature_data_uri(k), "strokes": "[]"},
                                      htmx=True)
        out.append(("sign", status))
    status, _, _ = tablet.request("POST", f"/sessions/{sid}/times",
                                  {"start": session["start"], "end": session["end"],
                                   "modality": "in_person"}, htmx=True)
    out.append(("times", status))
    return out


def close_request(tablet, session, name, *, retry=False) -> int:
    from tests.live_portal import signature_data_uri

    status, _, _ = tablet.request("POST", f"/sessions/{session['id']}/close",
                                  {"typed_name": name, "attest": "yes",
                                   "signature_png": signature_data_uri(99)}, htmx=True,
                                  retry=retry)
    return status


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _wait_for_new_worker(portal, old_pid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = portal.worker_pids()
        if pids and old_pid not in pids:
            try:
                if portal.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not replace the killed worker")
