"""The tablet through a real day, in Chromium: a roster closed on another tablet, warnings
before closing, unsaved rows, a keyboard-only close, rotation while signing, Back while the
signing dialog is open, and the board's Upcoming state."""
from __future__ import annotations

from datetime import timedelta

import pytest

from portal.clock import local_today
from portal.extensions import db
from portal.models import GroupSession
from portal.services import roster as svc
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.e2e.test_tablet_roster import login, sign_on_pad
from tests.web.test_roster_warnings import sign_all

pytestmark = pytest.mark.e2e


class Roster:
    """Plain ids of today's AM roster: the test must not touch ORM objects (which would open a
    transaction, and on SQLite take the write lock) while the live server answers."""

    def __init__(self, session):
        self.id = session.id
        self.rows = {e.patient.mrn: e.id for e in session.entries}
        self.email = session.facilitator.email
        self.name = session.facilitator.name


@pytest.fixture
def am(world):
    sessions = ensure_sessions(world.program, local_today(world.program.tz))
    roster = Roster(next(s for s in sessions if s.cohort.name == "AM IOP"))
    db.session.rollback()
    return roster


def done(fn, *args, **kw):
    """Run a service call as the "other device", then release the database."""
    try:
        return fn(*args, **kw)
    finally:
        db.session.rollback()


def ink_pixels(page, selector):
    """How many pixels of the canvas carry ink."""
    return page.evaluate("""sel => {
        const c = document.querySelector(sel);
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""", selector)


def test_a_roster_closed_on_another_tablet_switches_this_one_to_the_closed_view(
        live_server, tablet, world, am):
    page, base = tablet, live_server
    entry_id = am.rows["100231"]
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    assert page.inner_text(".roster-head .badge") == "Open"
    done(lambda: factories.sign_and_close(svc.get_session(am.id), world.facilitator) and None)
    # This tablet still shows the open roster; the facilitator marks a row.
    page.locator(f"#entry-{entry_id} select[name=status]").select_option("cancelled")
    page.wait_for_url(f"{base}/sessions/{am.id}?closed=tap")
    note = page.locator(".stale-note")
    assert "not saved" in note.inner_text() and note.is_visible()
    assert page.evaluate("document.activeElement.classList.contains('stale-note')")
    assert page.inner_text(".roster-head .badge") == "Closed"
    assert page.locator("#close-roster").count() == 0


def test_minutes_under_the_minimum_are_warned_before_closing(live_server, tablet, world, am):
    page, base = tablet, live_server
    done(lambda: sign_all(svc.get_session(am.id), absent={"100234"}))
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    assert page.locator("#session-times .unsaved-note").first.is_visible()  # schedule shown, not saved
    page.fill("#session-times input[name=start]", "09:05")
    page.fill("#session-times input[name=end]", "12:00")
    assert page.locator("#session-times [data-unsaved-note]").is_visible()
    page.click("#session-times button[type=submit]")
    page.wait_for_selector("#session-times .saved-state")
    warning = page.locator("#close-status [data-preclose]")
    warning.wait_for()
    text = warning.inner_text()
    assert "Billing will flag" in text and "175 min" in text and "H0015 needs 180 min" in text
    assert "Marisol A." in text and "Lan N." not in text
    assert "Ready to close" in page.inner_text("#close-status")  # never blocks closing


