"""Warnings before it is too late, stale tablets, plausible times, keyboard signatures: the
tablet flow through the test client and the real services."""
from __future__ import annotations

from datetime import date, timedelta
from io import BytesIO

import pytest
from pypdf import PdfReader

from portal.clock import local_today
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import Enrollment, GroupSession
from portal.rules.time_plausibility import TimeMargins
from portal.services import roster as svc
from portal.services.errors import Conflict, Invalid
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.web.test_roster_flow import htmx_post, open_roster

MAX = 512 * 1024


def sessions_today(world):
    return {s.cohort.name: s for s in ensure_sessions(world.program, local_today(world.program.tz))}


def sign(session, entry, now=None):
    return svc.sign_attendance(session.id, entry.id, png=squiggle_png(seed=entry.id), strokes=None,
                               user_agent="pytest", max_png_bytes=MAX, now=now)


def sign_all(session, absent=(), now=None):
    for e in session.entries:
        if e.patient.mrn in absent:
            svc.mark_attendance(session.id, e.id, status="absent")
        else:
            sign(session, e, now=now)


def add_patients(world, cohort, n, payer="sunrise_medicaid_mco"):
    for i in range(n):
        p = factories.make_patient(f"2009{i:02d}", f"Extra{i:02d}", f"Zimmer{i:02d}",
                                   world.payers[payer], member_id=f"SMC99{i:04d}")
        db.session.add(Enrollment(patient=p, cohort=cohort, start_date=date(2026, 10, 1)))
    db.session.commit()


# ----------------------------------------------------------------------------------------
# Pre-close warnings: the same claim rules billing uses
# ----------------------------------------------------------------------------------------

def test_minutes_under_the_minimum_are_warned_per_patient_before_closing(client, login, world):
    am = sessions_today(world)["AM IOP"]
    sign_all(am, absent={"100234"})
    svc.set_session_times(am.id, start="09:05", end="12:00")  # 175 minutes
    login.as_(world.facilitator)
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    assert "Ready to close" in html  # warnings never block care
    warn = html[html.index("data-preclose"):]
    assert "Billing will flag" in warn and "H0015 needs 180 min" in warn and "175 min" in warn
    # per patient, by roster name, in roster order (Alvarez, García-López, O'Brien)
    names = warn[:warn.index("</ul>")]
    assert names.index("Marisol A.") < names.index("José G.") < names.index("Keegan O.")
    assert "Lan N." not in names  # absent: nothing to bill, nothing to warn
    # fixing the times clears the warning
    svc.set_session_times(am.id, start="09:00", end="12:00")
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    assert "data-preclose" not in html


def test_group_over_the_payers_limit_is_warned(client, login, world):
    add_patients(world, world.am, 9)
    am = sessions_today(world)["AM IOP"]
    assert len(am.entries) == 13
    sign_all(am)
    svc.set_session_times(am.id, start="09:00", end="12:10")
    login.as_(world.facilitator)
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    warn = html[html.index("data-preclose"):]
    assert "13 attended, payer limit is 12" in warn
    assert "Marisol A." in warn and "Extra00 Z." in warn
    assert "José G." not in warn[:warn.index("</li>")]  # BlueRiver allows 15


def test_telehealth_coding_is_warned_and_the_oob_checklist_carries_it(client, login, world):
    am = sessions_today(world)["AM IOP"]
    sign_all(am)
    login.as_(world.facilitator)
    csrf = open_roster(client, am)
    resp = htmx_post(client, f"/sessions/{am.id}/times",
                     {"start": "09:00", "end": "12:05", "modality": "audio_only",
                      "patient_location": "home"}, csrf)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="close-status" hx-swap-oob="true"' in html
    assert "does not cover audio-only telehealth" in html
    line = next(li for li in html.split("<li") if "audio-only" in li)
    assert "José G." in line and "Marisol A." not in line  # Sunrise covers audio-only


def test_in_person_hides_the_telehealth_location(client, login, world):
    am = sessions_today(world)["AM IOP"]
    login.as_(world.facilitator)
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    assert "Patients were (telehealth)" not in html
    assert "<label data-telehealth-only hidden>Where the patients were" in html
    assert "Not saved yet: these are the scheduled times" in html


def test_checklist_names_follow_the_roster_order_and_end_with_one_period(world):
    am = sessions_today(world)["AM IOP"]
    for e in am.entries:
        svc.mark_attendance(am.id, e.id, status="present")
    problems = svc.closing_problems(svc.get_session(am.id))
    unsigned = next(p for p in problems if p.startswith("Marked as attending"))
    assert ".." not in unsigned
    assert unsigned.index("Marisol A.") < unsigned.index("José G.") < unsigned.index(
        "Lan N.") < unsigned.index("Keegan O.")  # Alvarez, García-López, Nguyen, O'Brien


# ----------------------------------------------------------------------------------------
# A roster closed on another tablet
# ----------------------------------------------------------------------------------------

