"""Auditor grants end to end through the real pages: every auditor route in and out of scope
(200/404, never 403), expired and revoked grants refused, the no-access page, the read-only walk
over the URL map (no write route, no GET that changes state), the admin's grant/revoke pages
with bad input (nothing written), billing only when the program allows it, and the per-auditor
access log."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from portal.access_control import PUBLIC, policy_of
from portal.auditors.models import AuditorGrant
from portal.clock import local_today
from portal.extensions import db
from portal.models import AccessLogEntry, AdminLogEntry
from portal.services.schedule import ensure_sessions
from tests import factories

NOW = datetime.now(timezone.utc)


@pytest.fixture
def closed_am(world):
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    return factories.sign_and_close(session, world.facilitator)


def _urls(world, closed_am, patient):
    doc = closed_am.document
    return [
        "/readiness/",
        f"/readiness/patients/{patient.id}",
        f"/documents/{doc.id}/patients/{patient.id}/extract.pdf",
        f"/verify/{doc.entry_seq}",
        f"/authorizations/patients/{patient.id}",
        f"/no-shows/patients/{patient.id}",
    ]


def test_in_scope_200_out_of_scope_404(client, login, world, closed_am):
    alvarez, garcia = world.patients[0], world.patients[2]
    login.as_(world.auditor)
    for url in _urls(world, closed_am, alvarez):
        assert client.get(url).status_code == 200, url
    for url in _urls(world, closed_am, garcia)[1:3] + _urls(world, closed_am, garcia)[4:]:
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert "no such record within your access" in resp.get_data(as_text=True)
    # the whole mixed-payer roster: 404 too (it names García and Nguyen)
    assert client.get(f"/documents/{closed_am.document_id}.pdf").status_code == 404
    # a document that does not exist reads exactly like one out of scope
    missing = client.get("/documents/999999/patients/1/extract.pdf").get_data(as_text=True)
    hidden = client.get(f"/documents/{closed_am.document_id}/patients/{garcia.id}/extract.pdf")
    assert re.sub(r"\s+", " ", missing) == re.sub(r"\s+", " ", hidden.get_data(as_text=True))


def test_readiness_page_shows_the_grant_and_links_each_entry_to_verify(client, login, world,
                                                                       closed_am):
    alvarez = world.patients[0]
    login.as_(world.auditor)
    html = client.get(f"/readiness/patients/{alvarez.id}").get_data(as_text=True)
    seq = closed_am.document.entry_seq
    assert f'href="/verify/{seq}"' in html
    assert "Post-payment review of IOP claims" in html
    assert "Audit and evaluation (42 CFR §2.53)" in html and "Expires" in html
    program = client.get("/readiness/").get_data(as_text=True)
    assert "Audit and evaluation (42 CFR §2.53)" in program


def test_dos_range_limits_every_page(client, login, world, closed_am):
    """A grant for Alvarez for dates of service before today: today's roster, its extract and
    its entry are 404; the readiness page stays inside the range; whole-history pages 404."""
    alvarez = world.patients[0]
    world.auditor_grant.revoked_at = NOW - timedelta(seconds=1)
    today = local_today(world.program.tz)
    factories.grant(world.auditor, payer=None, patients=[alvarez],
                    dos_from=today - timedelta(days=20), dos_to=today - timedelta(days=1))
    db.session.commit()
    login.as_(world.auditor)
    doc = closed_am.document
    assert client.get(f"/documents/{doc.id}/patients/{alvarez.id}/extract.pdf").status_code == 404
    assert client.get(f"/verify/{doc.entry_seq}").status_code == 404
    assert client.get(f"/authorizations/patients/{alvarez.id}").status_code == 404
    assert client.get(f"/no-shows/patients/{alvarez.id}").status_code == 404
    page = client.get(f"/readiness/patients/{alvarez.id}")
    assert page.status_code == 200
    assert f"/verify/{doc.entry_seq}" not in page.get_data(as_text=True)
    outside = client.get(f"/readiness/patients/{alvarez.id}?from={today}&to={today}")
    assert outside.status_code == 404
    wider = client.get(f"/readiness/patients/{alvarez.id}?from={today - timedelta(days=40)}&to={today}")
    assert wider.status_code == 200 and "your access covers" in wider.get_data(as_text=True)
    # the program page counts no date of service outside the range
    program = client.get(f"/readiness/?from={today}&to={today}").get_data(as_text=True)
    assert "0 dates of service ready" in program


@pytest.mark.parametrize("ended", ["expired", "revoked"])
def test_expired_and_revoked_grants_are_refused(client, login, world, closed_am, ended):
    alvarez = world.patients[0]
    if ended == "expired":
        world.auditor_grant.expires_at = NOW - timedelta(seconds=1)
    else:
        world.auditor_grant.revoked_at = NOW - timedelta(seconds=1)
    db.session.commit()
    login.as_(world.auditor)
    for url in _urls(world, closed_am, alvarez)[1:]:
        assert client.get(url).status_code == 404, url
    home = client.get("/readiness/").get_data(as_text=True)
    assert "Your access has ended" in home and "Alvarez" not in home


def test_an_auditor_never_granted_is_told_so(client, login, world):
    db.session.delete(world.auditor_grant)
    db.session.commit()
    login.as_(world.auditor)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "No access has been granted to your account yet" in page and "Alvarez" not in page


def _snapshot() -> dict:
    """Every table's rows except the access log (which every request writes, by design)."""
    out = {}
    for table in db.metadata.sorted_tables:
        if table.name == "access_log":
            continue
        out[table.name] = sorted(map(repr, db.session.execute(select(table)).all()))
    out["audit_entries"] = db.session.execute(text("SELECT count(*) FROM audit_entries")).scalar()
    return out


