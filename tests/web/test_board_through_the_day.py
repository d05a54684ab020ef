"""The board through a real day: groups that have not met are Upcoming, the day's deadline
follows its last group, and gaps only an addendum can fix are labelled so."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from portal.clock import local_to_utc, local_today
from portal.services import roster as svc
from portal.services.reconciliation import build_day, deadline_utc
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.web.test_roster_warnings import sign_all


def test_groups_that_have_not_met_are_upcoming_and_the_deadline_follows_the_last(app, world):
    tz = world.program.tz
    day = local_today(tz)
    ensure_sessions(world.program, day)
    morning = local_to_utc(day, time(6, 50), tz)
    board = build_day(world.program, day, app.extensions["rulebook"], now=morning)
    assert {r.session.cohort_name: r.state for r in board.sessions} == {
        "AM IOP": "upcoming", "PM IOP": "upcoming"}
    assert {r.verdict for r in board.lines} == {"upcoming"}
    assert not any(r.overdue for r in board.lines)
    assert board.deadline == local_to_utc(day, time(21, 30), tz)  # PM ends 8:30 PM, + 60 min
    midday = local_to_utc(day, time(10, 0), tz)
    board = build_day(world.program, day, app.extensions["rulebook"], now=midday)
    assert {r.session.cohort_name: r.state for r in board.sessions} == {
        "AM IOP": "in_session", "PM IOP": "upcoming"}


def test_deadline_is_configurable_and_never_before_five(app):
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/Chicago")
    day = datetime(2026, 12, 2).date()
    noon_end = local_to_utc(day, time(12, 0), tz)
    assert deadline_utc(day, tz, noon_end, 60) == local_to_utc(day, time(17, 0), tz)
    assert deadline_utc(day, tz, local_to_utc(day, time(20, 30), tz), 120) == \
        local_to_utc(day, time(22, 30), tz)


def test_board_page_shows_upcoming_not_session_problems(client, login, world):
    tomorrow = local_today(world.program.tz) + timedelta(days=1)
    ensure_sessions(world.program, tomorrow)
    login.as_(world.billing)
    html = client.get(f"/billing/?date={tomorrow.isoformat()}").get_data(as_text=True)
    assert html.count(">Upcoming</span>") >= 2 + 6  # two sessions, six patients
    assert "roster is not closed and archived" not in html
    assert "No service" not in html


def test_a_closed_roster_under_the_minimum_needs_an_addendum_not_billing(client, login, world, app):
    from datetime import date

    from portal.extensions import db
    from tests.web.test_billing_board import authorize

    day = local_today(world.program.tz)
    authorize(world, world.patients[0], "AUTH-1", start=date(2026, 1, 1), end=date(2027, 12, 31))
    db.session.commit()
    am = next(s for s in ensure_sessions(world.program, day) if s.cohort.name == "AM IOP")
    sign_all(am, absent={"100234"})
    svc.set_session_times(am.id, start="09:05", end="12:00")
    from portal.demo.signature_art import squiggle_png
    svc.close_roster(am.id, facilitator=world.facilitator, typed_name="Dana Whitfield",
                     attested=True, signature_png=squiggle_png(), max_png_bytes=512 * 1024,
                     now=am.scheduled_end + timedelta(minutes=5))
    late = local_to_utc(day, time(23, 0), world.program.tz)
    board = build_day(world.program, day, app.extensions["rulebook"], now=late)
    marisol = next(r for r in board.lines if r.patient.mrn == "100231")
    assert marisol.verdict == "blocked" and [r.code for r in marisol.addendum] == ["under_daily_minimum"]
    assert marisol.only_addendum and not marisol.overdue and not marisol.due_today
    keegan = next(r for r in board.lines if r.patient.mrn == "100232")  # no authorization
    assert keegan.addendum and keegan.due_today and keegan.overdue
    login.as_(world.billing)
    html = client.get("/billing/").get_data(as_text=True)
    assert "Addendum needed" in html and "no same-day deadline" in html
    assert "addendum: Dana Whitfield" in html
