"""The facilitator's tablet flow through the test client: sign, mark, time, close, archive."""
from __future__ import annotations

import base64
from io import BytesIO

import pytest
from pypdf import PdfReader

from portal.clock import local_today
from portal.extensions import db
from portal.models import AttendanceEntry, GroupSession
from portal.services.schedule import ensure_sessions
from tests import factories
from tests.signature_images import blank_png, dot_png, squiggle_png



def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


@pytest.fixture
def dos(world):
    """Today in the program's zone: signatures are only taken on the date of service."""
    return local_today(world.program.tz)


@pytest.fixture
def am_session(world, dos):
    sessions = ensure_sessions(world.program, dos)
    return next(s for s in sessions if s.cohort_id == world.am.id)


def htmx_post(client, url, data, csrf):
    return client.post(url, data=data, headers={"HX-Request": "true", "X-CSRFToken": csrf})


def open_roster(client, session):
    page = client.get(f"/sessions/{session.id}")
    assert page.status_code == 200
    return factories.csrf_from(page.get_data(as_text=True))


def test_roster_page_shows_only_first_name_and_initial(client, login, world, am_session):
    login.as_(world.facilitator)
    html = client.get(f"/sessions/{am_session.id}").get_data(as_text=True)
    assert "Marisol A." in html and "Alvarez" not in html
    assert "Lan N." in html and "Thi Lan" not in html  # preferred name, last initial
    assert "100231" not in html  # no MRNs on the shared screen


def test_sign_swaps_row_without_showing_signature(client, login, world, am_session):
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    entry = am_session.entries[0]
    resp = htmx_post(client, f"/sessions/{am_session.id}/entries/{entry.id}/signature",
                     {"signature_png": data_uri(squiggle_png()), "strokes": "[]"}, csrf)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "Signed" in body and 'hx-swap-oob="true"' in body and "data:image" not in body
    db.session.expire_all()
    assert db.session.get(AttendanceEntry, entry.id).signature_sha256


@pytest.mark.parametrize("png, message", [
    (blank_png(), "blank"), (dot_png(), "blank or nearly blank"), (b"GIF89a....", "PNG"),
    (b"", "No signature"),
])
def test_bad_signatures_are_refused_and_write_nothing(client, login, world, am_session, png, message):
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    entry = am_session.entries[0]
    payload = {"signature_png": data_uri(png) if png else ""}
    resp = htmx_post(client, f"/sessions/{am_session.id}/entries/{entry.id}/signature", payload, csrf)
    assert resp.status_code == 422
    assert message.lower() in resp.get_data(as_text=True).lower()
    db.session.expire_all()
    assert db.session.get(AttendanceEntry, entry.id).signed_at is None


def test_oversized_signature_refused(client, login, world, am_session, app):
    app.config["MAX_SIGNATURE_BYTES"] = 1000
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    entry = am_session.entries[0]
    resp = htmx_post(client, f"/sessions/{am_session.id}/entries/{entry.id}/signature",
                     {"signature_png": data_uri(squiggle_png())}, csrf)
    assert resp.status_code == 422 and "too large" in resp.get_data(as_text=True)


def test_missing_csrf_is_refused(client, login, world, am_session):
    login.as_(world.facilitator)
    entry = am_session.entries[0]
    resp = client.post(f"/sessions/{am_session.id}/entries/{entry.id}/signature",
                       data={"signature_png": data_uri(squiggle_png())}, headers={"HX-Request": "true"})
    assert resp.status_code == 400
    assert "expired" in resp.get_data(as_text=True)
    assert resp.headers["HX-Retarget"] == "#flash"


def test_patient_not_on_session_is_404(client, login, world, am_session, dos):
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    pm = next(s for s in ensure_sessions(world.program, dos) if s.cohort_id == world.pm.id)
    other = pm.entries[0]
    resp = htmx_post(client, f"/sessions/{am_session.id}/entries/{other.id}/signature",
                     {"signature_png": data_uri(squiggle_png())}, csrf)
    assert resp.status_code == 404
    assert "not on this session" in resp.get_data(as_text=True)


