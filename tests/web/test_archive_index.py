"""QA (insider with database access): the portal's index of the archive (``archived_documents``,
``archived_document_patients``, plain tables without triggers) must never decide what is served.
A download takes the document hash from the chain entry and refuses when the index disagrees;
an extract is printed from a line whose commitment is in the entry; `flask audit verify`
reports every index row that disagrees with its entry."""
from __future__ import annotations

import hashlib
import html
import json
import zipfile
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from portal.documents.extract import NOT_COVERED, SIGNATURE_NOT_COVERED, extract_facts
from portal.extensions import db
from portal.models import ArchivedDocument, ArchivedDocumentPatient, GroupSession
from portal.services.archive_index import check_index
from tests import factories


def _sql(statement: str, **params) -> None:
    db.session.rollback()
    db.session.execute(text(statement), params)
    db.session.commit()


def _doc(seq: int) -> ArchivedDocument:
    db.session.expire_all()
    return db.session.scalar(db.select(ArchivedDocument).where(ArchivedDocument.entry_seq == seq))


def _pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(data)).pages).split())


def _extract_url(doc_id: int, patient_id: int) -> str:
    return f"/documents/{doc_id}/patients/{patient_id}/extract.pdf"


def _refused(resp) -> str:
    body = resp.get_data(as_text=True)
    assert resp.status_code == 500, body[:300]
    assert not resp.data.startswith(b"%PDF")
    assert "audit verify" in body
    return html.unescape(body)


# --- 1. the whole PDF: the chain entry names the file ------------------------------------

def test_swapped_index_hash_does_not_serve_another_entrys_pdf(client, login, runner, world, closed):
    """QA repro: the index row of entry 1 given entry 2's document hash. Before the fix the
    download served entry 2's roster as entry 1's while /verify/1 said Verified."""
    one, two = _doc(1), _doc(2)
    one_id, one_sha, two_sha = one.id, one.doc_sha256, two.doc_sha256
    login.as_(world.billing)
    good = client.get(f"/documents/{one_id}.pdf")
    assert good.status_code == 200 and hashlib.sha256(good.data).hexdigest() == one_sha

    _sql("UPDATE archived_documents SET doc_sha256 = (SELECT doc_sha256 FROM archived_documents "
         "WHERE entry_seq = 2) WHERE entry_seq = 1")
    resp = client.get(f"/documents/{one_id}.pdf")
    body = _refused(resp)
    assert "archive index disagrees with the chain" in body
    assert hashlib.sha256(resp.data).hexdigest() != two_sha
    # the patient's extract of that document is refused as well
    assert client.get(_extract_url(one_id, world.patients[0].id)).status_code == 500
    # the QR page still verifies the entry itself, but says the index disagrees
    page = client.get("/verify/1").get_data(as_text=True)
    assert "archive index disagrees with this entry" in page
    assert "download the archived PDF" not in page
    # and `audit verify` names the document and the entry
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1, res.output
    assert (f"FAIL portal index: archived document {one_id} (entry 1): its document hash "
            f"{two_sha} is not the entry's {one_sha}") in res.output
    assert "archived document 2" not in res.output  # the other row is fine


@pytest.mark.parametrize("change, message", [
    ("SET kind = 'reconciliation'", "its kind 'reconciliation' is not the entry's 'roster'"),
    ("SET dos = '2001-01-01'", "its date of service 2001-01-01 is not the entry's "),
])
def test_index_row_kind_or_date_disagreeing_with_the_entry(client, login, runner, world, closed,
                                                           change, message):
    doc = _doc(1)
    _sql(f"UPDATE archived_documents {change} WHERE id = :id", id=doc.id)
    login.as_(world.billing)
    assert message in _refused(client.get(f"/documents/{doc.id}.pdf"))
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1
    assert f"FAIL portal index: archived document {doc.id} (entry 1): {message}" in res.output


def test_index_row_naming_a_missing_entry(client, login, runner, world, closed):
    doc = _doc(2)
    _sql("UPDATE archived_documents SET entry_seq = 99 WHERE id = :id", id=doc.id)
    login.as_(world.billing)
    assert "entry #99 for this document is missing" in _refused(client.get(f"/documents/{doc.id}.pdf"))
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1
    assert f"FAIL portal index: archived document {doc.id} (entry 99): names a chain entry that does not exist" in res.output


