"""An auditor's audit file (issue 14), through the real pages and the task queue: offered on the
auditor's readiness pages for patients in scope; only the dates are theirs to choose (bad ranges:
a clear 400, nothing written; a range past the grant's dates: the covered part proposed, nothing
written; no covered date at all: 404); the disclosure carries the grant's recipient, purpose,
legal basis and consent scope; expired or revoked grants are refused (404) at the request, in the
worker and at the download; every download is in the access log."""
from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.audit_files.jobs import ACCESS_ENDED
from portal.extensions import db
from portal.models import AccessLogEntry, BackgroundJob, Disclosure, Patient
from tests import factories

MRN = "100231"  # Alvarez: Sunrise Medicaid MCO, on the AM roster


def _patient(mrn=MRN):
    return db.session.scalar(select(Patient).where(Patient.mrn == mrn))


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _post(client, patient, **form):
    url = f"/auditor/patients/{patient.id}/audit-file"
    page = client.get(url)
    token = factories.csrf_from(page.get_data(as_text=True)) if page.status_code == 200 else ""
    return client.post(url, data={"csrf_token": token, **form})


def test_readiness_pages_offer_it_for_patients_in_scope(world, rosters, client, login):
    p, garcia = _patient(), _patient("100233")
    login.as_(world.auditor)
    program = client.get(f"/readiness/?from={rosters['first']}&to={rosters['last']}").get_data(as_text=True)
    assert f'href="/auditor/patients/{p.id}/audit-file"' in program
    assert f"/auditor/patients/{garcia.id}/audit-file" not in program
    page = client.get(f"/readiness/patients/{p.id}").get_data(as_text=True)
    assert f'href="/auditor/patients/{p.id}/audit-file"' in page
    form = client.get(f"/auditor/patients/{p.id}/audit-file")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="dos_from"' in html
    for field in ("recipient", "purpose", "legal_basis", "consent_scope"):
        assert f'name="{field}"' not in html  # not the auditor's to choose
    assert "Sunrise Medicaid MCO SIU" in html and "Audit and evaluation" in html
    # clinic staff keep their own form; the auditor's route is the auditor's only
    login.as_(world.billing)
    assert client.get(f"/auditor/patients/{p.id}/audit-file").status_code == 403
    assert f"/auditor/patients/{p.id}/audit-file" not in client.get(
        f"/readiness/patients/{p.id}").get_data(as_text=True)


def test_request_builds_under_the_grant_and_downloads_with_the_access_log(
        world, rosters, client, login, run_jobs):
    p = _patient()
    grant = world.auditor_grant
    grant.legal_basis, grant.consent_scope = "consent_2_31", "Attendance records, 2026"
    db.session.commit()
    login.as_(world.auditor)
    resp = _post(client, p, dos_from=str(rosters["first"]), dos_to=str(rosters["last"]),
                 recipient="Typed by the auditor", purpose="Typed purpose",
                 legal_basis="audit_2_53", consent_scope="Typed scope")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    job_url = resp.headers["Location"]
    job = db.session.scalar(select(BackgroundJob))
    assert "Typed" not in job.params and f'"grant_id": {grant.id}' in job.params
    assert _count(Disclosure) == 0  # recorded once the file exists
    assert run_jobs() == 1
    page = client.get(job_url).get_data(as_text=True)
    assert "recorded as disclosure" in page
    download = client.get(job_url + "/download")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(download.data)).namelist()
    assert any(n.endswith("audit-file.pdf") for n in names)
    d = db.session.scalar(select(Disclosure))
    assert (d.recipient, d.purpose) == (grant.recipient, grant.purpose)
    assert d.legal_basis == "Written patient consent (42 CFR 2.31)"
    assert d.consent_scope == "Attendance records, 2026"
    assert d.requester_name == "Avery Auditor (auditor)"
    assert (d.dos_from, d.dos_to) == (rosters["first"], rosters["last"])
    rows = db.session.scalars(select(AccessLogEntry).where(
        AccessLogEntry.user_id == world.auditor.id, AccessLogEntry.method == "EXPORT")).all()
    downloads = [r for r in rows if r.endpoint == "jobs.download"]
    assert len(downloads) == 1 and downloads[0].patient_id == p.id
    assert f"grant={grant.id}" in downloads[0].path and "Alvarez" not in downloads[0].path
    posted = db.session.scalar(select(AccessLogEntry).where(
        AccessLogEntry.user_id == world.auditor.id, AccessLogEntry.method == "POST",
        AccessLogEntry.endpoint == "audit_files.auditor_request"))
    assert posted.patient_id == p.id and posted.status_code == 303
    # The accounting of disclosures lists it for the program's staff.
    login.as_(world.clinician)
    accounting = client.get(f"/patients/{p.id}/disclosures").get_data(as_text=True)
    assert grant.recipient in accounting and "Avery Auditor (auditor)" in accounting


