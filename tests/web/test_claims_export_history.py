"""Issue 10 end to end: POS and other-level days through the fact loader, the export history
page (byte-for-byte download, chain entry), 999 import, and the command line."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import ArchivedDocument, Authorization, ClaimExport
from portal.rules.claim_lines import derive_claim_lines
from tests.web.test_billing_board import DAY, prepare_day
from tests.web.test_billing_exports import sent_837p, token
from tests.x12_check import assert_valid_837p, pyx12_result


def test_pos_per_payer_through_the_fact_loader(world, app):
    """BlueRiver's file says POS 11; no database default may turn it into 57."""
    prepare_day(world, DAY)
    garcia = world.patients[2]  # BlueRiver
    facts = load_facts(world.program, DAY, DAY)
    lines = {ln.patient_id: ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"])
             if ln.dos == DAY}
    assert lines[garcia.id].pos == "11"
    assert lines[world.patients[0].id].pos == "57"  # Sunrise's file says 57


def test_php_authorization_blocks_iop_the_same_day_through_the_loader(world, app):
    prepare_day(world, DAY)
    alvarez = world.patients[0]
    db.session.add(Authorization(patient=alvarez, payer=alvarez.payer, number="PHP-1",
                                 hcpcs_code="H0035", level_of_care="2.5", start_date=DAY,
                                 end_date=DAY, units=1))
    db.session.commit()
    facts = load_facts(world.program, DAY, DAY)
    [ln] = [ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"])
            if ln.dos == DAY and ln.patient_id == alvarez.id]
    assert "exclusive_level_same_day" in {r.code for r in ln.reasons}
    assert ln.authorization_number == "SMC-A-1001"  # the PHP authorization is not an IOP one


def test_export_history_download_chain_and_999(client, login, world, run_jobs):
    first, last = DAY - timedelta(days=1), DAY
    prepare_day(world, first, close_pm=True)
    prepare_day(world, DAY)
    login.as_(world.billing)
    resp = sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last)
    sent = resp.data
    assert_valid_837p(sent.decode())
    export = db.session.scalar(select(ClaimExport))
    assert export.sha256 == hashlib.sha256(sent).hexdigest()
    doc = db.session.get(ArchivedDocument, export.document_id)
    assert doc.kind == "claim_837p"
    page = client.get("/billing/exports").get_data(as_text=True)
    assert "#1" in page and export.sha256[:12] in page and "000000001" in page
    assert "<td>Sunrise Medicaid MCO</td>" in page and "<td>sunrise_medicaid_mco</td>" not in page  # QA
    again = client.get(f"/billing/837p/{export.id}/download")
    assert again.data == sent
    detail = client.get(f"/billing/837p/{export.id}").get_data(as_text=True)
    assert f"entry #{doc.entry_seq}" in detail and export.sha256 in detail
    # a 999 from pyx12 for a damaged copy: rejected, errors per claim
    broken = sent.decode().replace("DTP*472*D8*20261118", "DTP*472*D8*2026111", 1)
    ok, ack, _ = pyx12_result(broken)
    assert not ok
    from io import BytesIO
    resp = client.post(f"/billing/837p/{export.id}/999",
                       data={"csrf_token": token(client), "file": (BytesIO(ack.encode()), "ack.999")},
                       content_type="multipart/form-data")
    assert resp.status_code == 303
    db.session.expire_all()
    export = db.session.get(ClaimExport, export.id)
    assert export.ack_status in ("rejected", "partial")
    detail = client.get(f"/billing/837p/{export.id}").get_data(as_text=True)
    assert "100231-20261117" in detail and "invalid date" in detail.lower()
    # a 999 for another interchange is refused and records nothing
    other = ack.replace("AK1*HC*1*", "AK1*HC*99*")
    resp = client.post(f"/billing/837p/{export.id}/999",
                       data={"csrf_token": token(client), "file": (BytesIO(other.encode()), "x.999")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "functional group 99" in resp.get_data(as_text=True)
    bad = client.post(f"/billing/837p/{export.id}/999",
                      data={"csrf_token": token(client), "file": (BytesIO(b"hello"), "x.999")},
                      content_type="multipart/form-data")
    assert bad.status_code == 422 and "not a 999" in bad.get_data(as_text=True)
    # rejected by its 999: the lines may be sent again as an original
    sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last)


def test_void_of_an_export(client, login, world, run_jobs):
    first, last = DAY - timedelta(days=1), DAY
    prepare_day(world, first, close_pm=True)
    prepare_day(world, DAY)
    login.as_(world.billing)
    sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last)
    resp = sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last, frequency="8",
                     replaces="1")
    text = resp.get_data(as_text=True)
    assert ":B:8*" in text and "REF*F8*" in text
    assert_valid_837p(text)
    # voided: the lines may go out again as originals
    sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last)


