"""Login, error answers for htmx vs full pages, history restore, the access log."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import AccessLogEntry
from tests import factories


def test_wrong_password_is_422_and_says_so(client, world):
    token = factories.csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"email": world.facilitator.email, "password": "nope",
                                       "csrf_token": token})
    assert resp.status_code == 422
    assert "Email or password is not right" in resp.get_data(as_text=True)


def test_login_refuses_open_redirect(client, world):
    token = factories.csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login?next=https://evil.example/x",
                       data={"email": world.billing.email, "password": factories.PASSWORD,
                             "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_htmx_error_is_a_short_partial_and_history_restore_gets_a_page(client, login, world):
    login.as_(world.facilitator)
    partial = client.get("/sessions/999", headers={"HX-Request": "true"})
    assert partial.status_code == 404
    body = partial.get_data(as_text=True)
    assert "<html" not in body and "no group session 999" in body
    assert partial.headers["HX-Retarget"] == "#flash"
    restore = client.get("/sessions/999", headers={"HX-Request": "true",
                                                   "HX-History-Restore-Request": "true"})
    assert restore.status_code == 404 and "<html" in restore.get_data(as_text=True)
    assert "HX-Request" in restore.headers.get("Vary", "")


def test_server_error_partial_never_replaces_a_row(app, client, login, world):
    @app.route("/boom")
    def boom():  # no access policy on purpose: refused with a 500
        return "never"

    login.as_(world.facilitator)
    resp = client.get("/boom", headers={"HX-Request": "true"})
    assert resp.status_code == 500
    assert "<html" not in resp.get_data(as_text=True)
    assert resp.headers["HX-Retarget"] == "#flash"


def test_auditor_reads_are_logged_with_patient(client, login, world):
    login.as_(world.auditor)
    patient = world.patients[0]
    assert client.get(f"/readiness/patients/{patient.id}").status_code == 200
    assert client.get("/readiness/").status_code == 200
    assert client.get("/today").status_code == 403
    rows = db.session.scalars(select(AccessLogEntry).where(
        AccessLogEntry.user_id == world.auditor.id).order_by(AccessLogEntry.id)).all()
    paths = [(r.path, r.patient_id, r.status_code) for r in rows]
    assert (f"/readiness/patients/{patient.id}", patient.id, 200) in paths
    assert ("/today", None, 403) in paths
    assert all(r.role == "auditor" for r in rows)


def test_password_guessing_is_slowed(app, client, world):
    from portal.extensions import limiter

    app.config["RATELIMIT_ENABLED"] = True
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.init_app(app)  # re-read the switch for this app
    token = factories.csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"email": world.billing.email, "password": "guess",
                                         "csrf_token": token}).status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]
    last = client.post("/login", data={"email": world.billing.email, "password": "guess",
                                       "csrf_token": token})
    assert "Too many sign-in attempts" in last.get_data(as_text=True)
