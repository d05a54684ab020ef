"""A patient signs the no-show policy on the tablet; the acknowledgment is archived and shows
on the patient's page; a clinician records a phoned-in cancellation from the same page."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AbsenceNotice, PolicyAcknowledgment
from tests import factories
from tests.e2e.test_tablet_roster import sign_on_pad

pytestmark = pytest.mark.e2e


def test_patient_signs_policy_and_clinician_records_a_cancellation(live_server, tablet, world):
    page, base = tablet, live_server
    factories.make_policy(world.program)
    patient_id, email = world.patients[3].id, world.clinician.email
    db.session.rollback()  # hold no SQLite lock while the live server works
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/today")
    page.goto(f"{base}/no-shows/patients/{patient_id}")
    page.click("text=Sign on the tablet")
    page.wait_for_url(f"{base}/no-shows/patients/{patient_id}/acknowledge")
    sign_on_pad(page, "canvas.pad")
    page.click("button[data-pad-submit]")
    page.wait_for_selector("text=archived as entry")
    page.click("text=Back to the patient")
    page.wait_for_selector("text=acknowledged")
    # Phoned-in cancellation for the first listed group, notice now (defaults filled in).
    page.click("text=Record cancellation")
    page.wait_for_selector("text=Recorded.")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PolicyAcknowledgment)) == 1
    assert db.session.scalar(select(func.count()).select_from(AbsenceNotice)) == 1
