"""A facilitator's day in a real browser: sign on the tablet, mark an absence, close the roster,
download the stamped PDF, and check the archive verifies."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from pypdf import PdfReader

from portal.clock import local_today
from portal.extensions import db
from portal.models import AttendanceEntry
from portal.services.schedule import ensure_sessions
from tests import factories

pytestmark = pytest.mark.e2e


def sign_on_pad(page, canvas_selector: str, box=(0.2, 0.35, 0.8, 0.65)):
    """Draw a zig-zag inside ``box`` (fractions of the canvas) with mouse events; returns the
    drawn box in CSS pixels relative to the canvas."""
    canvas = page.locator(canvas_selector)
    canvas.scroll_into_view_if_needed()
    bb = canvas.bounding_box()
    x0, y0 = bb["x"] + bb["width"] * box[0], bb["y"] + bb["height"] * box[1]
    x1, y1 = bb["x"] + bb["width"] * box[2], bb["y"] + bb["height"] * box[3]
    page.mouse.move(x0, y0)
    page.mouse.down()
    steps = 12
    for i in range(1, steps + 1):
        x = x0 + (x1 - x0) * i / steps
        y = y1 if i % 2 else y0
        page.mouse.move(x, y, steps=4)
    # Finish with a short stroke back inside the box: the pad draws smoothed curves that trail
    # the pointer's very last point, so every extreme is reached mid-stroke.
    page.mouse.move(x1 - (x1 - x0) * 0.15, (y0 + y1) / 2, steps=6)
    page.mouse.up()
    return (x0 - bb["x"], y0 - bb["y"], x1 - bb["x"], y1 - bb["y"])


def login(page, base, email):
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/today")


def test_facilitator_signs_marks_closes_and_downloads(live_server, tablet, world, runner, app):
    page, base = tablet, live_server
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    entries = {e.patient.mrn: e.id for e in session.entries}
    session_id, email, name = session.id, world.facilitator.email, world.facilitator.name
    # SQLite transactions take the write lock at BEGIN: the test must not hold one while the
    # live server handles the browser's requests.
    db.session.rollback()
    login(page, base, email)
    page.get_by_role("link", name="Open roster for AM IOP").click()
    page.wait_for_url(f"{base}/sessions/{session_id}")
    dpr = page.evaluate("window.devicePixelRatio")

    drawn = None
    for mrn in ("100231", "100232"):
        row = page.locator(f"#entry-{entries[mrn]}")
        row.locator("button.btn-sign").click()
        page.wait_for_selector(".sign-overlay canvas.pad")
        submit = page.locator(".sign-overlay [data-pad-submit]")
        assert submit.is_disabled()  # an empty pad cannot be submitted
        drawn = sign_on_pad(page, ".sign-overlay canvas.pad")
        assert submit.is_enabled()
        submit.click()
        page.wait_for_selector(".sign-overlay", state="detached")
        assert "Signed" in row.inner_text()
        # the next patient never sees the previous signature: no image in the page at all
        assert page.locator("#main img").count() == 0

    # The stored PNG's ink lies where the finger went (CSS px x devicePixelRatio).
    db.session.expire_all()
    png = db.session.get(AttendanceEntry, entries["100232"]).signature_png
    left, top, right, bottom = Image.open(io.BytesIO(png)).getchannel("A").getbbox()
    assert abs(left / dpr - drawn[0]) < 6 and abs(right / dpr - drawn[2]) < 6
    assert abs(top / dpr - drawn[1]) < 6 and abs(bottom / dpr - drawn[3]) < 6
    db.session.rollback()

    # A rotation while signing keeps the strokes (redrawn at the new size; see
    # tests/e2e/test_tablet_day.py), so the pad can still be submitted.
    page.locator(f"#entry-{entries['100233']} button.btn-sign").click()
    page.wait_for_selector(".sign-overlay canvas.pad")
    sign_on_pad(page, ".sign-overlay canvas.pad")
    page.set_viewport_size({"width": 1180, "height": 820})
    page.wait_for_timeout(200)
    assert page.locator(".sign-overlay [data-pad-submit]").is_enabled()
    # Keyboard: focus is in the dialog; Escape leaves it and focus returns to the row's button.
    assert page.evaluate("document.activeElement.closest('.sign-overlay') !== null")
    for _ in range(6):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('.sign-overlay') !== null")
    page.keyboard.press("Escape")
    page.wait_for_selector(".sign-overlay", state="detached")
    assert page.evaluate(
        "document.activeElement.closest('tr') && document.activeElement.closest('tr').id") \
        == f"entry-{entries['100233']}"

    # Mark an absence and a cancellation.
    for mrn, status in (("100233", "absent"), ("100234", "cancelled")):
        row = page.locator(f"#entry-{entries[mrn]}")
        row.locator("select[name=status]").select_option(status)
        row.locator("button[type=submit]").click()
        page.wait_for_selector(f"#entry-{entries[mrn]}.status-{status}")

    page.click("#session-times button[type=submit]")
    page.wait_for_selector("#session-times .ok")
    page.wait_for_selector("#close-status >> text=Ready to close")

    page.check("input[name=attest]")
    page.fill("#typed_name", name)
    sign_on_pad(page, "#close-roster canvas.pad")
    page.click("#close-roster [data-pad-submit]")
    page.wait_for_selector("text=Roster closed")

    with page.expect_download() as dl:
        page.click("text=Download the roster PDF")
    pdf = PdfReader(dl.value.path())
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    for expected in ("Marisol Alvarez", "Keegan O'Brien", "No-show", "Cancelled",
                     "Dana Whitfield", "audit #1", "Facilitator attestation"):
        assert expected in text, expected

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output


def test_blank_signature_from_a_tampered_client_is_refused_inline(live_server, tablet, world):
    page, base = tablet, live_server
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    entry_id, session_id, email = session.entries[0].id, session.id, world.facilitator.email
    db.session.rollback()
    login(page, base, email)
    page.goto(f"{base}/sessions/{session_id}")
    page.locator(f"#entry-{entry_id} button.btn-sign").click()
    page.wait_for_selector(".sign-overlay canvas.pad")
    # Bypass the client check: draw a single dot and force-enable the button.
    canvas = page.locator(".sign-overlay canvas.pad").bounding_box()
    page.mouse.click(canvas["x"] + 50, canvas["y"] + 50)
    page.evaluate("document.querySelector('.sign-overlay [data-pad-submit]').disabled = false")
    page.click(".sign-overlay [data-pad-submit]")
    page.wait_for_selector(".sign-overlay .field-error")
    assert "blank" in page.inner_text(".sign-overlay .field-error").lower()
    assert "Signed" not in page.locator(f"#entry-{entry_id}").inner_text()