def test_double_sign_makes_one_record(client, login, world, am_session):
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    entry = am_session.entries[0]
    url = f"/sessions/{am_session.id}/entries/{entry.id}/signature"
    first = htmx_post(client, url, {"signature_png": data_uri(squiggle_png())}, csrf)
    second = htmx_post(client, url, {"signature_png": data_uri(squiggle_png(scale=1.2))}, csrf)
    assert first.status_code == 200 and second.status_code == 409
    assert "already signed" in second.get_data(as_text=True)


def _complete_roster(client, session, csrf):
    entries = session.entries
    for e in entries[:-1]:
        r = htmx_post(client, f"/sessions/{session.id}/entries/{e.id}/signature",
                      {"signature_png": data_uri(squiggle_png())}, csrf)
        assert r.status_code == 200
    r = htmx_post(client, f"/sessions/{session.id}/entries/{entries[-1].id}/mark",
                  {"status": "absent"}, csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    r = htmx_post(client, f"/sessions/{session.id}/entries/{entries[0].id}/mark",
                  {"status": "late", "arrival": "09:20"}, csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    r = htmx_post(client, f"/sessions/{session.id}/times", {"start": "09:02", "end": "12:05"}, csrf)
    assert r.status_code == 200, r.get_data(as_text=True)


def test_close_roster_archives_stamped_pdf(client, login, world, am_session, runner):
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    _complete_roster(client, am_session, csrf)
    resp = htmx_post(client, f"/sessions/{am_session.id}/close",
                     {"attest": "yes", "typed_name": "dana  whitfield",
                      "signature_png": data_uri(squiggle_png())}, csrf)
    assert resp.status_code == 204, resp.get_data(as_text=True)
    assert resp.headers["HX-Redirect"] == f"/sessions/{am_session.id}"
    db.session.expire_all()
    session = db.session.get(GroupSession, am_session.id)
    assert session.is_closed and session.document.entry_seq == 1
    minutes = {e.patient.mrn: e.minutes_attended for e in session.entries}
    assert minutes["100231"] == 165  # late 9:20 -> 12:05
    assert minutes["100232"] == 183
    pdf = client.get(f"/documents/{session.document_id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(pdf.data)).pages)
    for expected in ("Marisol Alvarez", "100231", "José García-López", "No-show",
                     "Dana Whitfield", "LCSW", "1487654323", "Place of service", "per each payer's rule",
                     "Page 1 of", "Late arrival", "9:20 AM", "audit #1"):
        assert expected in text, (expected, text.replace("\n", " | "))
    # closing again, or editing after close, answers 409
    again = htmx_post(client, f"/sessions/{am_session.id}/close",
                      {"attest": "yes", "typed_name": "Dana Whitfield",
                       "signature_png": data_uri(squiggle_png())}, csrf)
    assert again.status_code == 409 and "closed" in again.get_data(as_text=True)
    edit = htmx_post(client, f"/sessions/{am_session.id}/entries/{session.entries[1].id}/mark",
                     {"status": "absent"}, csrf)
    assert edit.status_code == 409


def test_close_refuses_incomplete_roster_and_writes_nothing(client, login, world, am_session, app):
    login.as_(world.facilitator)
    csrf = open_roster(client, am_session)
    resp = htmx_post(client, f"/sessions/{am_session.id}/close",
                     {"attest": "yes", "typed_name": "Someone Else",
                      "signature_png": data_uri(squiggle_png())}, csrf)
    assert resp.status_code == 422
    body = resp.get_data(as_text=True)
    assert "actual start and end" in body and "Not signed and not marked" in body
    assert "Dana Whitfield" in body
    db.session.expire_all()
    assert not db.session.get(GroupSession, am_session.id).is_closed
    from pathlib import Path
    archive = Path(app.config["PORTAL_ARCHIVE_DIR"])
    assert not archive.exists() or not any(p.is_file() for p in archive.rglob("*.pdf"))