def test_deleted_patient_row_is_caught(client, login, runner, world, closed, tmp_path):
    """Deleting the other patients' rows of a group roster would make it look like a
    one-patient document (whole-document access for a scoped auditor, no withholding in an
    export): the row count must match the entry's line commitments."""
    doc = _doc(1)
    alvarez = world.patients[0]
    _sql("DELETE FROM archived_document_patients WHERE document_id = :d AND patient_id <> :p",
         d=doc.id, p=alvarez.id)
    login.as_(world.auditor)  # scoped to alvarez's payer: the roster now looks like hers alone
    body = _refused(client.get(f"/documents/{doc.id}.pdf"))
    assert "it lists 1 patient but the entry commits to 4 patient lines" in body
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1
    assert (f"FAIL portal index: archived document {doc.id} (entry 1): it lists 1 patient but the "
            f"entry commits to 4 patient lines") in res.output

    # ...and a patient export withholds the roster: "whole" is decided by the entry
    out = tmp_path / "alvarez.zip"
    day = doc.dos.isoformat()
    res = runner.invoke(args=["audit", "export", "--patient", alvarez.mrn, "--from", day, "--to", day, str(out)])
    assert res.exit_code == 0, res.output
    names = zipfile.ZipFile(out).namelist()
    assert "documents/00000001.pdf" not in names and "lines/00000001-0.json" in names

def test_clean_index_verifies(runner, closed):
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output
    assert "portal index" not in res.output
    assert check_index(db.session.connection()) == []


def test_reconciliation_lines_pass_the_index_check(app, runner, world):
    from portal.services.reconciliation import reconcile_day
    from tests.web.test_billing_board import DAY, prepare_day

    prepare_day(world)
    reconcile_day(world.program, DAY, world.billing, app.extensions["rulebook"])
    assert db.session.scalar(text("SELECT count(*) FROM archived_document_patients")) > 1
    assert check_index(db.session.connection()) == []
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output


# --- 2. the extract: printed from the verified line only ---------------------------------

def _line_row(doc_id: int, patient_id: int) -> ArchivedDocumentPatient:
    db.session.expire_all()
    return db.session.get(ArchivedDocumentPatient, (doc_id, patient_id))


def test_edited_line_changes_no_extract(client, login, runner, world, closed):
    """QA repro: minutes_attended edited in archived_document_patients.line_json. Before the fix
    the extract printed the new number and `audit verify` said OK."""
    doc, alvarez = _doc(1), world.patients[0]
    row = _line_row(doc.id, alvarez.id)
    line = json.loads(row.line_json)
    login.as_(world.auditor)
    ok = client.get(_extract_url(doc.id, alvarez.id))
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert f"Minutes attended {line['minutes_attended']}" in _pdf_text(ok.data)

    forged = dict(line, minutes_attended="240")
    _sql("UPDATE archived_document_patients SET line_json = :j WHERE document_id = :d AND patient_id = :p",
         j=json.dumps(forged, sort_keys=True), d=doc.id, p=alvarez.id)
    body = _refused(client.get(_extract_url(doc.id, alvarez.id)))
    assert "not one of the lines chain entry #1 commits to" in body
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1, res.output
    assert (f"FAIL portal index: archived document {doc.id}, patient {alvarez.id} (entry 1): the "
            f"stored line of this patient is not one of the lines") in res.output.replace("The stored", "the stored")


@pytest.mark.parametrize("column, value", [
    ("line_salt", "00" * 32),
    ("line_salt", "not hex"),
    ("line_json", "[1, 2]"),
    ("line_json", '{"minutes_attended": 1.5}'),
])
def test_damaged_line_or_salt_refuses_the_extract(client, login, runner, world, closed, column, value):
    doc, alvarez = _doc(1), world.patients[0]
    _sql(f"UPDATE archived_document_patients SET {column} = :v WHERE document_id = :d AND patient_id = :p",
         v=value, d=doc.id, p=alvarez.id)
    login.as_(world.auditor)
    _refused(client.get(_extract_url(doc.id, alvarez.id)))
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1
    assert f"archived document {doc.id}, patient {alvarez.id} (entry 1)" in res.output


def test_another_patients_line_filed_under_this_patient(client, login, runner, world, closed):
    """A real, committed line of the same entry, copied to another patient's row: its
    commitment is in the entry, but it is not this patient's line."""
    doc = _doc(1)
    alvarez, obrien = world.patients[0], world.patients[1]
    src = _line_row(doc.id, obrien.id)
    _sql("UPDATE archived_document_patients SET line_json = :j, line_salt = :s "
         "WHERE document_id = :d AND patient_id = :p",
         j=src.line_json, s=src.line_salt, d=doc.id, p=alvarez.id)
    login.as_(world.billing)
    assert "another patient's line" in _refused(client.get(_extract_url(doc.id, alvarez.id)))
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1
    assert f"archived document {doc.id}, patient {alvarez.id} (entry 1)" in res.output


