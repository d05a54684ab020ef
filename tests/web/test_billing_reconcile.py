"""Mark day reconciled: one chained PDF entry per reconciliation, 409 on a second attempt unless
it names the entry it supersedes, "late" after 5:00 PM local, per-patient salted lines."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from io import BytesIO

import pytest
from pypdf import PdfReader

from portal.extensions import db
from portal.models import ArchivedDocument, ArchivedDocumentPatient
from portal.services.errors import Conflict, Invalid
from portal.services.reconciliation import reconcile_day, reconciliations_of
from tests import factories
from tests.web.test_billing_board import DAY, prepare_day


@pytest.fixture
def day(world):
    prepare_day(world)
    return DAY


def csrf(client, url=f"/billing/?date={DAY}"):
    return factories.csrf_from(client.get(url).get_data(as_text=True))


def recon_docs():
    db.session.expire_all()
    return db.session.scalars(db.select(ArchivedDocument).where(
        ArchivedDocument.kind == "reconciliation").order_by(ArchivedDocument.entry_seq)).all()


def pdf_text(data: bytes) -> str:
    """Page text with line breaks folded to spaces (table cells wrap)."""
    return " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(data)).pages).split())


def test_reconcile_archives_one_entry_and_board_shows_it(client, login, world, day):
    login.as_(world.billing)
    token = csrf(client)
    resp = client.post(f"/billing/days/{day}/reconcile", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/billing/?date={day}")
    (doc,) = recon_docs()
    assert doc.dos == day and doc.entry_seq == 1 and doc.title == f"Reconciliation {day}"
    # one salted line per patient listed, each holding only that patient's line
    rows = db.session.scalars(db.select(ArchivedDocumentPatient).where(
        ArchivedDocumentPatient.document_id == doc.id)).all()
    assert {r.patient_id for r in rows} == {p.id for p in world.patients + world.pm_patients}
    for r in rows:
        line = json.loads(r.line_json)
        assert line["patient_id"] == str(r.patient_id) and len(r.line_salt) == 64
    obrien = next(json.loads(r.line_json) for r in rows if r.patient_id == world.patients[1].id)
    assert obrien["status"] == "blocked"
    assert obrien["blocking_reasons"][0]["code"] == "patient_not_signed"

    html = client.get(f"/billing/?date={day}").get_data(as_text=True)
    assert "Reconciled by Jo Billing at" in html and "entry #1" in html
    assert f'href="/documents/{doc.id}.pdf"' in html
    assert "late" in html  # the DOS is in the past, so after its 5:00 PM deadline
    assert "Reconcile again (supersedes entry #1)" in html

    pdf = client.get(f"/documents/{doc.id}.pdf")
    assert pdf.status_code == 200
    text = pdf_text(pdf.data)
    for expected in ("Daily billing reconciliation", "Wednesday, November 18, 2026", "Jo Billing",
                     "Keegan O'Brien", "100232", "patient attended but did not sign",
                     "no H0015 authorization on file", "$680.00 at risk", "Late: reconciled after",
                     "9:30 PM CST", "audit #1"):
        assert expected in text, (expected, text)


def test_second_reconcile_is_409_and_writes_nothing(client, login, world, day):
    login.as_(world.billing)
    token = csrf(client)
    assert client.post(f"/billing/days/{day}/reconcile", data={"csrf_token": token}).status_code == 303
    again = client.post(f"/billing/days/{day}/reconcile", data={"csrf_token": token},
                        headers={"HX-Request": "true"})
    assert again.status_code == 409
    body = again.get_data(as_text=True)
    assert "already reconciled by Jo Billing" in body and "entry #1" in body
    assert again.headers["HX-Retarget"] == "#flash"
    assert len(recon_docs()) == 1


def test_reconcile_again_supersedes_latest_entry(client, login, world, day):
    login.as_(world.billing)
    token = csrf(client)
    client.post(f"/billing/days/{day}/reconcile", data={"csrf_token": token})
    login.as_(world.admin)
    token = csrf(client)
    resp = client.post(f"/billing/days/{day}/reconcile",
                       data={"csrf_token": token, "supersedes": "1", "blocked": "1"},
                       headers={"HX-Request": "true"})
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="board"') or '<section id="board"' in body
    assert "Reconciled by Sam Admin" in body and "supersedes entry #1" in body
    assert "Marisol Alvarez" not in body  # the echoed "only blocked" filter still applies
    docs = recon_docs()
    assert [d.entry_seq for d in docs] == [1, 2]
    recs = reconciliations_of(world.program, day)
    assert recs[-1].supersedes_seq == 1 and recs[-1].user_name == "Sam Admin"
    # superseding an entry that is no longer the latest is refused
    stale = client.post(f"/billing/days/{day}/reconcile", data={"csrf_token": token, "supersedes": "1"})
    assert stale.status_code == 409 and len(recon_docs()) == 2


def test_on_time_reconciliation_is_not_late(app, world, day):
    before = datetime(2026, 11, 19, 3, 0, tzinfo=timezone.utc)  # 9:00 PM CST: PM IOP has ended
    doc = reconcile_day(world.program, day, world.billing, app.extensions["rulebook"], now=before)
    (rec,) = reconciliations_of(world.program, day)
    assert rec.entry_seq == doc.entry_seq and not rec.late
    assert rec.at_utc == before


def test_service_refuses_future_and_empty_days(app, world, day):
    rulebook = app.extensions["rulebook"]
    with pytest.raises(Invalid, match="before it happens"):
        reconcile_day(world.program, day, world.billing, rulebook,
                      now=datetime(2026, 11, 17, 18, 0, tzinfo=timezone.utc))
    with pytest.raises(Invalid, match="no sessions"):
        reconcile_day(world.program, day.replace(day=1), world.billing, rulebook)
    with pytest.raises(Conflict, match="not a reconciliation"):
        reconcile_day(world.program, day, world.billing, rulebook, supersedes_seq=7)
    assert recon_docs() == []


def test_reconcile_bad_input(client, login, world, day):
    login.as_(world.billing)
    token = csrf(client)
    bad = client.post("/billing/days/2026-02-30/reconcile", data={"csrf_token": token})
    assert bad.status_code == 400 and "not a date" in bad.get_data(as_text=True)
    bad = client.post(f"/billing/days/{day}/reconcile", data={"csrf_token": token, "supersedes": "x"})
    assert bad.status_code == 400
    no_csrf = client.post(f"/billing/days/{day}/reconcile")
    assert no_csrf.status_code == 400
    assert recon_docs() == []


def test_reconciled_after_five_but_before_the_evening_deadline_is_not_late(app, world, day):
    # The PM group ends 8:30 PM CST; gaps are due an hour later (PORTAL_GAPS_DUE_AFTER_...).
    at = datetime(2026, 11, 19, 2, 45, tzinfo=timezone.utc)  # 8:45 PM CST on Nov 18
    reconcile_day(world.program, day, world.billing, app.extensions["rulebook"], now=at)
    (rec,) = reconciliations_of(world.program, day)
    assert not rec.late


def test_a_day_with_a_group_not_ended_is_not_reconciled(app, world, day, client, login):
    """QA (#16): "Mark day reconciled" was accepted at 4:41 PM with PM IOP still to come, and
    the archive then counted its patients as blocked / no service while the board said
    Upcoming."""
    rulebook = app.extensions["rulebook"]
    for at, words in ((datetime(2026, 11, 18, 22, 41, tzinfo=timezone.utc), "PM IOP (ends 8:30 PM)"),
                      (datetime(2026, 11, 19, 0, 0, tzinfo=timezone.utc), "PM IOP (ends 8:30 PM)")):
        with pytest.raises(Invalid, match=r"1 group has not ended yet: " + words.replace("(", r"\(").replace(")", r"\)")):
            reconcile_day(world.program, day, world.billing, rulebook, now=at)
    assert recon_docs() == []


def test_archived_totals_equal_the_boards(app, world, day, client, login):
    at = datetime(2026, 11, 19, 3, 0, tzinfo=timezone.utc)  # after the last group
    login.as_(world.billing)
    page = client.get(f"/billing/?date={day}").get_data(as_text=True)
    blocked = page.split("<dt>Blocked</dt><dd>")[1].split("<")[0].strip()
    ready = page.split("<dt>Ready</dt><dd>")[1].split("<")[0].strip()
    doc = reconcile_day(world.program, day, world.billing, app.extensions["rulebook"], now=at)
    text = pdf_text(client.get(f"/documents/{doc.id}.pdf").data)
    assert f"Lines ready {ready} " in text and f"Lines blocked {blocked} " in text, text
    assert "Not reconciled yet" not in client.get(f"/billing/?date={day}").get_data(as_text=True)


def test_board_says_why_it_cannot_be_reconciled_yet(app, world, client, login, monkeypatch):
    from datetime import time

    from portal.clock import local_to_utc, local_today
    from portal.services import reconciliation
    from portal.services.schedule import ensure_sessions

    today = local_today(world.program.tz)
    ensure_sessions(world.program, today)
    at = local_to_utc(today, time(16, 41), world.program.tz)  # before PM IOP (5:30 PM)
    monkeypatch.setattr(reconciliation, "now_utc", lambda: at)
    login.as_(world.billing)
    page = client.get("/billing/").get_data(as_text=True)
    assert 'id="reconcile-waiting"' in page and "Mark day reconciled" not in page
    assert "PM IOP has not started (starts 5:30 PM)" in " ".join(page.split())
    token = factories.csrf_from(page)
    resp = client.post(f"/billing/days/{today}/reconcile", data={"csrf_token": token})
    assert resp.status_code == 422 and "not ended yet" in resp.get_data(as_text=True)
    assert recon_docs() == []