def test_form_keeps_values_and_shows_errors_inline(client, login, world):
    login.as_(world.billing)
    resp = client.post("/billing/837p", data={"csrf_token": token(client), "payer": "",
                                              "from": "2026-11-02", "to": "2026-11-31",
                                              "frequency": "7", "replaces": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="x12-payer-error"' in html and 'id="x12-to-error"' in html
    assert 'value="2026-11-02"' in html and 'value="2026-11-31"' in html


def test_cli_builds_the_same_file_and_prints_a_summary(app, world, tmp_path):
    first, last = DAY - timedelta(days=1), DAY
    prepare_day(world, first, close_pm=True)
    prepare_day(world, DAY)
    out = tmp_path / "claims.x12"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["billing", "837p", "--payer", "sunrise_medicaid_mco", "--from",
                                 str(first), "--to", str(last), "--user", world.billing.email, str(out)])
    assert result.exit_code == 0, result.output
    assert "3 lines" in result.output and "ISA13 000000001" in result.output
    assert "total $495.00" in result.output and "GS06 1" in result.output and "ST02 0001" in result.output
    assert_valid_837p(out.read_text())
    again = runner.invoke(args=["billing", "837p", "--payer", "sunrise_medicaid_mco", "--from",
                                str(first), "--to", str(last), str(tmp_path / "again.x12")])
    assert again.exit_code == 1 and "already sent in export #1" in again.output
    assert not (tmp_path / "again.x12").exists()
    exists = runner.invoke(args=["billing", "837p", "--payer", "sunrise_medicaid_mco", "--from",
                                 str(first), "--to", str(last), str(out)])
    assert exists.exit_code == 2 and "exists" in exists.output


def test_break_minutes_recorded_on_the_roster_reach_the_claim(client, login, world, app):
    """A 3-hour session with a 1-minute break is 179 min of service: H0015 is not billable."""
    from portal.services.schedule import ensure_sessions
    from tests.web.test_billing_board import authorize

    authorize(world, world.patients[0], "SMC-A-1001")
    db.session.commit()
    sessions = ensure_sessions(world.program, DAY)
    am = next(s for s in sessions if s.cohort_id == world.am.id)
    login.as_(world.facilitator)
    page = client.get(f"/sessions/{am.id}")
    from tests import factories
    csrf = factories.csrf_from(page.get_data(as_text=True))
    bad = client.post(f"/sessions/{am.id}/times", headers={"HX-Request": "true"},
                      data={"csrf_token": csrf, "start": "09:00", "end": "12:00", "modality": "in_person",
                            "break_minutes": "abc"})
    assert bad.status_code == 422 and "Breaks must be a whole number" in bad.get_data(as_text=True)
    ok = client.post(f"/sessions/{am.id}/times", headers={"HX-Request": "true"},
                     data={"csrf_token": csrf, "start": "09:00", "end": "12:00", "modality": "in_person",
                           "break_minutes": "1"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    for e in am.entries:
        e.status, e.signed_at = "present", am.actual_start
    am.status = "closed"
    db.session.commit()
    facts = load_facts(world.program, DAY, DAY)
    [ln] = [ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"])
            if ln.dos == DAY and ln.patient_id == world.patients[0].id]
    assert ln.minutes_attended == 179 and "under_daily_minimum" in {r.code for r in ln.reasons}


def test_census_with_separators_and_odd_sex_values_never_breaks_an_837p(app, world, client, login, run_jobs):
    """Every census field that reaches the 837P, with separators and odd sex values: each bad
    value blocks its line naming the field; the clean patients' 837P passes pyx12."""
    from portal.census.importer import import_census
    from portal.models import Patient
    from portal.services.schedule import ensure_sessions

    header = ("MRN,Last Name,First Name,DOB,Sex,Primary Payer,Member ID,Level of Care,Admit Date,"
              "Group,Primary Counselor,Prior Level of Care,Prior Auth #,Auth #,Auth Start,Auth End,Auth Units")
    rows = [
        ("300001", "Reyes", "Ana", "Nonbinary", "SMC300001", "IOP-300001"),     # clean; sex -> U
        ("300002", "Star*Light", "Bo", "X", "SMC300002", "IOP-300002"),         # last name
        ("300003", "Quill", "Cy~", "female", "SMC300003", "IOP-300003"),        # first name
        ("300004", "Moss", "Di", "M", "SMC:300004", "IOP-300004"),              # member ID
        ("300005", "Lark", "Ed", "F", "SMC300005", "KC*455~30"),                # authorization
        ("300006", "Wren", "Flo", "Unknown", "SMC^300006", "IOP-300006"),       # member ID
    ]
    lines = [header] + [f'{m},"{last}","{first}",01/02/1990,{sex},Sunrise Medicaid MCO,"{mid}",2.1,'
                        f'11/02/2026,AM IOP,"Dana Whitfield, LCSW",,,"{auth}",11/01/2026,12/31/2026,40'
                        for m, last, first, sex, mid, auth in rows]
    report = import_census(("\n".join(lines) + "\n").encode(), commit=True)
    assert not report.errors, report.errors
    imported = {p.mrn: p for p in db.session.scalars(select(Patient).where(Patient.mrn.like("3000%")))}
    for p in imported.values():
        p.address_line1, p.city, p.state, p.zip = "1 Elm St", "Chicago", "IL", "60614"
        p.diagnoses = "F10.20"  # the census carries no diagnosis
    assert {a.hcpcs_code for a in db.session.scalars(select(Authorization).where(
        Authorization.number.like("IOP-3000%")))} == {"H0015"}  # the payer's default code
    sessions = ensure_sessions(world.program, DAY)
    am = next(s for s in sessions if s.cohort_id == world.am.id)
    tz = world.program.tz
    from portal.clock import local_to_utc
    from datetime import time
    am.actual_start, am.actual_end = local_to_utc(DAY, time(9), tz), local_to_utc(DAY, time(12), tz)
    for e in am.entries:
        e.status, e.signed_at = "present", am.actual_start
    am.status = "closed"
    db.session.commit()
    from tests import factories
    factories.document_sessions([am], world.clinician)  # notes and plans in order (issue 11)
    facts = load_facts(world.program, DAY, DAY)
    derived = {ln.patient_id: ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"])
               if ln.dos == DAY}
    expect = {"300001": None, "300002": "last name", "300003": "first name", "300004": "member ID",
              "300005": "authorization number", "300006": "member ID"}
    for mrn, label in expect.items():
        ln = derived[imported[mrn].id]
        bad = [r.message for r in ln.reasons if r.code == "x12_invalid_value"]
        if label is None:
            assert not bad and ln.status == "ready", ln.reasons
        else:
            assert ln.status == "blocked" and bad and bad[0].startswith(label), (mrn, bad)
    login.as_(world.billing)
    resp = sent_837p(client, run_jobs, "sunrise_medicaid_mco", DAY, DAY)
    text = resp.get_data(as_text=True)
    assert_valid_837p(text)
    assert "NM1*IL*1*REYES*ANA" in text and "DMG*D8*19900102*U~" in text
    assert "STAR" not in text and "KC" not in text


def test_payer_x12_id_from_setup_is_sent(client, login, world, run_jobs):
    first, last = DAY - timedelta(days=1), DAY
    prepare_day(world, first, close_pm=True)
    prepare_day(world, DAY)
    world.payers["sunrise_medicaid_mco"].x12_payer_id = "77027"
    db.session.commit()
    login.as_(world.billing)
    text = sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last).get_data(as_text=True)
    assert "NM1*PR*2*SUNRISE MEDICAID MCO*****PI*77027~" in text


def test_auditor_extract_of_an_archived_837p_shows_only_their_member(client, login, world, run_jobs):
    first, last = DAY - timedelta(days=1), DAY
    prepare_day(world, first, close_pm=True)
    prepare_day(world, DAY)
    login.as_(world.billing)
    sent_837p(client, run_jobs, "sunrise_medicaid_mco", first, last)
    export = db.session.scalar(select(ClaimExport))
    login.as_(world.auditor)
    alvarez = world.patients[0]
    resp = client.get(f"/documents/{export.document_id}/patients/{alvarez.id}/extract.pdf")
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    whole = client.get(f"/documents/{export.document_id}.pdf")
    # every patient on a Sunrise 837P is a Sunrise member: the Sunrise auditor may see it whole
    assert whole.status_code == 200