def _changed(before: dict, after: dict) -> dict:
    """Per table whose rows changed: the rows added (nothing may be removed or altered)."""
    out = {}
    for name in before:
        if before[name] != after[name]:
            if isinstance(before[name], list):
                assert set(before[name]) <= set(after[name]), f"{name}: rows changed or removed"
                out[name] = sorted(set(after[name]) - set(before[name]))
            else:
                out[name] = after[name]
    return out


def test_auditor_walk_over_the_url_map_changes_nothing(app, client, login, world, closed_am,
                                                       run_jobs):
    """Read-only, proven, with one named exception: every route admitting auditors is GET-only
    (or sign-out), except the endpoints in ``AUDITOR_WRITES``, which is exactly the auditor's
    audit-file request. Opening every GET (ids pointing at real, in-scope records) leaves every
    table as it was; every other write route refuses an auditor; the exception, posted for a
    covered patient, writes one job and (once built) one disclosure, and nothing else; posted
    for a patient out of scope, nothing at all."""
    from portal.access_control import AUDITOR_WRITES, admits_auditor_write
    from portal.models import BackgroundJob, Disclosure
    from portal.services.checkpoints import checkpoint_now

    app.config["WTF_CSRF_ENABLED"] = False
    alvarez, garcia = world.patients[0], world.patients[2]
    ids = {"patient_id": alvarez.id, "document_id": closed_am.document_id,
           "seq": closed_am.document.entry_seq}
    auditor_routes, exceptions = [], {}
    for rule in app.url_map.iter_rules():
        policy = policy_of(app, rule.endpoint)
        if rule.endpoint == "static" or policy is PUBLIC or "auditor" not in (policy or ()):
            continue
        view = app.view_functions[rule.endpoint]
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if getattr(view, "session_only", False):
            assert rule.endpoint == "auth.logout"
            continue
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(ids.get(m.group(1), 1)), rule.rule)
        if admits_auditor_write(app, rule.endpoint):
            assert methods == {"GET", "POST"}, (rule.rule, methods)
            exceptions[rule.endpoint] = url
        else:
            assert methods == {"GET"}, (rule.rule, methods)
        auditor_routes.append(url)  # the exception's GET (its form) writes nothing either
    # The exception is named, and it is the only one.
    assert set(exceptions) == set(AUDITOR_WRITES) == {"audit_files.auditor_request"}
    assert policy_of(app, "audit_files.auditor_request") == frozenset({"auditor"})
    assert len(auditor_routes) >= 8
    login.as_(world.auditor)
    checkpoint_now()  # a signed head already: an audit file signs no new one over the same log
    db.session.expire_all()
    before = _snapshot()
    logged = db.session.scalar(select(func.count()).select_from(AccessLogEntry))
    for url in auditor_routes:
        resp = client.get(url)
        assert resp.status_code in (200, 204, 302, 404), (url, resp.status_code)
    db.session.expire_all()
    assert _snapshot() == before
    # ... and every one of those views was logged
    assert db.session.scalar(select(func.count()).select_from(AccessLogEntry)) >= logged + len(auditor_routes)
    # every write route but the named exception refuses an auditor before its view runs
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        if policy_of(app, rule.endpoint) is PUBLIC or getattr(view, "session_only", False):
            continue  # sign-in and sign-out: the user's own session, no record
        if rule.endpoint in exceptions:
            continue  # below
        for method in (rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
            url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(ids.get(m.group(1), 1)), rule.rule)
            assert client.open(url, method=method).status_code == 403, (method, url)
    db.session.expire_all()
    assert _snapshot() == before

    # The exception, out of scope (García is not a Sunrise member): 404, nothing written.
    today = str(local_today(world.program.tz))
    form = {"dos_from": today, "dos_to": today, "recipient": "Someone else",
            "purpose": "Anything", "legal_basis": "consent_2_31"}
    out = client.post(f"/auditor/patients/{garcia.id}/audit-file", data=form)
    assert out.status_code == 404
    db.session.expire_all()
    assert _snapshot() == before
    # In scope: one job, then one disclosure, with the grant's recipient, purpose and legal
    # basis (the form's other fields are ignored); nothing else changes.
    resp = client.post(exceptions["audit_files.auditor_request"], data=form)
    assert resp.status_code == 303 and "/jobs/" in resp.headers["Location"], resp.get_data(as_text=True)
    assert run_jobs() == 1
    db.session.expire_all()
    changed = _changed(before, _snapshot())
    assert set(changed) == {"background_jobs", "disclosures"}, changed
    assert len(changed["background_jobs"]) == 1 and len(changed["disclosures"]) == 1
    job = db.session.scalar(select(BackgroundJob))
    assert job.user_id == world.auditor.id and job.state == "done", (job.state, job.error)
    disclosure = db.session.scalar(select(Disclosure))
    grant = world.auditor_grant
    assert (disclosure.patient_id, disclosure.requester_id) == (alvarez.id, world.auditor.id)
    assert disclosure.recipient == grant.recipient == "Sunrise Medicaid MCO SIU"
    assert disclosure.purpose == grant.purpose
    assert disclosure.legal_basis == "Audit and evaluation (42 CFR 2.53)"
    assert "Someone else" not in repr(changed) and "Anything" not in repr(changed)


