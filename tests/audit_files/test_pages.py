"""The accounting of disclosures (page and PDF), the request form's bad input, the CLI."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.audit_files.service import build_audit_file
from portal.extensions import db
from portal.models import Disclosure, Patient
from tests import factories

MRN = "100231"


def _patient():
    return db.session.scalar(select(Patient).where(Patient.mrn == MRN))


def test_accounting_empty_then_listing_the_audit_file(app, world, rosters, client, login, tmp_path):
    p = _patient()
    login.as_(world.clinician)
    resp = client.get(f"/patients/{p.id}/disclosures")
    page = resp.get_data(as_text=True)
    # Every signed-in page carries the (hidden) lock-screen dialog for lock.js, so "Not Priya
    # Raman?" in a page is not a lock: the session itself says whether it is locked.
    assert resp.status_code == 200
    with client.session_transaction() as s:
        assert s.get("_user_id") == str(world.clinician.id) and "locked_uid" not in s
    # The apostrophe is template text, not an escaped value: it reaches the page as it is.
    assert '<section class="empty-state">' in page
    assert "No disclosures of this patient's records in the last 3 years." in page

    build_audit_file(patient=MRN, first=rosters["first"], last=rosters["last"], requester=world.billing,
                     recipient="Sunrise Medicaid MCO", purpose="Payer audit", legal_basis="audit_2_53",
                     consent_scope="", out_dir=tmp_path)
    page = client.get(f"/patients/{p.id}/disclosures").get_data(as_text=True)
    assert "No disclosures" not in page and 'class="empty-state"' not in page
    assert "Sunrise Medicaid MCO" in page and "Audit and evaluation (42 CFR 2.53)" in page
    assert f"dates of service {rosters['first']} to {rosters['last']}" in page
    assert "Jo Billing (billing)" in page

    resp = client.get(f"/patients/{p.id}/disclosures.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    # Table cells wrap in the PDF's narrow columns ("Sunrise\nMedicaid\nMCO"): compare words.
    text = " ".join(" ".join(pg.extract_text() for pg in PdfReader(io.BytesIO(resp.data)).pages).split())
    assert "Accounting of disclosures" in text and "Sunrise Medicaid MCO" in text
    assert "Audit and evaluation (42 CFR 2.53)" in text and "Jo Billing (billing)" in text
    assert "No disclosures" not in text
    assert "newest first" not in text  # the web table's screen-reader caption is not printed

    # Reachable from the patient's page; another patient's accounting stays empty.
    # The patient's page is the readiness one (there is no bare /patients/<id>).
    patient_page = client.get(f"/readiness/patients/{p.id}")
    assert patient_page.status_code == 200
    assert f'href="/patients/{p.id}/disclosures"' in patient_page.get_data(as_text=True)
    other = db.session.scalar(select(Patient).where(Patient.mrn == "100232"))
    assert "No disclosures" in client.get(f"/patients/{other.id}/disclosures").get_data(as_text=True)


def test_auditor_and_facilitator_have_no_accounting_or_form(app, world, client, login):
    p = _patient()
    for user in (world.auditor, world.facilitator):
        login.as_(user)
        assert client.get(f"/patients/{p.id}/disclosures").status_code in (403, 404)
        assert client.get(f"/patients/{p.id}/audit-file").status_code in (403, 404)


@pytest.mark.parametrize("form, message", [
    ({"dos_from": "2026-12-01", "dos_to": "2026-11-01"}, "ends (2026-11-01) before it starts"),
    ({"dos_from": "0001-01-01"}, "outside 2000"),
    ({"dos_from": "garbage"}, "first date of service"),
    ({"recipient": ""}, "Say the recipient"),
    ({"purpose": "x" * 301}, "longer than 300"),
])
def test_request_form_bad_input_is_a_clear_400_and_writes_nothing(app, world, client, login, form, message):
    p = _patient()
    login.as_(world.billing)
    page = client.get(f"/patients/{p.id}/audit-file").get_data(as_text=True)
    data = {"csrf_token": factories.csrf_from(page), "dos_from": "2026-11-01", "dos_to": "2026-11-30",
            "recipient": "Payer", "purpose": "Payer audit", "legal_basis": "audit_2_53", **form}
    resp = client.post(f"/patients/{p.id}/audit-file", data=data)
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True).replace("&#39;", "'")
    assert db.session.scalar(select(func.count(Disclosure.id))) == 0


def test_cli_audit_file(app, world, rosters, runner, tmp_path):
    out = tmp_path / "files"
    res = runner.invoke(args=["audit", "file", "--patient", MRN, "--from", str(rosters["first"]),
                              "--to", str(rosters["last"]), "--out-dir", str(out)],
                        input="Sunrise Medicaid MCO\nPayer audit\naudit_2_53\n")
    assert res.exit_code == 0, res.output
    assert "3 extracts of group documents" in res.output and "recorded as disclosure #" in res.output
    assert len(list(out.glob("*.zip"))) == 1
    for args, needle in ((["--patient", "nope"], "No patient has MRN"),
                         (["--patient", MRN, "--from", "2026-12-01", "--to", "2026-11-01"], "before it starts"),
                         (["--patient", MRN, "--from", "2020-01-01", "--to", "2020-01-31"], "no archived documents")):
        base = {"--from": str(rosters["first"]), "--to": str(rosters["last"])}
        argv = ["audit", "file"]
        given = dict(zip(args[::2], args[1::2]))
        for k, v in {**base, **given}.items():
            argv += [k, v]
        res = runner.invoke(args=argv + ["--recipient", "R", "--purpose", "P", "--legal-basis", "audit_2_53",
                                         "--out-dir", str(tmp_path / "bad")])
        assert res.exit_code == 1 and needle in res.output, res.output
        assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    assert db.session.scalar(select(func.count(Disclosure.id))) == 1


def test_request_form_builds_on_the_task_queue_for_the_requester_only(app, world, rosters, client,
                                                                      login, run_jobs):
    """A good request starts a background job, the progress page polls it, and the finished
    zip (binder, manifest, verifier) downloads for the requester only; the disclosure is
    recorded once the file exists, not when it was asked for."""
    import zipfile

    p = _patient()
    login.as_(world.billing)
    page = client.get(f"/patients/{p.id}/audit-file").get_data(as_text=True)
    resp = client.post(f"/patients/{p.id}/audit-file", data={
        "csrf_token": factories.csrf_from(page), "dos_from": str(rosters["first"]),
        "dos_to": str(rosters["last"]), "recipient": "Sunrise Medicaid MCO",
        "purpose": "Payer audit", "legal_basis": "audit_2_53", "consent_scope": ""})
    assert resp.status_code == 303 and "/jobs/" in resp.headers["Location"]
    job_url = resp.headers["Location"]
    assert db.session.scalar(select(func.count(Disclosure.id))) == 0
    assert run_jobs() == 1
    page = client.get(job_url).get_data(as_text=True)
    assert "recorded as disclosure" in page
    download = client.get(job_url.rstrip("/") + "/download")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(download.data)).namelist()
    assert any(n.endswith("audit-file.pdf") for n in names)
    assert any(n.endswith("manifest.json") for n in names)
    assert db.session.scalar(select(func.count(Disclosure.id))) == 1
    login.as_(world.admin)
    assert client.get(job_url.rstrip("/") + "/download").status_code == 404


def test_request_form_through_htmx_shows_problems_then_progress_in_its_panel(app, world, rosters,
                                                                             client, login, run_jobs):
    """The form swaps only #audit-file-panel (hx-select): the answer must carry that panel, with
    the problems in it when refused and the job's polling progress when started (a redirect to
    the job page left the form empty, with no progress and no file)."""
    import re

    def panel(html: str) -> str:
        """The answer from the panel's opening tag on (nothing of the page precedes it)."""
        at = html.find('id="audit-file-panel"')
        assert at >= 0, html[:500]
        return html[at:]

    p = _patient()
    login.as_(world.billing)
    page = client.get(f"/patients/{p.id}/audit-file").get_data(as_text=True)
    data = {"csrf_token": factories.csrf_from(page), "dos_from": str(rosters["last"]),
            "dos_to": str(rosters["first"]), "recipient": "Sunrise Medicaid MCO",
            "purpose": "Payer audit", "legal_basis": "audit_2_53", "consent_scope": ""}
    htmx = {"HX-Request": "true"}
    resp = client.post(f"/patients/{p.id}/audit-file", data=data, headers=htmx)
    assert resp.status_code == 400
    refused = panel(resp.get_data(as_text=True))
    above_form = refused[:refused.index("<form")]  # inside the panel, so the swap keeps it
    assert 'role="alert"' in above_form and "before it starts" in above_form
    assert db.session.scalar(select(func.count(Disclosure.id))) == 0

    data.update(dos_from=str(rosters["first"]), dos_to=str(rosters["last"]))
    resp = client.post(f"/patients/{p.id}/audit-file", data=data, headers=htmx)
    assert resp.status_code == 202
    started = panel(resp.get_data(as_text=True))
    poll = re.search(r'class="job-progress"[^>]* hx-get="(/jobs/[^"]+)"', started)
    assert poll is not None, started
    assert run_jobs() == 1
    done = client.get(poll.group(1), headers=htmx).get_data(as_text=True)
    assert "/download" in done and "recorded as disclosure" in done
