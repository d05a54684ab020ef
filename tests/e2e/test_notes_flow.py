"""Issue 11 in a real browser: closing a roster lands the facilitator on the session's notes
queue; a clinician writes the group section, writes and signs two notes, and reviews a plan
with the patient's signature on the tablet's signing dialog."""
from __future__ import annotations

from datetime import timedelta

import pytest

from portal.clock import local_today, now_utc
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import EncounterNote, TreatmentPlan
from portal.services import plans as plan_svc
from portal.services import roster as roster_svc
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.e2e.test_tablet_roster import sign_on_pad

pytestmark = pytest.mark.e2e

ROW = {"dimension": "5", "text": "Drinks after work", "goal": "Sustained sobriety",
       "objective": "Name three triggers", "target_date": "2027-03-01"}
IV = {"modality": "IOP group", "frequency": "3x/week", "staff": "Group facilitator"}


def _login(page, base, email):
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _logout(page):
    page.click("form.signout button[type=submit]")
    page.wait_for_load_state()


def _write_note(page, text):
    page.select_option("#objective_key", "O1")
    page.select_option("#participation", "active")
    page.select_option("#affect", "appropriate")
    page.select_option("#mental_status", "alert_oriented")
    page.select_option("#risk", "none")
    page.select_option("#progress", "progressing")
    page.fill("#individual_text", text)
    page.click("text=Save draft")
    page.wait_for_selector("#sign")
    if page.locator("#author_reason").count():  # not the group's facilitator: say why you sign
        page.fill("#author_reason", "Co-led this group with the facilitator; ran the check-ins.")
    page.check("#sign input[name=attest]")
    page.click("#sign button[type=submit]")


def test_close_then_notes_then_plan_review(live_server, browser, world, app):
    base = live_server
    tz = world.program.tz
    alvarez, obrien = world.patients[:2]
    earlier = now_utc() - timedelta(hours=1)
    for i, p in enumerate((alvarez, obrien)):
        plan = plan_svc.create_plan(p.id, author=world.clinician, rows=[ROW], interventions=[IV],
                                    asam_edition="3", now=earlier)
        plan_svc.sign_plan_patient(plan.id, png=squiggle_png(seed=i), max_png_bytes=512 * 1024,
                                   now=earlier)
        plan_svc.sign_plan_staff(plan.id, user=world.clinician, attested=True, now=earlier)
    session = next(s for s in ensure_sessions(world.program, local_today(tz))
                   if s.cohort_id == world.am.id)
    for i, e in enumerate(list(session.entries)):
        if e.patient_id in (alvarez.id, obrien.id):
            roster_svc.sign_attendance(session.id, e.id, png=squiggle_png(seed=10 + i),
                                       strokes=None, user_agent="pytest", max_png_bytes=512 * 1024)
        else:
            roster_svc.mark_attendance(session.id, e.id, status="absent")
    roster_svc.set_session_times(session.id,
                                 start=session.scheduled_start.astimezone(tz).strftime("%H:%M"),
                                 end=session.scheduled_end.astimezone(tz).strftime("%H:%M"))
    sid, alvarez_id, obrien_id = session.id, alvarez.id, obrien.id
    fac_email, fac_name, clin_email = world.facilitator.email, world.facilitator.name, world.clinician.email
    db.session.rollback()  # no write lock held while the live server works

    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        # The facilitator closes the roster and lands on the notes queue.
        _login(page, base, fac_email)
        page.goto(f"{base}/sessions/{sid}")
        page.check("input[name=attest]")
        page.fill("#typed_name", fac_name)
        sign_on_pad(page, "#close-roster canvas.pad")
        page.click("#close-roster [data-pad-submit]")
        page.wait_for_url(f"{base}/notes/sessions/{sid}")
        assert "Group section" in page.inner_text("main")
        _logout(page)

        # The clinician writes the group section and two notes.
        _login(page, base, clin_email)
        page.goto(f"{base}/notes/mine")
        page.goto(f"{base}/notes/sessions/{sid}")
        page.fill("#topic", "Coping with cravings")
        page.select_option("#group_modality", "relapse_prevention")
        page.fill("#shared_text", "The group mapped high-risk situations and practiced urge surfing.")
        page.click("#group-section button[type=submit]")
        page.wait_for_selector("text=Group section saved")
        page.goto(f"{base}/notes/sessions/{sid}/patients/{alvarez_id}")
        _write_note(page, "Named work stress as her strongest trigger; practiced urge surfing.")
        page.wait_for_url(f"{base}/notes/sessions/{sid}")
        page.goto(f"{base}/notes/sessions/{sid}/patients/{obrien_id}")
        _write_note(page, "Quiet at first; later described two days abstinent and a plan to call his sponsor.")
        page.wait_for_url(f"{base}/notes/sessions/{sid}")
        assert page.locator("text=Signed").count() >= 2

        # A plan review: a new version, signed by the patient on the tablet, then the clinician.
        page.goto(f"{base}/plans/patients/{alvarez_id}")
        page.fill("#objective_0", "Name five triggers and a coping skill for each")
        page.click("text=Save review")
        page.wait_for_selector("text=Patient signs on the tablet")
        page.click("text=Patient signs on the tablet")
        page.wait_for_selector(".sign-overlay canvas.pad")
        sign_on_pad(page, ".sign-overlay canvas.pad")
        page.click(".sign-overlay [data-pad-submit]")
        page.wait_for_selector("text=The patient signed the plan")
        page.check("#signatures input[name=attest]")
        page.click("#signatures button[type=submit]")
        try:
            page.wait_for_selector("#signatures", state="detached")
        except Exception:
            page.screenshot(path="/tmp/issue11-fail.png", full_page=True)
            raise AssertionError(page.inner_text("main"))
        versions = " ".join(page.inner_text("ul.versions").split())
        assert "Version 2 (review) · in effect" in versions, versions
        page.screenshot(path="/tmp/issue11-plan-review.png", full_page=True)
    finally:
        context.close()

    db.session.expire_all()
    notes = db.session.scalars(db.select(EncounterNote).where(EncounterNote.session_id == sid)).all()
    assert sorted(n.status for n in notes) == ["signed", "signed"] and all(n.document_id for n in notes)
    v2 = db.session.scalar(db.select(TreatmentPlan).where(TreatmentPlan.patient_id == alvarez_id,
                                                          TreatmentPlan.version == 2))
    assert v2.status == "signed" and v2.patient_signature_sha256 and v2.document_id
    assert [o["key"] for o in v2.objectives] == ["O1"]
