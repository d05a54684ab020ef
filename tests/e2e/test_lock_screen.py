"""The shared-tablet lock screen in a real browser: after the idle time the roster is covered
(no patient names on screen); the same facilitator unlocks and finds the row they were typing
in as they left it, and saving it works with the new session's token."""
from __future__ import annotations


import pytest

from portal.clock import local_today
from portal.extensions import db
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.e2e.test_tablet_roster import login

pytestmark = pytest.mark.e2e

IDLE = 10  # seconds (the lock script's minimum)


@pytest.fixture
def short_idle(app):
    app.config["SESSION_IDLE_SECONDS"] = {r: IDLE for r in ("facilitator", "clinician", "billing",
                                                            "admin", "auditor")}


def test_idle_tablet_locks_and_the_same_user_carries_on(live_server, browser, world, app, short_idle):
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    entry = session.entries[0]
    late = (session.scheduled_start.astimezone(world.program.tz).replace(minute=20)).strftime("%H:%M")
    session_id, entry_id, email = session.id, entry.id, world.facilitator.email
    db.session.rollback()
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True,
                                  bypass_csp=False)
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    try:
        login(page, live_server, email)
        page.goto(f"{live_server}/sessions/{session_id}")
        row = page.locator(f"#entry-{entry_id}")
        row.locator("select").select_option("late")
        row.locator("input[name=arrival]").fill(late)  # typed, not saved
        assert page.locator("#lock-screen").is_hidden()
        page.wait_for_selector("#lock-screen:not([hidden])", timeout=(IDLE + 15) * 1000)
        # Nothing behind the lock is visible or reachable.
        assert page.locator("main").get_attribute("inert") is not None
        for x, y in ((10, 10), (410, 300), (410, 900), (800, 1170)):  # the whole screen
            assert page.evaluate(f"document.elementFromPoint({x}, {y}).closest('#lock-screen') !== null")
        page.fill("#lock-password", "wrong password")
        page.click("#lock-form button[type=submit]")
        page.wait_for_selector("#lock-error .field-error")
        assert page.locator("#lock-screen").is_visible()
        page.fill("#lock-password", factories.PASSWORD)
        page.click("#lock-form button[type=submit]")
        page.wait_for_selector("#lock-screen[hidden]", state="attached")
        # The unsaved row is as it was; saving it works with the new session's token.
        assert row.locator("input[name=arrival]").input_value() == late
        row.locator("button[type=submit]").click()
        page.wait_for_selector(f"#entry-{entry_id}.status-late")
        assert violations == []  # the portal's own scripts and styles all obey the CSP
    finally:
        context.close()
    db.session.rollback()
    from portal.models import AttendanceEntry
    saved = db.session.get(AttendanceEntry, entry_id)
    assert saved.status == "late"


def test_someone_else_at_the_locked_tablet_starts_clean(live_server, browser, world, app, short_idle):
    first_email, first_name = world.facilitator.email, world.facilitator.name
    other_email, other_name = world.facilitator2.email, world.facilitator2.name
    # SQLite: the test must hold no transaction (BEGIN IMMEDIATE takes the write lock) while
    # the live server answers the browser.
    db.session.rollback()
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True,
                                  bypass_csp=False)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        login(page, live_server, first_email)
        page.wait_for_selector("#lock-screen:not([hidden])", timeout=(IDLE + 15) * 1000)
        page.click("text=Sign in as someone else")
        page.wait_for_url(f"{live_server}/login")
        assert "Locked" not in page.content()
        page.fill("#email", other_email)
        page.fill("#password", factories.PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/today")
        assert other_name in page.content()
        assert first_name not in page.locator("header").inner_text()
    finally:
        context.close()