# ----------------------------------------------------------------------------------------
# Admin pages
# ----------------------------------------------------------------------------------------

def _form(world, **over):
    tomorrow = local_today(world.program.tz) + timedelta(days=30)
    form = {"auditor_id": str(world.auditor.id), "payer_id": "", "mrns": "100233",
            "dos_from": "2026-11-01", "dos_to": "2026-11-30",
            "purpose": "Records request for claim 4471", "legal_basis": "consent_2_31",
            "consent_scope": "Attendance records and group notes, November 2026",
            "recipient": "BlueRiver PPO Special Investigations", "expires_on": tomorrow.isoformat(),
            "expires_time": "17:00"}
    form.update(over)
    return form


def _grants() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditorGrant))


def test_admin_grants_and_revokes_with_the_admin_log(app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.admin)
    assert client.get("/auditors/grants").status_code == 200
    resp = client.post("/auditors/grants", data=_form(world))
    assert resp.status_code == 303
    g = db.session.scalar(select(AuditorGrant).order_by(AuditorGrant.id.desc()))
    assert [p.mrn for p in g.patients] == ["100233"] and g.legal_basis == "consent_2_31"
    assert g.expires_at.astimezone(world.program.tz).strftime("%H:%M") == "17:00"
    assert g.granted_by_id == world.admin.id
    logs = db.session.scalars(select(AdminLogEntry).where(
        AdminLogEntry.object_type == "auditor grant")).all()
    assert [e.action for e in logs] == ["granted"] and "consent" in logs[0].after.lower()
    page = client.get("/auditors/grants").get_data(as_text=True)
    assert "Written patient consent (42 CFR §2.31)" in page and "MRN 100233" in page
    # revoke: a reason is required
    assert client.post(f"/auditors/grants/{g.id}/revoke", data={"reason": " "}).status_code == 422
    db.session.expire_all()
    assert g.revoked_at is None
    assert client.post(f"/auditors/grants/{g.id}/revoke",
                       data={"reason": "Audit closed early"}).status_code == 303
    db.session.expire_all()
    assert g.revoked_at is not None and g.revoked_by_id == world.admin.id
    assert client.post(f"/auditors/grants/{g.id}/revoke",
                       data={"reason": "again"}).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(AdminLogEntry).where(
        AdminLogEntry.object_type == "auditor grant", AdminLogEntry.action == "revoked")) == 1
    assert "Audit closed early" in client.get("/auditors/grants").get_data(as_text=True)


