"""Shared-tablet sessions: a copied cookie dies at sign-out, nothing carries across users, the
idle lock (htmx-aware) and the absolute limit, production cookies, the redirect after sign-in and
the security headers on every answer."""
from __future__ import annotations

import time

import pytest
from http.cookies import SimpleCookie

from portal import create_app
from portal.clock import local_today
from portal.services.auth import invalidate_sessions
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.conftest import _config


def _session_cookie(client):
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _csrf(client) -> str:
    return factories.csrf_from(client.get("/", follow_redirects=True).get_data(as_text=True))


def _shift(client, **seconds_ago):
    """Pretend the session's clocks (login_at, seen_at, locked_at) were that long ago."""
    with client.session_transaction() as s:
        for key, ago in seconds_ago.items():
            s[key] = int(time.time()) - ago


# --- sign-out ends every copy of the session -----------------------------------------------

def test_a_copied_cookie_stops_working_after_sign_out(app, client, login, world):
    login.as_(world.billing)
    stolen = _session_cookie(client)
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/readiness/").status_code == 200
    client.post("/logout", data={"csrf_token": _csrf(client)})
    resp = thief.get("/readiness/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_invalidate_sessions_ends_sessions_on_every_device(app, client, login, world):
    """What a password change or a deactivation calls."""
    login.as_(world.clinician)
    other = app.test_client()
    Login = type(login)
    Login(other).as_(world.clinician)
    invalidate_sessions(world.clinician)
    for c in (client, other):
        resp = c.get("/today")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_cookie_replayed_from_another_browser_is_refused(app, client, login, world):
    login.as_(world.billing)
    stolen = _session_cookie(client)
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    resp = thief.get("/readiness/", headers={"User-Agent": "Evil/1.0"})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_sign_in_starts_a_clean_session(client, login, world):
    page = client.get("/login").get_data(as_text=True)
    before = factories.csrf_from(page)
    with client.session_transaction() as s:
        s["census_upload_sha256"] = "a" * 64  # as a preview of the previous user would leave
    login.as_(world.billing)
    with client.session_transaction() as s:
        assert "census_upload_sha256" not in s
        assert "csrf_token" not in s  # regenerated on the next form
    assert _csrf(client) != before


def test_sign_out_clears_the_session(client, login, world):
    login.as_(world.billing)
    client.post("/logout", data={"csrf_token": _csrf(client)})
    with client.session_transaction() as s:
        assert set(s.keys()) <= {"_flashes", "_remember"}


# --- idle lock -------------------------------------------------------------------------------

@pytest.fixture
def roster(world):
    day = local_today(world.program.tz)
    return {s.cohort.name: s for s in ensure_sessions(world.program, day)}["AM IOP"]


def test_an_idle_tablet_locks_and_htmx_swaps_nothing(client, login, world, roster):
    login.as_(world.facilitator)
    token = _csrf(client)
    _shift(client, seen_at=11 * 60)  # facilitators: 10 minutes
    entry = roster.entries[0]
    resp = client.post(f"/sessions/{roster.id}/entries/{entry.id}/mark",
                       data={"status": "absent"},
                       headers={"HX-Request": "true", "X-CSRFToken": token})
    assert resp.status_code == 401
    assert resp.headers["X-Portal-Locked"] == "1" and resp.headers["HX-Reswap"] == "none"
    assert entry.status == "expected"
    with client.session_transaction() as s:
        assert "_user_id" not in s and s["locked_uid"] == world.facilitator.id
    # A page load lands on the lock page, which offers the same user.
    page = client.get(f"/sessions/{roster.id}")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    body = client.get(page.headers["Location"]).get_data(as_text=True)
    assert "Locked" in body and world.facilitator.email in body and "switch=1" in body


def test_the_same_user_unlocks_and_carries_on_with_a_new_token(client, login, world, roster):
    login.as_(world.facilitator)
    token = _csrf(client)
    _shift(client, seen_at=11 * 60)
    assert client.get(f"/sessions/{roster.id}", headers={"HX-Request": "true"}).status_code == 401
    wrong = client.post("/unlock", data={"email": world.facilitator.email, "password": "nope",
                                         "csrf_token": token}, headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    other = client.post("/unlock", data={"email": world.facilitator2.email,
                                         "password": factories.PASSWORD, "csrf_token": token},
                        headers={"HX-Request": "true"})
    assert other.status_code == 422  # another person signs in from the sign-in page, clean
    ok = client.post("/unlock", data={"email": world.facilitator.email,
                                      "password": factories.PASSWORD, "csrf_token": token},
                     headers={"HX-Request": "true"})
    assert ok.status_code == 204
    new_token = ok.headers["X-CSRF-Token"]
    assert new_token and new_token != token
    entry = roster.entries[0]
    saved = client.post(f"/sessions/{roster.id}/entries/{entry.id}/mark",
                        data={"status": "absent"},
                        headers={"HX-Request": "true", "X-CSRFToken": new_token})
    assert saved.status_code == 200 and entry.status == "absent"


def test_someone_else_at_a_locked_tablet_starts_clean(client, login, world, roster):
    login.as_(world.facilitator)
    _shift(client, seen_at=11 * 60)
    client.get("/today")
    switch = client.get("/login?switch=1")
    assert switch.status_code == 302
    with client.session_transaction() as s:
        assert "locked_uid" not in s
    page = client.get("/login").get_data(as_text=True)
    assert "Locked" not in page
    token = factories.csrf_from(page)
    resp = client.post(f"/login?next=/sessions/{roster.id}",
                       data={"email": world.facilitator2.email, "password": factories.PASSWORD,
                             "csrf_token": token})
    assert resp.status_code == 302


def test_the_idle_limit_is_per_role(client, login, world):
    login.as_(world.billing)  # office roles: 30 minutes by default
    _shift(client, seen_at=11 * 60)
    assert client.get("/readiness/").status_code == 200
    _shift(client, seen_at=31 * 60)
    assert client.get("/readiness/").status_code == 302


def test_activity_keeps_the_session_alive(client, login, world):
    login.as_(world.facilitator)
    _shift(client, seen_at=9 * 60)
    assert client.get("/session/alive").status_code == 204
    with client.session_transaction() as s:
        assert int(time.time()) - s["seen_at"] < 5


def test_the_lock_screen_is_on_every_signed_in_page(client, login, world):
    login.as_(world.facilitator)
    body = client.get("/today").get_data(as_text=True)
    assert 'id="lock-screen"' in body and 'data-idle-seconds="600"' in body
    assert "js/lock.js" in body


def test_the_absolute_limit_ends_the_session(client, login, world):
    login.as_(world.billing)
    _shift(client, login_at=13 * 3600)
    resp = client.get("/readiness/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert "12-hour limit" in client.get("/login").get_data(as_text=True)


# --- production cookies ------------------------------------------------------------------------

def test_https_deployments_get_host_prefixed_secure_cookies(monkeypatch, migrated_db, tmp_path, world):
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.clinic.example")
    from portal.config import cookie_settings
    settings = cookie_settings("https://portal.clinic.example")
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_NAME"] == "__Host-portal_session"
    assert cookie_settings("http://127.0.0.1:5000")["SESSION_COOKIE_SECURE"] is False


def test_https_answers_carry_secure_cookie_and_hsts(app, world):
    from portal.config import cookie_settings
    app.config.update(cookie_settings("https://portal.clinic.example"))
    client = app.test_client()
    resp = client.get("/login", base_url="https://portal.test")
    cookie = SimpleCookie(resp.headers["Set-Cookie"])
    morsel = cookie["__Host-portal_session"]
    assert morsel["secure"] and morsel["path"] == "/" and not morsel["domain"]
    assert morsel["samesite"] == "Lax" and morsel["httponly"]
    assert "max-age=" in resp.headers["Strict-Transport-Security"]


# --- redirect after sign-in ----------------------------------------------------------------------

BYPASSES = [
    "https://evil.example/x", "//evil.example", "////evil.example/phish", "/%2F%2F%2Fevil.example",
    "/%2f%2fevil.example", "%2F%2Fevil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/%09/evil.example", "/%5Cevil.example", "javascript:alert(1)",
    "http:/evil.example", "https:evil.example", "/%252F%252Fevil.example", " //evil.example",
    "/\r\n/evil.example", "//evil.example@portal.test", "/no-such-page",
]


@pytest.mark.parametrize("target", BYPASSES)
def test_sign_in_never_redirects_off_site(client, world, target):
    token = factories.csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", query_string={"next": target},
                       data={"email": world.billing.email, "password": factories.PASSWORD,
                             "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/", target


def test_sign_in_follows_a_real_portal_path(client, world):
    token = factories.csrf_from(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", query_string={"next": "/readiness/?from=2026-11-01"},
                       data={"email": world.billing.email, "password": factories.PASSWORD,
                             "csrf_token": token})
    assert resp.headers["Location"] == "/readiness/?from=2026-11-01"


# --- headers ----------------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(client, login, world):
    login.as_(world.billing)
    for path in ("/login", "/readiness/", "/no-such-page"):
        resp = client.get(path, follow_redirects=True)
        h = resp.headers
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert "'unsafe-inline'" not in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"
        assert h["Cache-Control"] == "no-store", path
    assert "Strict-Transport-Security" not in h  # plain http demo


def test_pages_have_no_inline_script_and_htmx_cannot_eval(client, login, world):
    import re
    login.as_(world.admin)
    for path in ("/today", "/readiness/", "/billing/", "/admin/census/"):
        body = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert not re.search(r"\son[a-z]+=", body), path
        assert '"allowEval":false' in body and '"allowScriptTags":false' in body


def test_static_files_may_be_cached(client):
    resp = client.get("/static/js/lock.js")
    assert resp.status_code == 200 and resp.headers.get("Cache-Control") != "no-store"
    resp.close()


def test_test_config_is_the_plain_http_one(tmp_path):
    cfg = _config(tmp_path, "sqlite://")
    app = create_app(cfg)
    assert app.config["SESSION_COOKIE_SECURE"] is False