def test_extract_facts_come_from_the_line_not_the_tables(client, login, world, closed, thawed_rosters):
    """Session, facilitator and patient rows edited after the close change nothing on the
    extract: every fact is printed from the verified line (or the entry)."""
    doc, alvarez = _doc(1), world.patients[0]
    line = json.loads(_line_row(doc.id, alvarez.id).line_json)
    session = db.session.scalar(db.select(GroupSession).where(GroupSession.document_id == doc.id))
    fac_name = world.facilitator.name
    _sql("UPDATE group_sessions SET place_of_service = '02', modality = 'video' WHERE id = :id", id=session.id)
    _sql("UPDATE users SET npi = '1999999999', credential = 'MD', name = 'Someone Else' WHERE id = :id",
         id=session.facilitator_id)
    _sql("UPDATE patients SET mrn = '999999' WHERE id = :id", id=alvarez.id)
    login.as_(world.auditor)
    resp = client.get(_extract_url(doc.id, alvarez.id))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    pdf = _pdf_text(resp.data)
    for expected in (f"MRN {line['mrn']}", f"Date of service {line['dos']}", "Group AM IOP",
                     f"Facilitator {fac_name}", f"Facilitator NPI {line['facilitator_npi']}",
                     "Modality In person", f"Attendance {line['status_label']}",
                     f"Minutes attended {line['minutes_attended']}", line["signature_sha256"][:16]):
        assert expected in pdf, (expected, pdf)
    for edited in ("1999999999", "Someone Else", "999999", "Telehealth", "not covered"):
        assert edited not in pdf, edited
    assert "Salt" in pdf and "Line commitment" in pdf


def test_signature_image_checked_against_the_line(client, login, world, closed, thawed_rosters):
    doc, alvarez = _doc(1), world.patients[0]
    session = db.session.scalar(db.select(GroupSession).where(GroupSession.document_id == doc.id))
    other = db.session.scalar(text("SELECT signature_png FROM attendance_entries WHERE session_id = :s "
                                   "AND patient_id <> :p AND signature_png IS NOT NULL"),
                              {"s": session.id, "p": alvarez.id})
    _sql("UPDATE attendance_entries SET signature_png = :png WHERE session_id = :s AND patient_id = :p",
         png=other, s=session.id, p=alvarez.id)
    login.as_(world.auditor)
    body = _refused(client.get(_extract_url(doc.id, alvarez.id)))
    assert "signature image on record does not match" in body


def test_lines_without_session_facts_label_what_is_not_covered(client, login, world, monkeypatch):
    """Documents archived before lines carried the session's facts and the signature hash: the
    extract still prints them from the portal's tables, labelled as not covered by the proof."""
    from portal.clock import local_today
    from portal.services import roster as roster_service
    from portal.services.schedule import ensure_sessions

    real = roster_service.archive_document
    legacy_keys = ("dos", "cohort", "modality", "modality_label", "place_of_service",
                   "facilitator_name", "facilitator_credential", "facilitator_npi", "signature_sha256")

    def archive_legacy(**kw):
        kw["patient_lines"] = [type(pl)(pl.patient_id, {k: v for k, v in pl.line.items() if k not in legacy_keys})
                               for pl in kw["patient_lines"]]
        return real(**kw)

    monkeypatch.setattr(roster_service, "archive_document", archive_legacy)
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    closed_am = factories.sign_and_close(session, world.facilitator)
    alvarez = world.patients[0]
    login.as_(world.auditor)
    resp = client.get(_extract_url(closed_am.document_id, alvarez.id))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    pdf = _pdf_text(resp.data)
    assert f"NPI {world.facilitator.npi} ({NOT_COVERED})" in pdf
    assert SIGNATURE_NOT_COVERED in pdf
    assert f"Date of service {session.dos.isoformat()}" in pdf  # from the chain entry's subject
    assert f"Date of service {session.dos.isoformat()} ({NOT_COVERED})" not in pdf


def test_extract_facts_prefers_line_then_entry_then_records():
    entry = {"subject": {"dos": "2026-11-18", "cohort": "AM IOP"}}
    records = {"patient": "Table Name", "mrn": "1", "dos": "1999-01-01", "cohort": "Table cohort",
               "facilitator": "Table Fac", "facilitator_npi": "111", "modality": "Table mod",
               "place_of_service": "99"}
    facts = {f.label: f for f in extract_facts(
        {"name": "Line Name", "mrn": "2", "status": "present", "status_label": "Present",
         "place_of_service": "57", "facilitator_npi": "", "minutes_attended": "185"},
        entry, records=records)}
    assert (facts["Patient"].value, facts["Patient"].covered) == ("Line Name · MRN 2", True)
    assert (facts["Date of service"].value, facts["Date of service"].covered) == ("2026-11-18", True)
    assert (facts["Place of service"].value, facts["Place of service"].covered) == ("57", True)
    assert (facts["Facilitator NPI"].value, facts["Facilitator NPI"].covered) == ("none recorded", True)
    assert (facts["Facilitator"].value, facts["Facilitator"].covered) == ("Table Fac", False)
    assert (facts["Modality"].value, facts["Modality"].covered) == ("Table mod", False)
    assert facts["Attendance"].value == "Present" and facts["Minutes attended"].value == "185"
    assert "Status" not in facts
