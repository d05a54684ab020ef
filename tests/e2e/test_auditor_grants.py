"""Browser walk: the admin grants a new auditor access to one patient (consent, §2.31) on the
grants page; the auditor signs in and sees only that patient, the grant's purpose, legal basis
and expiry, and a verify link per archive entry; the new pages pass axe-core."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.auditors.models import AuditorGrant
from portal.clock import local_today
from portal.extensions import db
from portal.models import User
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.e2e.signing_in import sign_in
from tests.e2e.test_accessibility import audit

pytestmark = pytest.mark.e2e


def test_admin_grants_and_the_auditor_sees_only_the_scope(live_server, browser, world):
    today = local_today(world.program.tz)
    am = next(s for s in ensure_sessions(world.program, today) if s.cohort.name == "AM IOP")
    closed = factories.sign_and_close(am, world.facilitator)
    seq = closed.document.entry_seq
    garcia = world.patients[2]  # BlueRiver: the demo payer auditor's grant does not reach her
    reviewer = User(name="Robin Reviewer", email="robin@blueriver.test", role="auditor",
                    password_hash=factories.password_hash())
    db.session.add(reviewer)
    db.session.commit()
    reviewer_id, reviewer_email, admin_email = reviewer.id, reviewer.email, world.admin.email
    garcia_mrn, alvarez_id = garcia.mrn, world.patients[0].id
    db.session.rollback()  # hold no SQLite read lock while the live portal writes
    problems = {}
    context = browser.new_context(viewport={"width": 1180, "height": 820})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, live_server, admin_email)
    page.goto(f"{live_server}/auditors/grants")
    if found := audit(page, live_server):
        problems["grants"] = found
    # bad input first: consent without saying what it covers -> message, nothing written
    page.select_option("#auditor_id", str(reviewer_id))
    page.fill("#mrns", garcia_mrn)
    page.fill("#purpose", "Records request for a disputed claim")
    page.check("input[name=legal_basis][value=consent_2_31]")
    page.fill("#recipient", "BlueRiver PPO Special Investigations")
    page.fill("#expires_on", (today + timedelta(days=14)).isoformat())
    page.click(".grant-form button[type=submit]")
    page.wait_for_selector("#grant-errors")
    assert "Consent scope" in page.inner_text("#grant-errors")
    if found := audit(page, live_server):
        problems["grants (errors)"] = found
    page.fill("#consent_scope", "Attendance records for the disputed dates of service")
    page.click(".grant-form button[type=submit]")
    page.wait_for_selector("text=Access granted to Robin Reviewer")
    db.session.expire_all()
    assert db.session.scalar(select(AuditorGrant).where(AuditorGrant.auditor_id == reviewer_id))
    db.session.rollback()
    context.close()

    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, live_server, reviewer_email)
    page.goto(f"{live_server}/readiness/")
    body = page.inner_text("main")
    assert "García-López" in body and "Alvarez" not in body and "Nguyen" not in body
    assert "Written patient consent (42 CFR §2.31)" in body and "Expires" in body
    if found := audit(page, live_server):
        problems["auditor readiness"] = found
    page.click("text=García-López")
    page.wait_for_load_state()
    assert "Records request for a disputed claim" in page.inner_text("main")
    page.click(f"a[href='/verify/{seq}']")
    page.wait_for_load_state()
    assert page.url.endswith(f"/verify/{seq}") and "Archive entry" in page.inner_text("h1")
    resp = page.goto(f"{live_server}/readiness/patients/{alvarez_id}")
    assert resp.status == 404
    context.close()

    # the admin sees what the reviewer viewed
    context = browser.new_context(viewport={"width": 1180, "height": 820})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, live_server, admin_email)
    page.goto(f"{live_server}/auditors/{reviewer_id}/views")
    log = page.inner_text("main")
    assert f"/verify/{seq}" in log and "out of scope" in log
    if found := audit(page, live_server):
        problems["viewed"] = found
    context.close()
    assert not problems, problems
