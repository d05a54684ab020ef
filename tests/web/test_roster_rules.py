"""Roster rules a facilitator can trip over: times outside the session, past-date rosters,
attendees who never signed."""
from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from pypdf import PdfReader

from portal.clock import local_today
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import GroupSession
from portal.services import roster as svc
from portal.services.errors import Conflict, Invalid
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.web.test_roster_flow import data_uri, htmx_post


def am(world, day):
    return next(s for s in ensure_sessions(world.program, day) if s.cohort.name == "AM IOP")


@pytest.mark.parametrize("status, arrival, departure, message", [
    ("late", "14:30", None, "before the end of the session"),      # after a 9:00-12:00 group
    ("late", "08:30", None, "after the start"),
    ("late", "25:99", None, "is not a time"),
    ("present", "99:99", None, "Arrival time: \u201c99:99\u201d is not a time"),   # QA #16
    ("present", None, "99:99", "Departure time: \u201c99:99\u201d is not a time"),
    ("left_early", "99:99", "11:00", "Arrival time: \u201c99:99\u201d is not a time"),
    ("absent", "99:99", None, "\u201c99:99\u201d is not a time"),
    ("late", "", None, "Arrival time: enter a time"),
    ("left_early", None, "09:00", "after the start"),
    ("left_early", None, "13:00", "before the end"),
    ("late", "10:00", "09:30", "after the arrival time"),
    ("left_early", "08:00", "11:00", "within the session"),
])
def test_times_outside_the_session_are_refused(world, status, arrival, departure, message):
    session = am(world, local_today(world.program.tz))
    entry = session.entries[0]
    with pytest.raises(Invalid, match=message):
        svc.mark_attendance(session.id, entry.id, status=status, arrival=arrival, departure=departure)
    db.session.expire_all()
    assert session.entries[0].status == "expected"


def test_late_arrival_who_also_left_early_keeps_both_times(world):
    session = am(world, local_today(world.program.tz))
    entry = svc.mark_attendance(session.id, session.entries[0].id, status="late",
                                arrival="09:30", departure="11:15")
    assert entry.arrival and entry.departure
    svc.set_session_times(session.id, start="09:00", end="12:00")
    from portal.rules.attendance_time import minutes_attended
    assert minutes_attended(entry, svc.get_session(session.id)) == 105


def test_actual_start_far_from_schedule_is_a_typo(world):
    session = am(world, local_today(world.program.tz))
    with pytest.raises(Invalid, match="check AM/PM"):
        svc.set_session_times(session.id, start="03:00", end="04:00")


def test_session_times_cannot_contradict_marked_rows(world):
    session = am(world, local_today(world.program.tz))
    svc.mark_attendance(session.id, session.entries[0].id, status="late", arrival="10:20")
    svc.mark_attendance(session.id, session.entries[1].id, status="left_early", departure="11:45")
    with pytest.raises(Invalid, match=r"fall outside 10:30 AM.12:00 PM: .*arrived 10:20 AM") as exc:
        svc.set_session_times(session.id, start="10:30", end="12:00")
    assert "left 11:45 AM" not in exc.value.message  # 11:45 is inside the new times
    db.session.expire_all()
    assert svc.get_session(session.id).actual_start is None  # nothing written
    # once times are in, marks are judged against the actual times, not the schedule
    svc.set_session_times(session.id, start="09:10", end="11:50")
    with pytest.raises(Invalid, match="before the end of the session"):
        svc.mark_attendance(session.id, session.entries[2].id, status="late", arrival="11:55")


def test_present_with_a_time_asks_for_late_or_left_early(world):
    session = am(world, local_today(world.program.tz))
    with pytest.raises(Invalid, match="choose Late arrival or Left early"):
        svc.mark_attendance(session.id, session.entries[0].id, status="present", arrival="09:30")