def test_the_same_grant_twice_is_refused_and_the_empty_states_read_well(app, client, login, world):
    """QA: resubmitting the form made grants 2-5 with the same scope; the empty state read
    "No not started yet grants."."""
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.admin)
    page = client.get("/auditors/grants").get_data(as_text=True)
    assert "No grant is waiting to start." in page and "No not started" not in page
    assert client.post("/auditors/grants", data=_form(world)).status_code == 303
    first = db.session.scalar(select(AuditorGrant.id).order_by(AuditorGrant.id.desc()))
    before = _grants()
    again = client.post("/auditors/grants", data=_form(world))
    assert again.status_code == 409
    assert f"Grant #{first} already gives" in again.get_data(as_text=True)
    assert _grants() == before
    # something changed (a later expiry) is a new grant
    later = str(date.fromisoformat(_form(world)["expires_on"]) + timedelta(days=7))
    assert client.post("/auditors/grants", data=_form(world, expires_on=later)).status_code == 303
    assert _grants() == before + 1


BAD = [
    ("expiry in the past", {"expires_on": "2020-01-01"}, "must be in the future"),
    ("DOS range reversed", {"dos_from": "2026-11-30", "dos_to": "2026-11-01"},
     "first date is after the last date"),
    ("consent without its scope", {"consent_scope": ""}, "Consent scope"),
    ("unknown MRN", {"mrns": "100233 999999"}, "no patient has MRN 999999"),
    ("not a member of the payer", {"payer_id": "PAYER"}, "is not a Sunrise Medicaid MCO member"),
    ("no scope at all", {"mrns": "", "payer_id": ""}, "choose a payer"),
    ("no expiry", {"expires_on": ""}, "Expiry: enter"),
    ("bad expiry date", {"expires_on": "2026-02-30"}, "not a date on the calendar"),
    ("no purpose", {"purpose": ""}, "Purpose"),
    ("no recipient", {"recipient": "  "}, "Recipient"),
    ("unknown legal basis", {"legal_basis": "verbal"}, "Legal basis"),
    ("no auditor chosen", {"auditor_id": ""}, "choose the auditor"),
    ("start after the expiry", {"starts_on": "AFTER_EXPIRY"}, "must start before it expires"),
    ("start on the expiry, at the same time", {"starts_on": "EXPIRY", "starts_time": "17:00"},
     "must start before it expires"),
    ("bad start date", {"starts_on": "2026-13-01"}, "Start:"),
    ("start time without a date", {"starts_time": "09:00"}, "enter the date access starts"),
]


