"""A clinician's step-down in a real browser: from a residential authorization, build the IOP
request on the prefilled form, submit it (its day is held), record the approval, and see that
day's line Ready."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest

from portal.clock import local_today
from portal.extensions import db
from portal.models import Authorization
from portal.services.schedule import ensure_sessions
from tests import factories

pytestmark = pytest.mark.e2e


def test_step_down_from_residential_to_approved_iop(live_server, browser, world, app):
    today = local_today(world.program.tz)
    patient = world.patients[0]
    prior = Authorization(patient=patient, payer=patient.payer, number="RES-4410",
                          level_of_care="3.5", start_date=today - timedelta(days=21),
                          end_date=today - timedelta(days=1), units=21, status="approved")
    db.session.add(prior)
    db.session.commit()
    session = {s.cohort.name: s for s in ensure_sessions(world.program, today)}["AM IOP"]
    factories.sign_and_close(session, world.facilitator)
    # the day's note and treatment plan (issue 11), so only the authorization decides the day
    factories.document_sessions([session], world.clinician)
    patient_id, prior_id, email = patient.id, prior.id, world.clinician.email
    db.session.rollback()  # hold no SQLite lock while the live server answers the browser

    context = browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    base = live_server
    try:
        page.goto(f"{base}/login")
        page.fill("#email", email)
        page.fill("#password", factories.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{base}/readiness/patients/{patient_id}?from={today}&to={today}")
        assert "no H0015 authorization" in page.content()

        page.goto(f"{base}/authorizations/patients/{patient_id}")
        page.click("text=Start step-down to IOP")
        page.wait_for_url(f"{base}/authorizations/{prior_id}/step-down")
        assert page.input_value("input[name=start]") == today.isoformat()
        assert "F10.20" in page.input_value("input[name=diagnoses]")
        for i in range(1, 7):
            page.select_option(f"select[name=rating_{i}]", str(i % 3 + 1))
            page.fill(f"textarea[name=rationale_{i}]", f"Dimension {i}: stable after residential")
        page.click("text=Save draft request")
        page.wait_for_url(f"{base}/authorizations/patients/{patient_id}*")

        for target in ("Submitted", "Pending payer decision"):
            card = page.locator("section.auth-card.state-" + ("draft" if target == "Submitted" else "submitted"))
            card.locator("summary", has_text=f"{target}…").click()
            card.locator(f"button:has-text('Record: {target}')").click()
            page.wait_for_load_state()
        page.goto(f"{base}/readiness/patients/{patient_id}?from={today}&to={today}")
        assert "Held, authorization pending" in page.content()

        page.goto(f"{base}/authorizations/patients/{patient_id}")
        card = page.locator("section.auth-card.state-pending")
        card.locator("summary", has_text="Approved…").filter(has_not_text="Partially").click()
        card.locator("details[open] input[name=number]").fill("IOP-88310")
        card.locator("button:has-text('Record: Approved')").click()
        page.wait_for_load_state()
        assert page.locator("section.auth-card.state-approved h3", has_text="IOP-88310").count() == 1
        assert page.locator("svg.auth-timeline").count() == 1
        if os.environ.get("PORTAL_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["PORTAL_SCREENSHOTS"], "step_down.png"),
                            full_page=True)

        page.goto(f"{base}/readiness/patients/{patient_id}?from={today}&to={today}")
        assert page.locator(".badge-ok", has_text="Ready").count() == 1
    finally:
        context.close()
