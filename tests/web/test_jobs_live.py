"""Background jobs across real processes: two gunicorn web servers and one job worker
(``flask --app portal jobs worker``) sharing the database and the queue.

A job started through one web server is polled and downloaded through the other; a web server
restarted while the job waits loses nothing; a job worker started later picks it up. Run on the
SQLite queue (the demo's) and on Redis (production's), skipped with its reason when no
redis-server answers on 127.0.0.1:6379 (.ci/run starts one).
"""
from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests.live_portal import (PASSWORD, ROOT, LivePortal, Tablet, portal_env, prepare,
                               run_roster)

pytestmark = pytest.mark.slow

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: The suite's own Redis database (the sign-in limit tests start their own server).
REDIS_DB = int(os.environ.get("PORTAL_TEST_REDIS_DB", "1"))

ADD_BILLING = r'''
import sys
from portal import create_app
from portal.extensions import db
from portal.models import User
from portal.passwords import hash_password
app = create_app()
with app.app_context():
    db.session.add(User(name="Bea Biller", email="billing@load.example", role="billing",
                        password_hash=hash_password(sys.argv[1])))
    db.session.commit()
'''


def redis_answers() -> str | None:
    """None when redis-server answers PING on 127.0.0.1:6379, else why not."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError as exc:
        return f"no redis-server on {REDIS_HOST}:{REDIS_PORT} ({exc}); .ci/run starts one"
    return None if reply.startswith(b"+PONG") else f"redis on {REDIS_PORT} answered {reply!r}"


@pytest.fixture(params=["sqlite", "redis"])
def queue_env(request, tmp_path):
    """The portal's environment (SQLite database) with the queue under test, and the world."""
    extra = {"PORTAL_QUEUE_NAME": f"test-{uuid.uuid4().hex[:12]}"}
    if request.param == "redis":
        why = redis_answers()
        if why:
            pytest.skip(why)
        extra["PORTAL_QUEUE_URL"] = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    env = portal_env(tmp_path / "instance",
                     f"sqlite:///{tmp_path / 'instance' / 'portal.sqlite3'}", **extra)
    world = prepare(env, tablets=1, cohorts_per_tablet=1, patients=3)
    subprocess.run([sys.executable, "-c", ADD_BILLING, PASSWORD], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    yield env, world, request.param
    if request.param == "redis":
        _drop_redis_queue(extra["PORTAL_QUEUE_NAME"])


def _drop_redis_queue(name: str) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    keys = list(client.scan_iter(f"huey.*{name.replace('-', '')}*")) + \
        list(client.scan_iter(f"huey.*{name}*"))
    if keys:
        client.delete(*keys)


class Worker:
    """``flask --app portal jobs worker`` as its own process."""

    def __init__(self, env, log):
        self.env, self.log = env, log
        self.proc = None

    def __enter__(self):
        self._out = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", "jobs",
                                      "worker", "--threads", "2"], env=self.env, cwd=ROOT,
                                     stdout=self._out, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # graceful: finish running jobs first
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def billing_tablet(port: int) -> Tablet:
    tablet = Tablet(port)
    assert tablet.sign_in("billing@load.example") == 302
    tablet.request("GET", "/billing/exports")  # this session's CSRF token
    return tablet


def poll_until_done(tablet: Tablet, job_id: str, timeout: float = 90) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _, body = tablet.request("GET", f"/jobs/{job_id}", htmx=True)
        assert status == 200, body[:500]
        html = body.decode()
        if 'hx-trigger="every 1s"' not in html:
            return html
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_job_started_on_one_web_server_is_polled_and_downloaded_on_another(queue_env, tmp_path):
    env, world, queue = queue_env
    email, info = next(iter(world.items()))
    log = tmp_path / "processes.log"
    with LivePortal(env, workers=1, log=log) as web_a, LivePortal(env, workers=1, log=log) as web_b:
        facilitator = Tablet(web_a.port)
        assert facilitator.sign_in(email) == 302
        assert all(s < 300 for _, s in run_roster(facilitator, info["sessions"][0], info["name"]))
        facilitator.close()

        a, b = billing_tablet(web_a.port), billing_tablet(web_b.port)
        # No worker yet: the job waits in the queue, and both servers see it waiting.
        status, _, body = a.request("POST", "/billing/exports",
                                    {"from": "2026-01-01", "to": "2026-12-31", "all": "1"}, htmx=True)
        assert status == 202, body[:500]
        job_id = re.search(r"/jobs/([\w-]+)", body.decode()).group(1)
        status, _, body = b.request("GET", f"/jobs/{job_id}", htmx=True)
        assert status == 200 and b"Waiting for a worker" in body and b"<progress" in body

        # A restart of web server A while the job waits loses nothing.
        web_a.stop()
        web_a.start()
        a = billing_tablet(web_a.port)
        status, _, body = a.request("GET", f"/jobs/{job_id}", htmx=True)
        assert status == 200 and b"Waiting for a worker" in body

        with Worker(env, log):
            html = poll_until_done(b, job_id)
            assert "Claim-line export ready." in html, html
            assert f"/jobs/{job_id}/download" in html
            status, headers, data = a.request("GET", f"/jobs/{job_id}/download")
            assert status == 200, data[:500]
            assert headers["Content-Type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(data.decode())))
            assert rows and {r["mrn"] for r in rows} <= {f"L00000{k:02d}" for k in range(3)}

            # A second job while the worker runs: started on B, finished, downloaded on A.
            status, _, body = b.request("POST", "/billing/exports",
                                        {"from": "2026-01-01", "to": "2026-12-31"}, htmx=True)
            assert status == 202
            second = re.search(r"/jobs/([\w-]+)", body.decode()).group(1)
            assert "ready." in poll_until_done(a, second)
            assert a.request("GET", f"/jobs/{second}/download")[0] == 200

        # Someone else, on either server: 404, as if the job did not exist.
        other = Tablet(web_b.port)
        assert other.sign_in(email) == 302
        assert other.request("GET", f"/jobs/{job_id}")[0] == 404
        assert other.request("GET", f"/jobs/{job_id}/download")[0] == 404
        for t in (a, b, other):
            t.close()
    assert b"Traceback" not in log.read_bytes(), log.read_text()[-3000:]
