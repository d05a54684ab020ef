"""Browser walk (issue 14): an auditor signs in, opens a patient in scope, asks for the audit
file (a reversed range first: the message, nothing requested), waits on its progress bar,
downloads the zip, and the standalone verifier bundled in it passes it, with that patient's
extracts of the group rosters and no other patient's name; the auditor pages pass axe-core."""
from __future__ import annotations

import io
import zipfile
from datetime import time, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.clock import local_to_utc, local_today
from portal.extensions import db
from portal.models import BackgroundJob, Disclosure
from portal.services.checkpoints import public_key
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.audit_files.test_build import run_verifier
from tests.e2e.signing_in import sign_in
from tests.e2e.test_accessibility import audit

pytestmark = pytest.mark.e2e


def test_auditor_downloads_and_verifies_an_audit_file(live_server, job_worker, browser, world,
                                                      tmp_path):
    tz = world.program.tz
    today = local_today(tz)
    for back in (1, 0):  # two closed AM rosters: Alvarez's extracts, three others on each
        day = today - timedelta(days=back)
        am = next(s for s in ensure_sessions(world.program, day) if s.cohort.name == "AM IOP")
        factories.sign_and_close(am, world.facilitator, now=local_to_utc(day, time(11, 30), tz))
    db.session.commit()
    alvarez = world.patients[0]
    others = [p for p in world.patients + world.pm_patients if p.id != alvarez.id]
    other_names = [p.legal_last for p in others] + [p.mrn for p in others]
    email, patient_id, mrn = world.auditor.email, alvarez.id, alvarez.mrn
    key = public_key()
    db.session.rollback()  # no open SQLite transaction while the live portal and worker write

    problems = {}
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True,
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, live_server, email)

    page.goto(f"{live_server}/readiness/")
    if found := audit(page, live_server):
        problems["readiness"] = found
    assert page.locator(f"a[href='/auditor/patients/{patient_id}/audit-file']").count() == 1
    page.click("main th a:has-text('Alvarez')")
    page.wait_for_url(f"**/readiness/patients/{patient_id}*")
    if found := audit(page, live_server):
        problems["patient"] = found
    page.click("main a.btn:has-text('Download audit file')")
    page.wait_for_url(f"**/auditor/patients/{patient_id}/audit-file")
    assert page.locator("input[name=recipient]").count() == 0  # the grant's, not the auditor's
    assert "Sunrise Medicaid MCO SIU" in page.inner_text("main")
    if found := audit(page, live_server):
        problems["request form"] = found

    # A reversed range: the message in place (htmx), nothing requested.
    page.fill("#dos_from", str(today))
    page.fill("#dos_to", str(today - timedelta(days=1)))
    page.click("#audit-file-panel button[type=submit]")
    page.wait_for_selector("#audit-file-errors")
    assert "before it starts" in page.inner_text("#audit-file-errors")
    if found := audit(page, live_server):
        problems["request form (error)"] = found
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(BackgroundJob)) == 0
    db.session.rollback()

    page.fill("#dos_from", str(today - timedelta(days=1)))
    page.fill("#dos_to", str(today))
    page.click("#audit-file-panel button[type=submit]")
    # The panel becomes the job's progress component, which polls until the file is ready.
    page.wait_for_selector("#audit-file-panel progress, #audit-file-panel a[href$='/download']")
    link = page.locator("#audit-file-panel a:has-text('Download audit-file-')")
    link.wait_for(timeout=180_000)
    assert "recorded as disclosure" in page.inner_text("#audit-file-panel")
    if found := audit(page, live_server):
        problems["request form (done)"] = found
    with page.expect_download() as dl:
        link.click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    # The job's own page (its address is the download link's without /download) says the same.
    page.goto(live_server + link.get_attribute("href").removesuffix("/download"))
    assert page.locator("h1").inner_text() == "Audit file"
    assert "recorded as disclosure" in page.inner_text("main")
    if found := audit(page, live_server):
        problems["job page"] = found
    context.close()

    run = run_verifier(path, key, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RESULT: all checks passed" in run.stdout and "2 of 2 extracts" in run.stdout, run.stdout
    with zipfile.ZipFile(path) as z:
        extracts = [n for n in z.namelist() if n.startswith("extracts/")]
        assert len(extracts) == 2
        texts = ["\n".join(pg.extract_text() or "" for pg in PdfReader(io.BytesIO(z.read(n))).pages)
                 for n in extracts + ["audit-file.pdf"]]
    for text in texts[:2]:
        assert "Alvarez" in text and mrn in text
    everything = "\n".join(texts)
    assert not [n for n in other_names if n in everything]
    db.session.expire_all()
    d = db.session.scalar(select(Disclosure))
    assert d.patient_id == patient_id and d.recipient == "Sunrise Medicaid MCO SIU"
    assert d.requester_name == "Avery Auditor (auditor)"
    assert not problems, problems


def test_a_refusal_from_the_error_handler_shows_on_the_request_form(live_server, browser, world):
    """QA: the form keeps only #audit-file-panel of its answer (hx-select), so a message the
    general error handler sends to the page's flash region (a 422 from the invisible-character
    guard, a 429 job limit, a 404) was filtered out and the form just sat there."""
    patient_id = world.patients[0].id
    email = world.billing.email
    db.session.rollback()
    context = browser.new_context(viewport={"width": 820, "height": 1180})
    page = context.new_page()
    sign_in(page, live_server, email)
    page.goto(f"{live_server}/patients/{patient_id}/audit-file")
    page.fill("#recipient", "Sunrise\u202e MCO")
    page.click("#audit-file-panel button[type=submit]")
    page.wait_for_selector("#flash [role=alert]")
    assert "invisible character U+202E" in page.inner_text("#flash")
    assert page.locator("#audit-file-panel form").count() == 1  # the form is still there
    context.close()
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(BackgroundJob)) == 0
