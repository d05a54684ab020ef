"""A real portal under gunicorn on loopback, and tablets that drive it over HTTP.

Used by the server and fault tests (tests/web/test_server.py, tests/web/test_faults.py) and by
bench/tablets.py. Stdlib only on the client side (http.client with keep-alive, one connection
per tablet, its own cookie), so a tablet behaves like a browser tab: sign in, GET the roster,
POST htmx requests with the CSRF header.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "tablet password one"

SETUP = r'''
import json, sys
from datetime import date, time as clock
from flask_migrate import upgrade
from sqlalchemy import text
from portal import create_app
from portal.clock import local_today
from portal.extensions import db
from portal.models import Cohort, Enrollment, Patient, Payer, Program, User
from portal.passwords import hash_password
from portal.services.schedule import ensure_sessions

tablets, cohorts_per, patients = (int(x) for x in sys.argv[1:4])
password = sys.argv[4]
app = create_app()
with app.app_context():
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade()
    program = Program(name="Load IOP", time_zone="America/Chicago", billing_npi="1234567893",
                      tax_id="36-1234567", address="410 N Harbor Dr, Chicago IL 60601")
    payer = Payer(rule_key="self_pay", name="Self-pay", kind="self_pay")
    db.session.add_all([program, payer])
    pw = hash_password(password)
    first_day = date(2026, 1, 5)
    users = []
    for t in range(tablets):
        u = User(name=f"Tablet Facilitator {t}", email=f"tablet{t}@load.example", role="facilitator",
                 credential="LCSW", npi="1487654323", password_hash=pw)
        db.session.add(u)
        users.append(u)
        for c in range(cohorts_per):
            cohort = Cohort(program=program, name=f"Group {t}-{c}", weekdays="1,2,3,4,5,6,7",
                            start_local=clock(8, 0), duration_minutes=180, facilitator=u,
                            capacity=30)
            db.session.add(cohort)
            for k in range(patients):
                p = Patient(mrn=f"L{t:03d}{c:02d}{k:02d}", legal_first=f"Pat{k}",
                            legal_last=f"Tablet{t}Group{c}", dob=date(1990, 1, 1), payer=payer,
                            admit_date=first_day, level_of_care="2.1")
                db.session.add_all([p, Enrollment(patient=p, cohort=cohort, start_date=first_day)])
    db.session.commit()
    sessions = ensure_sessions(program, local_today(program.tz))
    out = {u.email: {"name": u.name, "sessions": []} for u in users}
    for s in sorted(sessions, key=lambda s: s.cohort.name):
        out[s.facilitator.email]["sessions"].append(
            {"id": s.id, "entries": [e.id for e in s.entries],
             "start": s.scheduled_start.astimezone(program.tz).strftime("%H:%M"),
             "end": s.scheduled_end.astimezone(program.tz).strftime("%H:%M")})
    print(json.dumps(out))
'''


def free_port(lo: int = 51500, hi: int = 51599) -> int:
    """A free loopback port in issue 15's range."""
    for port in range(lo, hi + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in range")


def portal_env(instance: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_INSTANCE_DIR=str(instance), PORTAL_SECRET_KEY="live-portal-test-secret",
               PORTAL_BASE_URL="http://127.0.0.1", PYTHONPATH=str(ROOT),
               # The simulated tablets run at any hour against groups "meeting today": like the
               # suite (tests/conftest.py), widen the time-plausibility margins to a day.
               PORTAL_SIGN_EARLY_MINUTES="1440", PORTAL_FUTURE_TIME_MINUTES="1440",
               PORTAL_CLOSE_EARLY_MINUTES="1440")
    if database_url:
        env["PORTAL_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def prepare(env: dict[str, str], *, tablets: int, cohorts_per_tablet: int = 1,
            patients: int = 6) -> dict:
    """Migrate the database (PostgreSQL: dropped and rebuilt) and create one facilitator per
    tablet with its groups meeting today. Returns {email: {name, sessions: [...]}}."""
    out = subprocess.run([sys.executable, "-c", SETUP, str(tablets), str(cohorts_per_tablet),
                          str(patients), PASSWORD], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class LivePortal:
    """gunicorn serving wsgi:app with the repository's gunicorn.conf.py."""

    def __init__(self, env: dict[str, str], *, workers: int = 4, threads: int = 1,
                 port: int | None = None, log: Path | None = None):
        self.env, self.workers, self.threads = env, workers, threads
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None
        self._out = None

    def start(self, timeout: float = 60) -> "LivePortal":
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self._out = out if self.log else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
             "--threads", str(self.threads), "--access-logfile", "-" if self.log else "/dev/null",
             "wsgi:app"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                status, _ = self.get("/healthz")
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not become healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_out", None) is not None:
            self._out.close()
            self._out = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def worker_pids(self) -> list[int]:
        """Worker processes (children of the gunicorn master)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if self.proc and int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def get(self, path: str, timeout: float = 120) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


_CSRF = re.compile(rb'name="csrf-token" content="([^"]+)"')


@dataclass
class Tablet:
    """One browser tab on one tablet: its own connection and session cookie."""

    port: int
    cookie: str = ""
    csrf: str = ""
    conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def _conn(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self.conn

    def request(self, method: str, path: str, form: dict | None = None, *,
                htmx: bool = False, retry: bool = True) -> tuple[int, dict, bytes]:
        headers = {"User-Agent": "TabletSim/1.0"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if htmx:
            headers["HX-Request"] = "true"
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if self.csrf:
                headers["X-CSRFToken"] = self.csrf
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed (worker recycled): reconnect once.
                conn.close()
                self.conn = None
                if attempt == 2 or not retry:
                    raise
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        m = _CSRF.search(data)
        if m:
            self.csrf = m.group(1).decode()
        return resp.status, dict(resp.getheaders()), data

    def sign_in(self, email: str, password: str = PASSWORD) -> int:
        self.request("GET", "/login")
        status, _, _ = self.request("POST", "/login", {"email": email, "password": password,
                                                        "csrf_token": self.csrf})
        if status == 302:
            self.request("GET", "/today")  # the CSRF token of the new session
        return status

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _plus_minutes(hhmm: str, minutes: int) -> str:
    h, m = (int(x) for x in hhmm.split(":"))
    total = h * 60 + m + minutes
    return f"{total // 60:02d}:{total % 60:02d}"


@lru_cache(maxsize=256)
def signature_data_uri(seed: int) -> str:
    from portal.demo.signature_art import squiggle_png

    return "data:image/png;base64," + base64.b64encode(squiggle_png(seed=seed)).decode()


def run_roster(tablet: Tablet, session: dict, name: str, *, record=None) -> list[tuple[str, int]]:
    """Open the roster, mark the last patient absent and the first late, sign the others, save
    the times, close. ``record(kind, seconds, status)`` is called per request. Returns the
    (kind, status) of every request."""
    sid = session["id"]
    done = []

    def call(kind, method, path, form=None, htmx=True):
        t0 = time.perf_counter()
        status, headers, body = tablet.request(method, path, form, htmx=htmx)
        if record:
            record(kind, time.perf_counter() - t0, status)
        done.append((kind, status))
        return status, body

    call("open roster", "GET", f"/sessions/{sid}", htmx=False)
    *present, absent = session["entries"]
    call("mark", "POST", f"/sessions/{sid}/entries/{absent}/mark", {"status": "absent"})
    call("mark", "POST", f"/sessions/{sid}/entries/{present[0]}/mark",
         {"status": "late", "arrival": _plus_minutes(session["start"], 15)})
    for k, entry in enumerate(present):
        call("sign", "POST", f"/sessions/{sid}/entries/{entry}/signature",
             {"signature_png": signature_data_uri(k), "strokes": "[]"})
    call("save times", "POST", f"/sessions/{sid}/times",
         {"start": session["start"], "end": session["end"], "modality": "in_person"})
    call("close", "POST", f"/sessions/{sid}/close",
         {"typed_name": name, "attest": "yes", "signature_png": signature_data_uri(99)})
    return done