def test_past_roster_cannot_be_signed_and_closes_as_attended_not_signed(client, login, world):
    yesterday = local_today(world.program.tz) - timedelta(days=1)
    session = am(world, yesterday)
    first, others = session.entries[0], session.entries[1:]
    session_id, first_id = session.id, first.id
    login.as_(world.facilitator)
    page = client.get("/today").get_data(as_text=True)
    assert "Open rosters from earlier days" in page and f"/sessions/{session_id}" in page
    html = client.get(f"/sessions/{session_id}").get_data(as_text=True)
    assert "Tap to sign" not in html and "Patients sign only on the date of service" in html
    csrf = factories.csrf_from(html)
    resp = htmx_post(client, f"/sessions/{session_id}/entries/{first_id}/signature",
                     {"signature_png": data_uri(squiggle_png())}, csrf)
    assert resp.status_code == 409
    body = resp.get_data(as_text=True)
    assert "sign-overlay" in body and "date of service" in body  # answered inside the panel
    for e in [first, *others]:
        svc.mark_attendance(session_id, e.id, status="present")
    svc.set_session_times(session_id, start="09:00", end="12:00")
    form = {"attest": "yes", "typed_name": world.facilitator.name,
            "signature_png": data_uri(squiggle_png())}
    refused = htmx_post(client, f"/sessions/{session_id}/close", form, csrf)
    assert refused.status_code == 422
    assert "Marked as attending but not signed" in refused.get_data(as_text=True)
    closed = htmx_post(client, f"/sessions/{session_id}/close", {**form, "ack_unsigned": "yes"}, csrf)
    assert closed.status_code == 204, closed.get_data(as_text=True)
    db.session.expire_all()
    doc_id = db.session.get(GroupSession, session_id).document_id
    pdf = client.get(f"/documents/{doc_id}.pdf")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(pdf.data)).pages).split())
    assert text.count("Attended, not signed") == len(others) + 1


def test_signing_refused_outside_the_dos_in_the_service(world):
    session = am(world, local_today(world.program.tz) + timedelta(days=1))
    with pytest.raises(Conflict, match="date of service"):
        svc.sign_attendance(session.id, session.entries[0].id, png=squiggle_png(), strokes=None,
                            user_agent="t", max_png_bytes=512 * 1024)


def test_telehealth_session_sets_pos_from_patient_location(world):
    session = am(world, local_today(world.program.tz))
    with pytest.raises(Invalid, match="where the patients were"):
        svc.set_session_times(session.id, start="09:00", end="12:00", modality="video")
    s = svc.set_session_times(session.id, start="09:00", end="12:00", modality="video",
                              patient_location="home")
    assert (s.modality, s.place_of_service) == ("video", "10")
    s = svc.set_session_times(session.id, start="09:00", end="12:00", modality="in_person")
    # in person: no database default; the payer's rule decides unless the cohort records one
    assert (s.modality, s.place_of_service, s.patient_location) == ("in_person", None, None)
    session.cohort.place_of_service = "11"
    db.session.commit()
    s = svc.set_session_times(session.id, start="09:00", end="12:00", modality="in_person")
    assert s.place_of_service == "11"
    with pytest.raises(Invalid, match="Unknown modality"):
        svc.set_session_times(session.id, start="09:00", end="12:00", modality="carrier pigeon")


def test_present_with_arrival_99_99_gets_not_a_time_in_its_row(world, client, login):
    """QA (#16): "99:99" with Present answered with the lesson about Present and times."""
    from tests.web.test_roster_flow import htmx_post, open_roster

    session = am(world, local_today(world.program.tz))
    entry = session.entries[0]
    login.as_(world.facilitator)
    csrf = open_roster(client, session)
    resp = htmx_post(client, f"/sessions/{session.id}/entries/{entry.id}/mark",
                     {"status": "present", "arrival": "99:99"}, csrf)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Arrival time: \u201c99:99\u201d is not a time" in body
    assert "attended the whole session" not in body
    db.session.expire_all()
    assert session.entries[0].status == "expected"