def test_a_tap_on_a_roster_closed_elsewhere_switches_to_the_closed_view(client, login, world):
    am = sessions_today(world)["AM IOP"]
    entry_id, session_id = am.entries[0].id, am.id
    login.as_(world.facilitator)
    csrf = open_roster(client, am)
    assert client.get(f"/sessions/{session_id}/state", headers={"HX-Request": "true"}).status_code == 204
    factories.sign_and_close(am, world.facilitator)  # the other tablet
    for url, data in ((f"/sessions/{session_id}/entries/{entry_id}/mark", {"status": "present"}),
                      (f"/sessions/{session_id}/times", {"start": "09:00", "end": "12:00"}),
                      (f"/sessions/{session_id}/close", {"attest": "yes"})):
        resp = htmx_post(client, url, data, csrf)
        assert resp.status_code == 409
        assert resp.headers["HX-Redirect"] == f"/sessions/{session_id}?closed=tap"
        assert "can no longer change" in resp.get_data(as_text=True)
    panel = client.get(f"/sessions/{session_id}/entries/{entry_id}/sign", headers={"HX-Request": "true"})
    assert panel.status_code == 409 and panel.headers["HX-Redirect"].endswith("?closed=tap")
    state = client.get(f"/sessions/{session_id}/state", headers={"HX-Request": "true"})
    assert state.status_code == 409 and state.headers["HX-Redirect"].endswith("?closed=elsewhere")
    html = client.get(f"/sessions/{session_id}?closed=tap").get_data(as_text=True)
    assert "what you just tapped was not saved" in html and "Close roster" not in html
    assert 'role="alert"' in html
    html = client.get(f"/sessions/{session_id}?closed=elsewhere").get_data(as_text=True)
    assert "closed on another device" in html


# ----------------------------------------------------------------------------------------
# Times an auditor would question (production margins)
# ----------------------------------------------------------------------------------------

@pytest.fixture
def real_margins(app):
    d = TimeMargins()
    app.config.update(PORTAL_SIGN_EARLY_MINUTES=d.sign_early,
                      PORTAL_FUTURE_TIME_MINUTES=d.future, PORTAL_CLOSE_EARLY_MINUTES=d.close_early)


def test_signature_hours_before_the_group_is_refused(world, real_margins):
    am = sessions_today(world)["AM IOP"]
    entry = am.entries[0]
    with pytest.raises(Conflict, match="Signing opens at 8:30 AM"):
        sign(am, entry, now=am.scheduled_start - timedelta(hours=2, minutes=16))
    db.session.rollback()
    assert not svc.get_session(am.id).entries[0].is_signed
    sign(am, entry, now=am.scheduled_start - timedelta(minutes=30))  # at the margin: accepted


def test_times_in_the_future_and_closing_before_the_end_are_refused(world, real_margins):
    am = sessions_today(world)["AM IOP"]
    sign_all(am, now=am.scheduled_start)
    morning = am.scheduled_start - timedelta(hours=2, minutes=10)  # 6:50 AM
    with pytest.raises(Invalid, match="has not happened yet") as exc:
        svc.set_session_times(am.id, start="09:05", end="12:00", now=morning)
    assert exc.value.field == "start"
    db.session.rollback()
    assert svc.get_session(am.id).actual_start is None
    svc.set_session_times(am.id, start="09:05", end="12:00",
                          now=am.scheduled_end + timedelta(minutes=1))
    with pytest.raises(Invalid, match="recorded end is 12:00 PM"):
        svc.close_roster(am.id, facilitator=world.facilitator, typed_name="Dana Whitfield",
                         attested=True, signature_png=squiggle_png(), max_png_bytes=MAX,
                         now=am.scheduled_end - timedelta(minutes=1))
    db.session.rollback()
    assert not svc.get_session(am.id).is_closed
    closed = svc.close_roster(am.id, facilitator=world.facilitator, typed_name="Dana Whitfield",
                              attested=True, signature_png=squiggle_png(), max_png_bytes=MAX,
                              now=am.scheduled_end)
    assert closed.is_closed


# ----------------------------------------------------------------------------------------
# Keyboard signature: typed name + password, recorded as such
# ----------------------------------------------------------------------------------------

def test_keyboard_close_by_typed_name_and_password(client, login, world):
    am = sessions_today(world)["AM IOP"]
    sign_all(am)
    svc.set_session_times(am.id, start="09:00", end="12:05")
    login.as_(world.facilitator)
    csrf = open_roster(client, am)
    form = {"attest": "yes", "typed_name": "Dana Whitfield", "sign_method": "password",
            "password": "not my password"}
    bad = htmx_post(client, f"/sessions/{am.id}/close", form, csrf)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "password is not right" in html
    assert "not my password" not in html  # never echoed
    db.session.expire_all()
    assert not db.session.get(GroupSession, am.id).is_closed
    ok = htmx_post(client, f"/sessions/{am.id}/close", dict(form, password=factories.PASSWORD), csrf)
    assert ok.status_code == 204, ok.get_data(as_text=True)
    db.session.expire_all()
    session = db.session.get(GroupSession, am.id)
    assert session.is_closed and session.facilitator_signature_sha256 is None
    pdf = client.get(f"/documents/{session.document_id}.pdf")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(pdf.data)).pages).split())
    assert "Signed electronically by typed name and re-entry of the facilitator's own portal password" in text