@pytest.mark.parametrize("case, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_grant_input_writes_nothing(app, client, login, world, case, change, message):
    app.config["WTF_CSRF_ENABLED"] = False
    if change.get("payer_id") == "PAYER":
        change = {"payer_id": str(world.payers["sunrise_medicaid_mco"].id)}
    expiry = _form(world)["expires_on"]
    if change.get("starts_on") == "AFTER_EXPIRY":
        change = {"starts_on": str(date.fromisoformat(expiry) + timedelta(days=1))}
    elif change.get("starts_on") == "EXPIRY":
        change = {**change, "starts_on": expiry}
    login.as_(world.admin)
    before, logs = _grants(), db.session.scalar(select(func.count()).select_from(AdminLogEntry))
    resp = client.post("/auditors/grants", data=_form(world, **change))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "nothing was saved" in html and message in html.replace("&#39;", "'"), html[-3000:]
    assert _grants() == before
    assert db.session.scalar(select(func.count()).select_from(AdminLogEntry)) == logs


def test_a_grant_with_a_later_start(app, client, login, world, closed_am):
    """Granted today to start in three days: listed as not started, with its start; the auditor
    sees when it starts and no record until then; from its start, the records."""
    app.config["WTF_CSRF_ENABLED"] = False
    tz = world.program.tz
    start = local_today(tz) + timedelta(days=3)
    world.auditor_grant.revoked_at = NOW - timedelta(seconds=1)  # only the new grant counts
    db.session.commit()
    login.as_(world.admin)
    resp = client.post("/auditors/grants", data=_form(world, starts_on=str(start),
                                                      starts_time="08:00"))
    assert resp.status_code == 303, resp.get_data(as_text=True)[-2000:]
    g = db.session.scalar(select(AuditorGrant).order_by(AuditorGrant.id.desc()))
    assert g.starts_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") == f"{start} 08:00"
    log = db.session.scalar(select(AdminLogEntry).where(AdminLogEntry.object_type == "auditor grant",
                                                        AdminLogEntry.object_id == g.id))
    assert "starts: " in log.after
    page = client.get("/auditors/grants").get_data(as_text=True)
    pending = page[page.index('id="h-pending"'):page.index('id="h-expired"')]
    assert f'id="grant-{g.id}"' in pending and start.strftime("%b %-d") in pending
    assert "Access from" in page
    garcia = world.patients[2]
    login.as_(world.auditor)
    home = client.get("/readiness/").get_data(as_text=True)
    assert "Your access has not started" in home and "Starts" in home
    assert start.strftime("%b %-d") in home and "García" not in home
    assert client.get(f"/readiness/patients/{garcia.id}").status_code == 404
    # From the start on (moved to the past here): the records, and the panel says since when.
    from flask import g as flask_g

    g.starts_at = NOW - timedelta(minutes=5)
    db.session.commit()
    flask_g.pop("_auditor_scope", None)  # the test client shares the test's app context
    page = client.get(f"/readiness/patients/{garcia.id}")
    assert page.status_code == 200 and "Access from" in page.get_data(as_text=True)


def test_the_auditor_sees_a_grant_starting_later_beside_the_active_one(client, login, world):
    later = factories.grant(world.auditor, patients=[world.patients[2]],
                            starts_at=NOW + timedelta(days=5))
    db.session.commit()
    login.as_(world.auditor)
    html = client.get("/readiness/").get_data(as_text=True)
    assert "Starting later" in html and "MRN 100233" in html
    assert (later.starts_at.astimezone(world.program.tz).strftime("%b %-d")) in html
    assert "García" not in html  # not in scope before the start


def test_only_auditor_accounts_get_grants(app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.admin)
    resp = client.post("/auditors/grants", data=_form(world, auditor_id=str(world.billing.id)))
    assert resp.status_code == 422 and "is not an auditor" in resp.get_data(as_text=True)


def test_billing_grants_only_when_the_program_allows(app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.billing)
    assert client.get("/auditors/grants").status_code == 403
    assert client.post("/auditors/grants", data=_form(world)).status_code == 403
    assert "Auditor grants" not in client.get("/readiness/").get_data(as_text=True)
    login.as_(world.admin)
    html = client.get("/admin/program").get_data(as_text=True)
    assert 'name="billing_grants_auditors"' in html
    assert client.post("/auditors/setting", data={"billing_grants_auditors": "yes"}).status_code == 303
    assert db.session.scalar(select(AdminLogEntry).where(
        AdminLogEntry.after.like("%billing may grant auditor access: True%"))) is not None
    login.as_(world.billing)
    assert client.get("/auditors/grants").status_code == 200
    assert client.post("/auditors/grants", data=_form(world)).status_code == 303
    assert client.post("/auditors/accounts", data={"name": "X", "email": "x@y.test"}).status_code == 403
    login.as_(world.admin)
    client.post("/auditors/setting", data={})
    login.as_(world.billing)
    assert client.get("/auditors/grants").status_code == 403


def test_admin_creates_an_auditor_account_with_an_invite_link(app, client, login, world):
    app.config["WTF_CSRF_ENABLED"] = False
    login.as_(world.admin)
    resp = client.post("/auditors/accounts", data={"name": "Robin Reviewer",
                                                   "email": "robin@state.test"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "/accounts/set-password/" in html.replace("&#x2F;", "/") \
        or "set-password" in html
    from portal.models import User

    robin = db.session.scalar(select(User).where(User.email == "robin@state.test"))
    assert robin.role == "auditor"
    dup = client.post("/auditors/accounts", data={"name": "R", "email": "robin@state.test"})
    assert dup.status_code == 422 and "already belongs" in dup.get_data(as_text=True)


def test_admin_sees_what_each_auditor_viewed(app, client, login, world, closed_am):
    alvarez, garcia = world.patients[0], world.patients[2]
    doc = closed_am.document
    login.as_(world.auditor)
    client.get(f"/readiness/patients/{alvarez.id}")
    assert client.get(f"/documents/{doc.id}/patients/{alvarez.id}/extract.pdf").status_code == 200
    client.get(f"/readiness/patients/{garcia.id}")
    login.as_(world.admin)
    html = client.get(f"/auditors/{world.auditor.id}/views").get_data(as_text=True)
    assert f"/documents/{doc.id}/patients/{alvarez.id}/extract.pdf" in html
    assert "Download" in html and "MRN 100231" in html
    assert f"/readiness/patients/{garcia.id}" in html and "out of scope" in html
    assert client.get(f"/auditors/{world.billing.id}/views").status_code == 404
    # dates shown with times: an entry from an earlier day carries its date
    entry = db.session.scalar(select(AccessLogEntry).where(AccessLogEntry.user_id == world.auditor.id))
    entry.at = NOW - timedelta(days=3)
    db.session.commit()
    again = client.get(f"/auditors/{world.auditor.id}/views").get_data(as_text=True)
    assert (NOW - timedelta(days=3)).astimezone(world.program.tz).strftime("%b %-d") in again
