"""Admin pages end to end: staff invites and one-time links, role changes and deactivation,
per-date session changes (cancel, move, covering facilitator), payers, closures, the admin log."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.clock import local_today, now_utc
from portal.extensions import db
from portal.models import AdminLogEntry, Closure, Cohort, GroupSession, SetPasswordLink, User
from portal.services import accounts
from portal.services.schedule import ensure_sessions
from tests import factories

NEW_PASSWORD = "maple kettle orbit lantern"


@pytest.fixture
def admin_client(app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.admin)
    return client


@pytest.mark.parametrize("path", ["/admin/program", "/admin/staff", "/admin/cohorts",
                                  "/admin/payers", "/admin/closures", "/admin/log"])
def test_admin_pages_render(admin_client, path):
    resp = admin_client.get(path)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert 'aria-label="Administration"' in resp.get_data(as_text=True)


def _link_from(html: str) -> str:
    import re

    m = re.search(r'value="(http[^"]+/set-password/[^"]+)"', html)
    assert m, "no set-password link on the page"
    return m.group(1).split("portal.test", 1)[-1]


def test_invite_then_set_password_once(app, admin_client, world):
    resp = admin_client.post("/admin/staff", data={
        "name": "Rosa Delgado", "email": "Rosa@Lakeshore.test", "role": "facilitator",
        "credential": "LCSW", "npi": "1487654323"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    assert "shown <strong>only now</strong>" in html
    path = _link_from(html)
    user = db.session.scalar(select(User).where(User.email == "rosa@lakeshore.test"))
    assert user.password_hash == accounts.NO_PASSWORD
    # the link is kept only as a hash
    token = path.rsplit("/", 1)[1]
    assert not db.session.scalar(select(SetPasswordLink).where(SetPasswordLink.token_sha256 == token))

    anon = app.test_client()
    assert anon.get(path).status_code == 200
    weak = anon.post(path, data={"password": "password1234", "password_again": "password1234"})
    assert weak.status_code == 422 and "commonly used" in weak.get_data(as_text=True)
    short = anon.post(path, data={"password": "short one", "password_again": "short one"})
    assert short.status_code == 422 and "at least 12" in short.get_data(as_text=True)
    differ = anon.post(path, data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD + "x"})
    assert differ.status_code == 422 and "not the same" in differ.get_data(as_text=True)
    ok = anon.post(path, data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert ok.status_code == 302
    again = anon.post(path, data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)
    signin = app.test_client()
    page = signin.get("/login").get_data(as_text=True)
    resp = signin.post("/login", data={"email": "rosa@lakeshore.test", "password": NEW_PASSWORD,
                                       "csrf_token": factories.csrf_from(page)})
    assert resp.status_code == 302


def test_expired_link_is_refused(app, world):
    token = accounts.create_link(world.facilitator, purpose="reset", by=world.admin,
                                 now=now_utc() - timedelta(hours=24, minutes=1))
    resp = app.test_client().get(f"/set-password/{token}")
    assert resp.status_code == 410 and "expired" in resp.get_data(as_text=True)
    assert app.test_client().get("/set-password/not-a-token").status_code == 404


def test_duplicate_email_and_bad_npi_write_nothing(admin_client, world):
    before = db.session.scalar(select(db.func.count()).select_from(User))
    dup = admin_client.post("/admin/staff", data={"name": "X", "email": "DANA@lakeshore.test",
                                                  "role": "facilitator"})
    assert dup.status_code == 422 and "duplicate email" in dup.get_data(as_text=True)
    npi = admin_client.post("/admin/staff", data={"name": "Y", "email": "y@lakeshore.test",
                                                  "role": "facilitator", "npi": "1234567890"})
    assert npi.status_code == 422 and "check digit" in npi.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(User)) == before


def test_role_change_and_deactivate_are_logged(admin_client, world):
    uid = world.clinician.id
    assert admin_client.post(f"/admin/staff/{uid}/role", data={"role": "facilitator"}).status_code == 200
    assert admin_client.post(f"/admin/staff/{uid}/active", data={"active": "no"}).status_code == 200
    db.session.expire_all()
    user = db.session.get(User, uid)
    assert user.role == "facilitator" and not user.is_active_user
    log = admin_client.get("/admin/log?object=staff&q=deactivated").get_data(as_text=True)
    assert "priya@lakeshore.test" in log and "active: True" in log and "Sam Admin" in log
    # the only admin cannot deactivate or demote themselves
    me = world.admin.id
    assert admin_client.post(f"/admin/staff/{me}/role", data={"role": "billing"}).status_code == 409


def test_covering_facilitator_sees_the_session_and_the_regular_one_gets_a_named_403(
        app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    today = local_today(world.program.tz)
    login.as_(world.admin)
    resp = client.post(f"/admin/cohorts/{world.am.id}/dates/{today.isoformat()}/cover",
                       data={"facilitator_id": world.facilitator2.id})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    session = db.session.scalar(select(GroupSession).where(GroupSession.cohort_id == world.am.id,
                                                           GroupSession.dos == today))
    login.as_(world.facilitator2)
    assert "AM IOP" in client.get("/today").get_data(as_text=True)
    login.as_(world.facilitator)
    assert "AM IOP" not in client.get("/today").get_data(as_text=True)
    denied = client.get(f"/sessions/{session.id}")
    assert denied.status_code == 403 and "Marcus Greene has AM IOP" in denied.get_data(as_text=True)


def test_cancel_and_move_one_date_and_closed_roster_is_refused(app, admin_client, world):
    today = local_today(world.program.tz)
    base = f"/admin/cohorts/{world.am.id}/dates/{today.isoformat()}"
    no_reason = admin_client.post(f"{base}/cancel", data={"reason": " "})
    assert no_reason.status_code == 422
    moved = admin_client.post(f"{base}/move", data={"start": "10:00", "end": "13:15"})
    assert moved.status_code == 200
    bad = admin_client.post(f"{base}/move", data={"start": "13:00", "end": "10:00"})
    assert bad.status_code == 422 and "must be after" in bad.get_data(as_text=True)
    session = db.session.scalar(select(GroupSession).where(GroupSession.cohort_id == world.am.id,
                                                           GroupSession.dos == today))
    assert session.scheduled_start.astimezone(world.program.tz).strftime("%H:%M") == "10:00"
    assert admin_client.post(f"{base}/cancel", data={"reason": "Snow day"}).status_code == 200
    db.session.expire_all()
    assert db.session.get(GroupSession, session.id).status == "cancelled"
    # a cancelled session is no gap: no roster row, no claim line
    from portal.fact_loader import load_facts

    facts = load_facts(world.program, today, today)
    assert session.id not in {s.session_id for s in facts.sessions}
    assert admin_client.post(f"{base}/reinstate").status_code == 200
    # the PM roster, closed, cannot be changed
    pm = next(s for s in ensure_sessions(world.program, today) if s.cohort_id == world.pm.id)
    factories.sign_and_close(pm, world.facilitator2)
    pm_base = f"/admin/cohorts/{world.pm.id}/dates/{today.isoformat()}"
    for action, data in (("cancel", {"reason": "x"}), ("move", {"start": "9:00", "end": "10:00"}),
                         ("cover", {"facilitator_id": world.facilitator.id})):
        resp = admin_client.post(f"{pm_base}/{action}", data=data)
        assert resp.status_code == 409 and "cannot be changed" in resp.get_data(as_text=True)
    not_a_date = admin_client.post(f"/admin/cohorts/{world.am.id}/dates/1/cancel")
    assert not_a_date.status_code == 404


def test_closure_means_no_session_and_no_gap(app, admin_client, world):
    tomorrow = local_today(world.program.tz) + timedelta(days=1)
    resp = admin_client.post("/admin/closures", data={"date": tomorrow.isoformat(),
                                                      "reason": "Staff training"})
    assert resp.status_code == 302
    assert ensure_sessions(world.program, tomorrow) == []
    dup = admin_client.post("/admin/closures", data={"date": tomorrow.isoformat()})
    assert dup.status_code == 409
    assert admin_client.post("/admin/closures", data={"date": "2026-13-01"}).status_code == 422
    # QA: year 1 was "added" yet never listed; dates outside 2000-2100 are refused, unwritten
    before = db.session.scalar(select(db.func.count()).select_from(Closure))
    old = admin_client.post("/admin/closures", data={"date": "0001-01-01"})
    assert old.status_code == 422 and "2000" in old.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(Closure)) == before
    assert db.session.scalar(select(db.func.count()).select_from(Closure)) == 1


def test_cohort_create_and_overlap_warning(admin_client, world):
    resp = admin_client.post("/admin/cohorts", data={
        "name": "Evening Step-Down", "weekdays": ["2", "4"], "start": "10:00", "end": "12:00",
        "modality": "video", "facilitator_id": str(world.facilitator.id), "capacity": "8"},
        follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Warning" in html and "AM IOP" in html and "Evening Step-Down" in html
    cohort = db.session.scalar(select(Cohort).where(Cohort.name == "Evening Step-Down"))
    assert cohort.weekdays == "2,4" and cohort.duration_minutes == 120
    bad = admin_client.post("/admin/cohorts", data={"name": "Bad", "weekdays": ["8"],
                                                    "start": "10:00", "end": "09:00"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "outside 1..7" in text and "not after the start" in text


def test_payer_spelling_clash_is_refused(admin_client, world):
    payer = world.payers["blueriver_ppo"]
    resp = admin_client.post(f"/admin/payers/{payer.id}", data={
        "name": "BlueRiver PPO", "x12_payer_id": "BLUERIVER",
        "census_aliases": "Blue River\nSunrise Medicaid MCO"})
    assert resp.status_code == 422 and "already names Sunrise Medicaid MCO" in resp.get_data(as_text=True)
    ok = admin_client.post(f"/admin/payers/{payer.id}", data={
        "name": "BlueRiver PPO", "x12_payer_id": "BLUERIVER", "census_aliases": "Blue River"})
    assert ok.status_code == 302
    assert db.session.scalar(select(AdminLogEntry).where(AdminLogEntry.object_type == "payer"))


def test_staff_change_their_own_password(app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.facilitator)
    wrong = client.post("/account/password", data={"current": "nope", "password": NEW_PASSWORD,
                                                   "password_again": NEW_PASSWORD})
    assert wrong.status_code == 422
    ok = client.post("/account/password", data={"current": factories.PASSWORD,
                                                "password": NEW_PASSWORD,
                                                "password_again": NEW_PASSWORD})
    assert ok.status_code == 302
    login.as_(world.facilitator, NEW_PASSWORD)


def test_supervisor_is_set_and_logged(admin_client, world):
    uid = world.facilitator2.id
    resp = admin_client.post(f"/admin/staff/{uid}/supervisor",
                             data={"supervisor_id": str(world.clinician.id)})
    assert resp.status_code == 200
    db.session.expire_all()
    assert db.session.get(User, uid).supervisor_id == world.clinician.id
    own = admin_client.post(f"/admin/staff/{uid}/supervisor", data={"supervisor_id": str(uid)})
    assert own.status_code == 422 and "cannot supervise themselves" in own.get_data(as_text=True)
    log = admin_client.get("/admin/log?q=supervisor").get_data(as_text=True)
    assert "priya@lakeshore.test" in log


def test_closure_cancels_sessions_already_made_for_that_date(admin_client, world):
    tomorrow = local_today(world.program.tz) + timedelta(days=1)
    made = ensure_sessions(world.program, tomorrow)
    assert len(made) == 2
    ids = [s.id for s in made]
    resp = admin_client.post("/admin/closures", data={"date": tomorrow.isoformat(),
                                                      "reason": "Snow"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert {db.session.get(GroupSession, i).status for i in ids} == {"cancelled"}
    from portal.fact_loader import load_facts

    assert not [s for s in load_facts(world.program, tomorrow, tomorrow).sessions
                if s.dos == tomorrow]


def test_overlong_staff_name_is_refused_and_nothing_written(admin_client, world):
    """QA: a 5,000-character name was accepted (PostgreSQL would refuse it with a 500)."""
    before = db.session.scalar(select(db.func.count()).select_from(User))
    resp = admin_client.post("/admin/staff", data={"name": "N" * 5000, "email": "long@x.test",
                                                   "role": "facilitator"})
    assert resp.status_code == 422 and "at most 200 characters" in resp.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(User)) == before


def test_an_overlong_closure_reason_is_refused_not_cut(app, admin_client, world):
    """QA: 5,000 characters were stored as the first 200, silently."""
    assert 'maxlength="200"' in admin_client.get("/admin/closures").get_data(as_text=True)
    day = local_today(world.program.tz) + timedelta(days=4)
    resp = admin_client.post("/admin/closures", data={"date": day.isoformat(), "reason": "r" * 5000})
    assert resp.status_code == 422
    assert "Reason: at most 200 characters (5000 given)" in resp.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(Closure)) == 0