def test_closed_roster_shows_the_date_when_it_was_not_today(client, login, world, app):
    day = local_today(world.program.tz) - timedelta(days=2)
    am = next(s for s in ensure_sessions(world.program, day) if s.cohort.name == "AM IOP")
    for e in am.entries:
        svc.mark_attendance(am.id, e.id, status="absent")
    svc.set_session_times(am.id, start="09:00", end="12:00")
    svc.close_roster(am.id, facilitator=world.facilitator, typed_name="Dana Whitfield",
                     attested=True, signature_png=squiggle_png(), max_png_bytes=MAX,
                     now=am.scheduled_end + timedelta(minutes=20))
    login.as_(world.facilitator)
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    label = (am.scheduled_end + timedelta(minutes=20)).astimezone(world.program.tz).strftime("%a %b %-d, %-I:%M %p")
    assert f"Roster closed</strong> at {label}" in html


def test_thirteen_patient_pdf_keeps_the_notice_with_the_attestation(client, login, world):
    add_patients(world, world.am, 9)
    am = sessions_today(world)["AM IOP"]
    factories.sign_and_close(am, world.facilitator)
    login.as_(world.facilitator)
    session = db.session.get(GroupSession, am.id)
    pdf = PdfReader(BytesIO(client.get(f"/documents/{session.document_id}.pdf").data))
    pages = [" ".join(p.extract_text().split()) for p in pdf.pages]
    notice = [p for p in pages if "42 CFR part 2" in p]
    assert len(notice) == 1 and "Facilitator attestation" in notice[0]


def test_today_offers_open_roster_buttons_recent_rosters_and_all_done(client, login, world):
    sessions = sessions_today(world)
    login.as_(world.facilitator)
    html = client.get("/today").get_data(as_text=True)
    assert "Open roster<span class=\"sr-only\"> for AM IOP" in html
    assert "PM IOP" not in html  # Marcus's group
    assert "No roster closed in the last 14 days yet" in html and "All done" not in html
    factories.sign_and_close(sessions["AM IOP"], world.facilitator)
    html = client.get("/today").get_data(as_text=True)
    assert "All done for today" in html and "View roster<span" in html


def test_empty_readiness_range_shows_an_empty_state(client, login, world):
    login.as_(world.billing)
    html = client.get("/readiness/?from=2020-01-01&to=2020-01-31").get_data(as_text=True)
    assert "No dates of service between Jan 1 and Jan 31, 2020" in html
    assert "Alvarez, Marisol" not in html


def test_rules_page_says_who_changes_rules(client, login, world):
    login.as_(world.billing)
    html = client.get("/billing/rules").get_data(as_text=True)
    assert "Who can change a rule" in html and "portal administrator" in html


def test_roster_says_when_signing_opens(client, login, world, real_margins, monkeypatch):
    am = sessions_today(world)["AM IOP"]
    early = am.scheduled_start - timedelta(hours=2, minutes=16)  # 6:44 AM
    login.as_(world.facilitator)
    import portal.clock

    monkeypatch.setattr(portal.clock, "now_utc", lambda: early)
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    assert "Signing opens at 8:30 AM" in html
    monkeypatch.setattr(portal.clock, "now_utc", lambda: am.scheduled_start)
    html = client.get(f"/sessions/{am.id}").get_data(as_text=True)
    assert "Signing opens" not in html


def test_the_pad_does_not_open_before_signing_opens(client, login, world, real_margins, monkeypatch):
    """QA: before signing opened the pad still came up, and refused only after the patient had
    drawn. Now the tablet answers at once, with the time signing opens."""
    import portal.services.roster as roster_service

    am = sessions_today(world)["AM IOP"]
    entry = am.entries[0]
    login.as_(world.facilitator)
    url = f"/sessions/{am.id}/entries/{entry.id}/sign"
    monkeypatch.setattr(roster_service, "now_utc", lambda: am.scheduled_start - timedelta(hours=2))
    resp = client.get(url, headers={"HX-Request": "true"})
    assert resp.status_code == 409 and "Signing opens at 8:30 AM" in resp.get_data(as_text=True)
    assert "canvas" not in resp.get_data(as_text=True)
    monkeypatch.setattr(roster_service, "now_utc", lambda: am.scheduled_start - timedelta(minutes=30))
    resp = client.get(url, headers={"HX-Request": "true"})
    assert resp.status_code == 200 and "<canvas" in resp.get_data(as_text=True)