def test_htmx_request_shows_the_progress_in_the_panel(world, rosters, client, login):
    p = _patient()
    login.as_(world.auditor)
    page = client.get(f"/auditor/patients/{p.id}/audit-file").get_data(as_text=True)
    resp = client.post(f"/auditor/patients/{p.id}/audit-file", headers={"HX-Request": "true"},
                       data={"csrf_token": factories.csrf_from(page),
                             "dos_from": str(rosters["first"]), "dos_to": str(rosters["last"])})
    html = resp.get_data(as_text=True)
    job = db.session.scalar(select(BackgroundJob))
    assert resp.status_code == 202 and 'id="audit-file-panel"' in html
    assert f'hx-get="/jobs/{job.id}"' in html  # the job's own polling progress component


@pytest.mark.parametrize("form, message", [
    ({"dos_from": "garbage"}, "first date of service"),
    ({"dos_from": "2026-02-30"}, "not a date on the calendar"),
    ({"dos_to": ""}, "last date of service"),
    ({"dos_from": "LAST", "dos_to": "FIRST"}, "before it starts"),
    ({"dos_from": "FUTURE", "dos_to": "FUTURE"}, "starts in the future"),
])
def test_bad_ranges_are_a_clear_400_and_write_nothing(world, rosters, client, login, form, message):
    p = _patient()
    future = rosters["last"] + timedelta(days=3)
    swap = {"FIRST": str(rosters["first"]), "LAST": str(rosters["last"] + timedelta(days=1)),
            "FUTURE": str(future)}
    data = {"dos_from": str(rosters["first"]), "dos_to": str(rosters["last"]), **form}
    data = {k: swap.get(v, v) for k, v in data.items()}
    login.as_(world.auditor)
    resp = _post(client, p, **data)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True).replace("&#39;", "'")
    assert message in html and 'id="audit-file-errors"' in html
    assert _count(BackgroundJob) == 0 and _count(Disclosure) == 0


def test_range_past_the_grant_is_clipped_and_outside_it_is_404(world, rosters, client, login):
    p = _patient()
    world.auditor_grant.dos_from = rosters["first"] + timedelta(days=1)
    world.auditor_grant.dos_to = rosters["last"]
    db.session.commit()
    login.as_(world.auditor)
    form = client.get(f"/auditor/patients/{p.id}/audit-file").get_data(as_text=True)
    assert f'value="{rosters["first"] + timedelta(days=1)}"' in form  # defaults to the grant's dates
    resp = _post(client, p, dos_from=str(rosters["first"] - timedelta(days=10)),
                 dos_to=str(rosters["last"]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Your access covers dates of service" in html
    assert f'value="{rosters["first"] + timedelta(days=1)}"' in html and "Nothing was requested" in html
    before = rosters["first"] - timedelta(days=30)
    assert _post(client, p, dos_from=str(before), dos_to=str(before + timedelta(days=5))).status_code == 404
    assert _count(BackgroundJob) == 0 and _count(Disclosure) == 0


@pytest.mark.parametrize("ended", ["expired", "revoked"])
def test_expired_or_revoked_grant_is_refused_everywhere(world, rosters, client, login, run_jobs,
                                                        ended):
    """Ended before the request: 404 (form and post). Ended after the request: the worker
    makes nothing and records nothing. Ended after the build: the job and its file are 404."""
    p = _patient()
    grant = world.auditor_grant
    data = {"dos_from": str(rosters["first"]), "dos_to": str(rosters["last"])}

    def forget_scope():
        # The test's client shares the test's app context, and with it ``g``, where a request
        # keeps the auditor's grants; a real server starts every request afresh.
        from flask import g

        g.pop("_auditor_scope", None)

    def end():
        forget_scope()
        past = datetime.now(timezone.utc) - timedelta(seconds=1)
        if ended == "expired":
            grant.expires_at = past
        else:
            grant.revoked_at, grant.revoke_reason = past, "Audit closed"
        db.session.commit()

    def restore():
        forget_scope()
        grant.expires_at = datetime.now(timezone.utc) + timedelta(days=30)
        grant.revoked_at = grant.revoke_reason = None
        db.session.commit()

    login.as_(world.auditor)
    # 1. ended before the request
    page = client.get(f"/auditor/patients/{p.id}/audit-file").get_data(as_text=True)
    end()
    assert client.get(f"/auditor/patients/{p.id}/audit-file").status_code == 404
    resp = client.post(f"/auditor/patients/{p.id}/audit-file",
                       data={"csrf_token": factories.csrf_from(page), **data})
    assert resp.status_code == 404 and "no such record" in resp.get_data(as_text=True)
    assert _count(BackgroundJob) == 0
    # 2. ended between the request and the worker
    restore()
    job_url = _post(client, p, **data).headers["Location"]
    end()
    assert run_jobs() == 1
    job = db.session.scalar(select(BackgroundJob))
    db.session.refresh(job)
    assert job.state == "failed" and job.error == ACCESS_ENDED
    assert _count(Disclosure) == 0
    assert client.get(job_url).status_code == 404
    # 3. ended after the build: the file is no longer handed out
    restore()
    job_url = _post(client, p, **data).headers["Location"]
    assert run_jobs() == 1
    assert client.get(job_url).status_code == 200
    end()
    assert client.get(job_url).status_code == 404
    assert client.get(job_url + "/download").status_code == 404
    assert not db.session.scalars(select(AccessLogEntry).where(
        AccessLogEntry.endpoint == "jobs.download", AccessLogEntry.method == "EXPORT")).all()
