"""The portal under gunicorn (wsgi.py + gunicorn.conf.py), on loopback: /healthz, a roster
driven over HTTP by a tablet, and sign-in limits shared by four workers through
RATELIMIT_STORAGE_URI."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.live_portal import ROOT, LivePortal, Tablet, free_port, portal_env, prepare, run_roster

pytestmark = pytest.mark.slow


@pytest.fixture
def live_env(tmp_path):
    env = portal_env(tmp_path / "instance", f"sqlite:///{tmp_path / 'instance' / 'portal.sqlite3'}")
    world = prepare(env, tablets=2, cohorts_per_tablet=1, patients=4)
    return env, world


def test_healthz_under_gunicorn_says_what_is_checked_and_nothing_else(live_env):
    env, _ = live_env
    with LivePortal(env, workers=2) as portal:
        status, body = portal.get("/healthz")
        assert status == 200
        assert json.loads(body) == {"ok": True, "database": "ok", "archive": "ok",
                                    "checkpoints": "ok"}


def test_a_tablet_closes_a_roster_over_http_and_the_archive_verifies(live_env):
    env, world = live_env
    email, info = next(iter(world.items()))
    with LivePortal(env, workers=2) as portal:
        tablet = Tablet(portal.port)
        assert tablet.sign_in(email) == 302
        done = run_roster(tablet, info["sessions"][0], info["name"])
        assert all(status < 300 for _, status in done), done
        tablet.close()
    verify = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "audit", "verify"],
                            env=env, cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if not server:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


def test_four_workers_share_the_sign_in_limit(live_env, redis_url):
    """45 guesses in a minute against four workers: with shared storage exactly the account's
    5 attempts get an answer, whichever worker takes them; the rest wait (429 + Retry-After)."""
    env, world = live_env
    env = dict(env, RATELIMIT_STORAGE_URI=redis_url)
    email = next(iter(world))
    with LivePortal(env, workers=4) as portal:
        codes, retry = [], []
        for _ in range(45):
            tablet = Tablet(portal.port)  # a new connection each time: spread over workers
            tablet.request("GET", "/login")
            status, headers, _ = tablet.request("POST", "/login", {
                "email": email, "password": "a wrong guess", "csrf_token": tablet.csrf})
            codes.append(status)
            if status == 429:
                retry.append(int(headers["Retry-After"]))
            tablet.close()
    assert codes.count(422) == 5 and codes.count(429) == 40, codes
    assert all(r > 0 for r in retry)
