"""A clinic's first day in a real browser: the admin creates a cohort and invites a
facilitator; the facilitator sets a password through the one-time link, sees the session on
Today and closes its roster."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from portal.clock import local_today
from portal.extensions import db
from portal.models import Cohort, Enrollment, GroupSession, Patient
from tests import factories
from tests.e2e.test_tablet_roster import sign_on_pad

pytestmark = pytest.mark.e2e
PASSWORD = "lantern orchard copper tide"


def test_admin_sets_up_a_cohort_and_a_facilitator_who_closes_its_roster(
        live_server, browser, world, runner):
    base = live_server
    weekday = local_today(world.program.tz).isoweekday()
    patient_id = world.patients[0].id
    admin_email = world.admin.email
    # SQLite takes the write lock at BEGIN: hold no transaction while the server works.
    db.session.rollback()

    admin_ctx = browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True)
    page = admin_ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login")
    page.fill("#email", admin_email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.click("nav[aria-label=Main] >> text=Admin")
    page.wait_for_url(f"{base}/admin/program")

    # Invite a facilitator: the link is shown once.
    page.click("nav[aria-label=Administration] >> text=Staff")
    page.fill("#new-name", "Rosa Delgado")
    page.fill("#new-email", "rosa@lakeshore.test")
    page.select_option("#new-role", "facilitator")
    page.fill("#new-credential", "LCSW")
    page.fill("#new-npi", "1952478307")
    page.click("text=Create and show invite link")
    page.wait_for_selector("#set-password-link")
    link = page.input_value("#set-password-link")
    assert "/set-password/" in link
    assert "Invited (no password yet)" in page.inner_text("table")

    # Create a cohort that meets today, led by her.
    page.click("nav[aria-label=Administration] >> text=Cohorts")
    page.fill("#c-name", "Evening Step-Down")
    page.check(f"input[name=weekdays][value='{weekday}']")
    page.fill("#c-start", "09:00")
    page.fill("#c-end", "12:00")
    page.select_option("#c-facilitator", label="Rosa Delgado, LCSW")
    page.click("text=Create cohort")
    page.wait_for_selector("h1:has-text('Evening Step-Down')")
    assert "Cohort Evening Step-Down created" in page.inner_text("#flash")
    page.click("nav[aria-label=Administration] >> text=Admin log")
    assert "rosa@lakeshore.test" in page.inner_text("table.admin-log")
    admin_ctx.close()

    # The census would enroll patients; here one patient joins the new group.
    cohort = db.session.scalar(select(Cohort).where(Cohort.name == "Evening Step-Down"))
    db.session.add(Enrollment(patient_id=patient_id, cohort_id=cohort.id,
                              start_date=date(2026, 10, 1)))
    db.session.commit()

    tablet = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
    page = tablet.new_page()
    page.set_default_timeout(15_000)
    page.goto(link)
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("text=Set password")
    page.wait_for_url(f"{base}/login")
    assert "Your password is set" in page.inner_text("#flash")
    # The link works once.
    again = page.goto(link)
    assert again.status == 410
    page.goto(f"{base}/login")
    page.fill("#email", "rosa@lakeshore.test")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/today")
    page.get_by_role("link", name="Open roster for Evening Step-Down").click()
    page.wait_for_url(f"{base}/sessions/*")
    session_id = int(page.url.rsplit("/", 1)[1])
    entry_id = db.session.get(GroupSession, session_id).entries[0].id
    db.session.rollback()
    row = page.locator(f"#entry-{entry_id}")
    row.locator("button.btn-sign").click()
    page.wait_for_selector(".sign-overlay canvas.pad")
    sign_on_pad(page, ".sign-overlay canvas.pad")
    page.click(".sign-overlay [data-pad-submit]")
    page.wait_for_selector(".sign-overlay", state="detached")
    page.click("#session-times button[type=submit]")
    page.wait_for_selector("#close-status >> text=Ready to close")
    page.check("input[name=attest]")
    page.fill("#typed_name", "Rosa Delgado")
    sign_on_pad(page, "#close-roster canvas.pad")
    page.click("#close-roster [data-pad-submit]")
    page.wait_for_selector("text=Roster closed")
    tablet.close()

    db.session.rollback()
    session = db.session.get(GroupSession, session_id)
    assert session.is_closed and session.facilitator.email == "rosa@lakeshore.test"
    assert db.session.get(Patient, patient_id).mrn == "100231"
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