def test_unsaved_rows_are_marked_autosaved_when_possible_and_leaving_asks(
        live_server, tablet, world, am):
    page, base = tablet, live_server
    rows = am.rows
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    # A status that needs no time saves itself.
    page.locator(f"#entry-{rows['100234']} select[name=status]").select_option("absent")
    page.wait_for_function(
        f"document.querySelector('#entry-{rows['100234']}').classList.contains('status-absent')")
    # "Late arrival" needs the arrival time: the row is marked unsaved until it has one.
    row = page.locator(f"#entry-{rows['100233']}")
    row.locator("select[name=status]").select_option("late")
    assert row.locator("[data-unsaved-note]").is_visible()
    assert "is-unsaved" in row.get_attribute("class")
    assert page.evaluate("document.activeElement.name") == "arrival"
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))
    page.click("a.brand", no_wait_after=True)
    for _ in range(50):  # the dialog arrives asynchronously (slower on a loaded machine)
        if dialogs:
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(200)
    assert dialogs == ["beforeunload"] and f"/sessions/{am.id}" in page.url
    # Typing the time saves the row (on change), and the mark goes away.
    row.locator("input[name=arrival]").fill("09:20")
    row.locator("input[name=arrival]").dispatch_event("change")
    page.wait_for_function(
        f"document.querySelector('#entry-{rows['100233']}').classList.contains('status-late')")
    assert not page.locator(f"#entry-{rows['100233']} [data-unsaved-note]").is_visible()
    status = done(lambda: {e.patient.mrn: e.status
                           for e in db.session.get(GroupSession, am.id).entries})
    assert status["100233"] == "late"


