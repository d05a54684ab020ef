"""Authorizations end to end through the pages: step-down from a residential authorization to an
approved IOP one (its day held while pending, Ready once approved), every transition archived
as a PDF, illegal moves 409, bad input 422 writing nothing, payer letters, the work queue, the
tablet badge, and IOP on a residential day blocked through the fact loader."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from pypdf import PdfWriter
from sqlalchemy import func, select

from portal.clock import local_today, now_utc
from portal.extensions import db
from portal.models import (ArchivedDocument, Authorization, AuthorizationTransition, CareEpisode,
                           PayerLetter)
from portal.services.schedule import ensure_sessions
from tests import factories

DIMS = {f"rating_{i}": "2" for i in range(1, 7)} | {f"rationale_{i}": f"why {i}" for i in range(1, 7)}


def residential(world, patient, today, **kw):
    a = Authorization(patient=patient, payer=patient.payer, number=kw.get("number", "RES-1"),
                      hcpcs_code="H0015", level_of_care="3.5", start_date=today - timedelta(days=20),
                      end_date=kw.get("end", today - timedelta(days=1)), units=20, status="approved")
    db.session.add(a)
    db.session.commit()
    return a


def token(client, url):
    return factories.csrf_from(client.get(url).get_data(as_text=True))


def move(client, auth_id, to, **data):
    page = f"/authorizations/patients/{db.session.get(Authorization, auth_id).patient_id}"
    return client.post(f"/authorizations/{auth_id}/transition",
                       data={"to": to, "csrf_token": token(client, page), **data})


def counts():
    return (db.session.scalar(select(func.count()).select_from(AuthorizationTransition)),
            db.session.scalar(select(func.count()).select_from(ArchivedDocument)),
            db.session.scalar(select(func.count()).select_from(Authorization)))


def readiness(client, patient, day):
    return client.get(f"/readiness/patients/{patient.id}?from={day}&to={day}").get_data(as_text=True)


def test_step_down_flow_pending_holds_then_overturned_is_ready(app, client, login, world):
    today = local_today(world.program.tz)
    patient = world.patients[0]
    prior = residential(world, patient, today)
    sessions = {s.cohort.name: s for s in ensure_sessions(world.program, today)}
    factories.sign_and_close(sessions["AM IOP"], world.facilitator)
    factories.document_sessions([sessions["AM IOP"]], world.clinician)  # note + plan (issue 11)
    login.as_(world.clinician)

    # no authorization covers today: blocked, readiness says why
    assert "no H0015 authorization" in readiness(client, patient, today)
    page = client.get(f"/authorizations/{prior.id}/step-down").get_data(as_text=True)
    assert today.isoformat() in page and "F10.20" in page and "RES-1" in page
    assert page.count('name="rationale_') == 6
    resp = client.post(f"/authorizations/{prior.id}/step-down", data={
        "csrf_token": factories.csrf_from(page), "level": "2.1", "edition": "3", "code": "H0015",
        "request_kind": "standard", "start": today.isoformat(),
        "end": (today + timedelta(days=29)).isoformat(), "units": "20", "units_per_week": "5",
        "diagnoses": "F10.20, F41.1", "history": "Completed 20 days of residential care.", **DIMS})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    auth = db.session.scalar(select(Authorization).where(Authorization.prior_authorization_id == prior.id))
    assert auth.status == "draft" and auth.request["diagnoses"] == ["F10.20", "F41.1"]
    assert len(auth.request["dimensions"]) == 6

    assert move(client, auth.id, "submitted").status_code == 302
    db.session.expire_all()
    assert auth.decision_due_at is not None  # Medicaid MCO: 7 calendar days standard
    assert (auth.decision_due_at - auth.submitted_at) in (timedelta(days=7), timedelta(days=7, hours=1),
                                                          timedelta(days=6, hours=23))
    assert move(client, auth.id, "pending").status_code == 302
    assert "Held, authorization pending" in readiness(client, patient, today)
    queue = client.get("/authorizations/").get_data(as_text=True)
    assert "Payer decision due" in queue and patient.legal_first in queue

    # a denial without a reason is refused; with one it opens the peer-to-peer window
    assert move(client, auth.id, "denied").status_code == 422
    assert move(client, auth.id, "denied", note="Dimension 5 risk not supported").status_code == 302
    db.session.expire_all()
    assert auth.p2p_due_at - auth.decided_at == timedelta(hours=48)
    assert "was denied" in readiness(client, patient, today)
    assert move(client, auth.id, "p2p_requested").status_code == 302
    assert move(client, auth.id, "p2p_held", note="Dr. Ames with plan reviewer").status_code == 302
    assert move(client, auth.id, "overturned", number="IOP-77120").status_code == 302
    db.session.expire_all()
    assert auth.status == "overturned" and auth.number == "IOP-77120"

    day = readiness(client, patient, today)
    assert 'badge-ok">Ready' in day and "Held" not in day and "was denied" not in day
    # every move archived as a PDF in the chain
    moves = auth.transitions
    assert [t.to_state for t in moves] == ["submitted", "pending", "denied", "p2p_requested",
                                           "p2p_held", "overturned"]
    assert all(t.document and t.document.kind == "authorization" for t in moves)
    pdf = client.get(f"/documents/{moves[0].document_id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    from pypdf import PdfReader
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Authorization request packet" in text and "F10.20" in text
    assert "Readiness to change" in text and "RES-1" in text  # dimensions, prior auth
    decision = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(
        client.get(f"/documents/{moves[2].document_id}.pdf").data)).pages)
    assert "Dimension 5 risk not supported" in decision
    assert "Peer-to-peer request window closes" in decision
    # prior -> new: the residential episode ends the day before IOP starts
    eps = db.session.scalars(select(CareEpisode).where(CareEpisode.patient_id == patient.id)
                             .order_by(CareEpisode.id)).all()
    assert [(e.level, e.end_date) for e in eps][:1] == [("3.5", today - timedelta(days=1))]
    assert eps[-1].level == "2.1" and eps[-1].prior_episode_id == eps[0].id
    page = client.get(f"/authorizations/patients/{patient.id}").get_data(as_text=True)
    assert "<svg" in page and "Overturned at peer-to-peer" in page


def test_illegal_transition_is_409_and_changes_nothing(app, client, login, world):
    today = local_today(world.program.tz)
    prior = residential(world, world.patients[0], today)
    login.as_(world.billing)
    before = counts()
    resp = move(client, prior.id, "denied", note="x")
    assert resp.status_code == 409 and "cannot become" in resp.get_data(as_text=True)
    assert counts() == before and db.session.get(Authorization, prior.id).status == "approved"
    assert move(client, prior.id, "nonsense").status_code == 409


def _draft(client, world, patient, today, **over):
    data = {"csrf_token": token(client, f"/authorizations/patients/{patient.id}/new"),
            "level": "2.1", "edition": "3", "code": "H0015", "request_kind": "expedited",
            "start": today.isoformat(), "end": (today + timedelta(days=13)).isoformat(),
            "units": "10", "diagnoses": "F11.20", **DIMS}
    data.update(over)
    return client.post(f"/authorizations/patients/{patient.id}/new", data=data)


def test_decision_before_request_is_refused(app, client, login, world):
    today = local_today(world.program.tz)
    patient = world.patients[1]
    login.as_(world.billing)
    assert _draft(client, world, patient, today).status_code == 302
    auth = db.session.scalar(select(Authorization).where(Authorization.patient_id == patient.id))
    sent = now_utc() - timedelta(hours=2)
    local = sent.astimezone(world.program.tz).strftime("%Y-%m-%dT%H:%M")
    assert move(client, auth.id, "submitted", at=local).status_code == 302
    assert move(client, auth.id, "pending").status_code == 302
    before = counts()
    earlier = (sent - timedelta(days=1)).astimezone(world.program.tz).strftime("%Y-%m-%dT%H:%M")
    resp = move(client, auth.id, "approved", number="IOP-1", at=earlier)
    assert resp.status_code == 422 and "before its request" in resp.get_data(as_text=True)
    assert counts() == before
    db.session.expire_all()
    # expedited: 72 hours
    assert auth.decision_due_at - auth.submitted_at == timedelta(hours=72)


@pytest.mark.parametrize("over,message", [
    ({"diagnoses": "F10.20, 3F1"}, "is not an ICD-10-CM code"),
    ({"diagnoses": "F41.1"}, "outside F10"),
    ({"rating_3": "9"}, "Dimension 3"),
    ({"end": "2020-01-01"}, "before the first day"),
    ({"units": "0"}, "Units requested"),
    ({"units_per_week": "50"}, "Units per week"),
])
def test_bad_request_input_writes_nothing(app, client, login, world, over, message):
    today = local_today(world.program.tz)
    login.as_(world.clinician)
    before = counts()
    resp = _draft(client, world, world.patients[1], today, **over)
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    assert counts() == before


def test_overlap_allowed_only_as_documented_extension(app, client, login, world):
    today = local_today(world.program.tz)
    patient = world.patients[0]
    orig = Authorization(patient=patient, payer=patient.payer, number="IOP-5", level_of_care="2.1",
                         start_date=today - timedelta(days=10), end_date=today + timedelta(days=3),
                         units=12, status="approved")
    db.session.add(orig)
    db.session.commit()
    login.as_(world.billing)
    resp = _draft(client, world, patient, today)
    assert resp.status_code == 422 and "documented extension" in resp.get_data(as_text=True)
    resp = _draft(client, world, patient, today, extends_id=str(orig.id))
    assert resp.status_code == 422 and "needs its documented reason" in resp.get_data(as_text=True)
    resp = _draft(client, world, patient, today, extends_id=str(orig.id),
                  extension_reason="Continued stay review: relapse risk remains high")
    assert resp.status_code == 302


def _approved_with_today_billed(world, number):
    """An approved 10-unit authorization around today for the first patient, and today's AM
    group closed and documented (note + plan, issue 11), so one unit is used."""
    today = local_today(world.program.tz)
    patient = world.patients[0]
    a = Authorization(patient=patient, payer=patient.payer, number=number, level_of_care="2.1",
                      start_date=today - timedelta(days=3), end_date=today + timedelta(days=20),
                      units=10, status="approved")
    db.session.add(a)
    db.session.commit()
    sessions = {s.cohort.name: s for s in ensure_sessions(world.program, today)}
    factories.sign_and_close(sessions["AM IOP"], world.facilitator)
    factories.document_sessions([sessions["AM IOP"]], world.clinician)
    return today, patient, a


def test_units_below_units_used_are_refused(app, client, login, world):
    today, patient, a = _approved_with_today_billed(world, "IOP-9")
    login.as_(world.billing)
    page = f"/authorizations/patients/{patient.id}"
    assert "1 used on billable lines" in client.get(page).get_data(as_text=True)
    before = counts()
    resp = client.post(f"/authorizations/{a.id}/amend", data={
        "csrf_token": token(client, page), "units": "0"})
    assert resp.status_code == 422
    # 1 unit is used: an amendment down to exactly that is allowed
    resp = client.post(f"/authorizations/{a.id}/amend", data={
        "csrf_token": token(client, page), "units": "1", "note": "payer revised"})
    assert resp.status_code == 302
    assert counts()[0] == before[0] + 1
    db.session.expire_all()
    assert a.units == 1 and a.status == "approved"


def test_units_below_used_message(app, client, login, world):
    """Two billable days used; amending to one unit is refused with the count."""
    today, patient, a = _approved_with_today_billed(world, "IOP-10")
    # the same patient in the PM group too is still one day (per diem): use yesterday
    yesterday = today - timedelta(days=1)
    y = {s.cohort.name: s for s in ensure_sessions(world.program, yesterday)}
    from portal.services import roster as rsvc
    from portal.demo.signature_art import squiggle_png
    tz = world.program.tz
    s = y["AM IOP"]
    noon = datetime.combine(yesterday, datetime.min.time(), tzinfo=tz).replace(hour=13)
    for i, e in enumerate(s.entries):
        rsvc.sign_attendance(s.id, e.id, png=squiggle_png(seed=i), strokes=None, user_agent="t",
                             max_png_bytes=512 * 1024, now=noon - timedelta(hours=3, minutes=50))
    rsvc.set_session_times(s.id, start="09:00", end="12:00")
    rsvc.close_roster(s.id, facilitator=world.facilitator, typed_name=world.facilitator.name,
                      attested=True, signature_png=squiggle_png(seed=5), max_png_bytes=512 * 1024,
                      now=noon)
    factories.document_sessions([db.session.get(type(s), s.id)], world.clinician)
    login.as_(world.billing)
    page = f"/authorizations/patients/{patient.id}"
    resp = client.post(f"/authorizations/{a.id}/amend", data={
        "csrf_token": token(client, page), "units": "1"})
    assert resp.status_code == 422
    assert "2 units are already used" in resp.get_data(as_text=True)


def _pdf(**encrypt) -> bytes:
    w = PdfWriter()
    w.add_blank_page(612, 792)
    if encrypt:
        w.encrypt(**encrypt)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


@pytest.mark.parametrize("data,status,message", [
    (_pdf(), 302, None),
    (_pdf(user_password="", owner_password="owner", algorithm="AES-128"), 302, None),
    (_pdf(user_password="s3cret", owner_password="owner", algorithm="AES-128"), 422,
     "password protected"),
    (_pdf()[:300], 422, "incomplete"),
    (b"<!DOCTYPE html><html><body>Your letter</body></html>", 422, "web page"),
    (b"%PDF-1.7\n garbage that is no pdf \n%%EOF\n", 422, "damaged"),
    (b"%PDF-1.4\n" + b"0" * (64 * 1024) + b"\n%%EOF", 422, "limit"),
    (b"", 422, "empty"),
], ids=["plain", "empty-user-password", "password", "truncated", "html", "damaged", "oversize",
        "empty"])
def test_payer_letter_uploads(app, client, login, world, data, status, message):
    today = local_today(world.program.tz)
    prior = residential(world, world.patients[0], today)
    app.config["MAX_LETTER_BYTES"] = 60 * 1024  # small, so the test body stays in memory
    login.as_(world.billing)
    page = f"/authorizations/patients/{world.patients[0].id}"
    resp = client.post(f"/authorizations/{prior.id}/letters", data={
        "csrf_token": token(client, page), "letter": (io.BytesIO(data), "letter.pdf")},
        content_type="multipart/form-data")
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    letters = db.session.scalars(select(PayerLetter)).all()
    if status == 302:
        [letter] = letters
        import hashlib
        assert letter.original == data and letter.original_sha256 == hashlib.sha256(data).hexdigest()
        if b"/Encrypt" in data:
            assert letter.decrypted and letter.decrypted_sha256 != letter.original_sha256
            assert b"/Encrypt" not in letter.decrypted
        else:
            assert letter.decrypted is None
        got = client.get(f"/authorizations/letters/{letter.id}.pdf")
        assert got.status_code == 200 and got.data.startswith(b"%PDF")
    else:
        assert letters == []
        assert message in resp.get_data(as_text=True)


def test_tablet_badge_and_queue_escalation(app, client, login, world):
    today = local_today(world.program.tz)
    patient = world.patients[0]
    covered = world.patients[1]
    db.session.add(Authorization(patient=covered, payer=covered.payer, number="IOP-2",
                                 level_of_care="2.1", start_date=today, end_date=today,
                                 units=1, status="approved"))
    late = Authorization(patient=patient, payer=patient.payer, level_of_care="2.1",
                         start_date=today, end_date=today + timedelta(days=9), units=8,
                         status="pending", submitted_at=now_utc() - timedelta(days=9),
                         decision_due_at=now_utc() - timedelta(days=2))
    db.session.add(late)
    db.session.commit()
    sessions = {s.cohort.name: s for s in ensure_sessions(world.program, today)}
    login.as_(world.facilitator)
    roster = client.get(f"/sessions/{sessions['AM IOP'].id}").get_data(as_text=True)
    # Marisol: pending -> badge; Keegan covered -> none; self-pay Lan needs none
    assert roster.count("auth-badge") == 2  # Marisol (pending) and José (PPO, nothing on file)
    assert "Authorization pending" in roster and "No authorization today" in roster
    login.as_(world.billing)
    queue = client.get("/authorizations/").get_data(as_text=True)
    assert "Overdue" in queue
    board = client.get("/billing/").get_data(as_text=True)
    assert "authorization overdue" in board
    program = client.get("/readiness/").get_data(as_text=True)
    assert "authorization overdue" in program


def test_expiring_authorization_raises_alert(app, client, login, world):
    today = local_today(world.program.tz)
    patient = world.patients[0]
    db.session.add(Authorization(patient=patient, payer=patient.payer, number="IOP-3",
                                 level_of_care="2.1", start_date=today - timedelta(days=20),
                                 end_date=today + timedelta(days=2), units=20, status="approved"))
    db.session.commit()
    login.as_(world.billing)
    queue = client.get("/authorizations/").get_data(as_text=True)
    assert "IOP-3 ends" in queue and "continued-stay review" in queue


def test_iop_on_a_residential_day_is_blocked_through_the_loader(app, client, login, world):
    today = local_today(world.program.tz)
    patient = world.patients[0]
    db.session.add(Authorization(patient=patient, payer=patient.payer, number="IOP-4",
                                 level_of_care="2.1", start_date=today - timedelta(days=5),
                                 end_date=today + timedelta(days=5), units=20, status="approved"))
    db.session.add(CareEpisode(patient_id=patient.id, level="3.5", asam_edition="3",
                               start_date=today - timedelta(days=10), end_date=today,
                               source="manual"))
    db.session.commit()
    sessions = {s.cohort.name: s for s in ensure_sessions(world.program, today)}
    factories.sign_and_close(sessions["AM IOP"], world.facilitator)
    factories.document_sessions([sessions["AM IOP"]], world.clinician)  # note + plan (issue 11)
    login.as_(world.billing)
    assert "recorded in residential" in readiness(client, patient, today)


def test_census_prior_level_starts_episodes(app):
    """Marisol's census row: prior level 3.5 with auth RS-77812, admitted 2026-11-02 at 2.1."""
    from datetime import date, time

    from portal.census.importer import import_census
    from portal.models import Cohort, Patient
    from tests.web.test_census_cli import clean_fixture

    program = factories.make_program()
    factories.make_payers()
    for name, start in (("AM IOP", time(9, 0)), ("PM IOP", time(17, 30))):
        db.session.add(Cohort(program=program, name=name, start_local=start))
    db.session.commit()
    report = import_census(clean_fixture(), commit=True)
    assert not report.errors
    marisol = db.session.scalar(select(Patient).where(Patient.mrn == "100231"))
    eps = db.session.scalars(select(CareEpisode).where(CareEpisode.patient_id == marisol.id)
                             .order_by(CareEpisode.id)).all()
    assert [(e.level, e.start_date, e.end_date, e.auth_number) for e in eps] == [
        ("3.5", None, date(2026, 11, 1), "RS-77812"), ("2.1", date(2026, 11, 2), None, "IOP-55102")]
    assert eps[1].prior_episode_id == eps[0].id