def test_close_by_keyboard_with_typed_name_and_password(live_server, tablet, world, am):
    page, base = tablet, live_server
    done(lambda: sign_all(svc.get_session(am.id)))
    done(svc.set_session_times, am.id, start="09:00", end="12:05")
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    close_button = page.locator("#close-roster [data-pad-submit]")
    assert close_button.is_disabled() and page.locator("#close-why").is_visible()
    assert "typed name and password" in page.inner_text("#close-why")
    page.focus("#close-roster input[name=attest]")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "typed_name"
    page.keyboard.type(am.name)
    page.keyboard.press("Tab")  # the signature method radio group
    page.keyboard.press("ArrowDown")  # -> typed name and password
    assert page.evaluate("document.activeElement.value") == "password"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "close-password"
    page.keyboard.type(factories.PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.hasAttribute('data-pad-submit')")
    assert not page.locator("#close-why").is_visible()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Roster closed")
    db.session.expire_all()
    state = done(lambda: (lambda s: (s.is_closed, s.facilitator_signature_sha256))(
        db.session.get(GroupSession, am.id)))
    assert state == (True, None)


def test_rotation_keeps_the_strokes_and_back_closes_the_dialog(live_server, tablet, world, am):
    page, base = tablet, live_server
    rows = am.rows
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    roster_url = page.url
    page.locator(f"#entry-{rows['100231']} button.btn-sign").click()
    page.wait_for_selector(".sign-overlay canvas.pad")
    sign_on_pad(page, ".sign-overlay canvas.pad", box=(0.1, 0.3, 0.5, 0.6))
    before = ink_pixels(page, ".sign-overlay canvas.pad")
    assert before > 0
    page.set_viewport_size({"width": 1180, "height": 820})  # rotate to landscape
    page.wait_for_timeout(250)
    after = ink_pixels(page, ".sign-overlay canvas.pad")
    assert after > 0.5 * before  # redrawn, at the new size
    submit = page.locator(".sign-overlay [data-pad-submit]")
    assert submit.is_enabled()
    # The redrawn strokes sit in the same place relative to the (now wider) pad.
    box = page.evaluate("""() => {
        const c = document.querySelector('.sign-overlay canvas.pad');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let minX = c.width, maxX = 0;
        for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++)
          if (d[(y * c.width + x) * 4 + 3] > 0) { if (x < minX) minX = x; if (x > maxX) maxX = x; }
        return [minX / c.width, maxX / c.width]; }""")
    assert 0.05 < box[0] < 0.15 and 0.4 < box[1] < 0.56, box
    submit.click()
    page.wait_for_selector(".sign-overlay", state="detached")
    assert "Signed" in page.locator(f"#entry-{rows['100231']}").inner_text()
    # Back while the dialog is open closes the dialog and stays on the roster (the next dialog
    # is opened at once, while the last one's history entry is still being dropped).
    page.locator(f"#entry-{rows['100232']} button.btn-sign").click()
    page.wait_for_selector(".sign-overlay canvas.pad")
    page.wait_for_function("history.state && history.state.signingDialog")
    page.go_back()
    page.wait_for_selector(".sign-overlay", state="detached")
    assert page.url == roster_url
    assert page.locator("#session-times").is_visible()
    # ... and the next Back leaves the roster, as Back should.
    page.go_back()
    page.wait_for_url(f"{base}/today")


def test_board_shows_groups_that_have_not_met_as_upcoming(live_server, tablet, world):
    page, base = tablet, live_server
    tomorrow, email = done(lambda: (local_today(world.program.tz) + timedelta(days=1),
                                    world.billing.email))
    done(lambda: ensure_sessions(world.program, tomorrow) and None)
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{base}/billing/?date={tomorrow.isoformat()}")
    sessions = page.locator("table.board-sessions tbody tr")
    assert sessions.count() == 2
    for i in range(2):
        assert "Upcoming" in sessions.nth(i).inner_text()
        assert "not closed" not in sessions.nth(i).inner_text()
    verdicts = page.locator("table.board-lines tbody tr td:nth-child(5)").all_inner_texts()
    assert verdicts and all(v.strip().startswith("Upcoming") for v in verdicts)


def test_left_early_waits_for_its_time_and_then_saves_without_an_error(live_server, tablet, world, am):
    """QA (#16): choosing "Left early" saved at once, before a time was entered, and showed a
    422 twice. The row waits, marked unsaved, with the focus on the time; typing it saves."""
    page, base = tablet, live_server
    entry_id = am.rows["100232"]
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    posts = []
    page.on("response", lambda r: posts.append(r.status) if r.request.method == "POST" else None)
    row = page.locator(f"#entry-{entry_id}")
    row.locator("select[name=status]").select_option("left_early")
    page.wait_for_timeout(800)  # any autosave would have gone out by now
    assert posts == [], posts
    note = row.locator("[data-unsaved-note]")
    assert note.is_visible() and note.inner_text().startswith("Enter the time they left to save")
    assert row.locator(".field-error").count() == 0
    assert page.evaluate("document.activeElement.name") == "departure"
    # Typing the time the way a person does (segment by segment) saves the row once, cleanly.
    row.locator("input[name=departure]").click()
    page.keyboard.type("1100AM")
    page.wait_for_function(
        f"document.querySelector('#entry-{entry_id}').classList.contains('status-left_early')")
    page.wait_for_timeout(500)
    assert posts and all(s == 200 for s in posts), posts
    assert row.locator(".field-error").count() == 0
    assert not row.locator("[data-unsaved-note]").is_visible()
    status = done(lambda: {e.patient.mrn: (e.status, e.departure is not None)
                           for e in db.session.get(GroupSession, am.id).entries})
    assert status["100232"] == ("left_early", True)


def test_a_waking_tablet_finds_its_roster_closed_elsewhere_and_shows_the_closed_view(
        live_server, tablet, world, am):
    """The tablet slept with the roster open; meanwhile it was closed on another device. On
    waking (visibilitychange to visible -> the ``portal:wake`` event on ``data-wake-check``),
    the page asks the server at once and switches to the closed, read-only view, before any
    tap (not only on the 60-second poll)."""
    page, base = tablet, live_server
    login(page, base, am.email)
    page.goto(f"{base}/sessions/{am.id}")
    assert page.inner_text(".roster-head .badge") == "Open"
    page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    done(lambda: factories.sign_and_close(svc.get_session(am.id), world.facilitator) and None)
    page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "visible"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_url(f"{base}/sessions/{am.id}*", wait_until="load")
    page.wait_for_function("document.querySelector('.roster-head .badge').textContent.trim() === 'Closed'",
                           timeout=10_000)
    assert page.locator("#close-roster").count() == 0
    assert page.locator("select[name=status]").count() == 0  # read-only: no controls left
