"""Exports: the claim-line CSV job on the task queue (progress partial, download, disclosure
row, user scoping; the queue itself in tests/web/test_jobs.py) and the X12 837P file (structure checked segment by segment), plus bad input."""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import timedelta

import pytest

from tests.x12_check import assert_valid_837p

from portal.extensions import db
from portal.models import AccessLogEntry, BackgroundJob
from tests import factories
from tests.web.test_billing_board import DAY, prepare_day


@pytest.fixture
def two_days(world):
    """Nov 17 (PM roster closed: Patel ready) and Nov 18 (see test_billing_board)."""
    prepare_day(world, DAY - timedelta(days=1), close_pm=True)
    prepare_day(world, DAY)
    return DAY - timedelta(days=1), DAY


def token(client):
    return factories.csrf_from(client.get("/billing/exports").get_data(as_text=True))


def exports_logged(endpoint=None):
    q = db.select(AccessLogEntry).where(AccessLogEntry.method == "EXPORT")
    if endpoint:
        q = q.where(AccessLogEntry.endpoint == endpoint)
    db.session.expire_all()
    return db.session.scalars(q.order_by(AccessLogEntry.id)).all()


def run_csv_export(client, run_jobs, data) -> tuple[str, str]:
    """Start an export through htmx (queued: the partial polls), run the queue as a worker
    would, poll once; returns (job id, partial)."""
    resp = client.post("/billing/exports", data={"csrf_token": token(client), **data},
                       headers={"HX-Request": "true"})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    first = resp.get_data(as_text=True)
    job_id = re.search(r"/jobs/([\w-]+)", first).group(1)
    assert 'hx-trigger="every 1s"' in first and "<progress" in first
    assert "Waiting for a worker" in first
    assert run_jobs() == 1
    done = client.get(f"/jobs/{job_id}", headers={"HX-Request": "true"})
    return job_id, done.get_data(as_text=True)


def read_csv(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_csv_export_ready_lines_with_progress_and_disclosure(client, login, world, two_days, run_jobs):
    first, last = two_days
    login.as_(world.billing)
    job_id, partial = run_csv_export(client, run_jobs, {"from": first.isoformat(), "to": last.isoformat()})
    assert "Claim-line export ready." in partial and "every 1s" not in partial
    assert "5 lines for 3 patients." in partial
    assert f"/jobs/{job_id}/download" in partial
    # The job's full page: the back link in the page, not in its <title>.
    full = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    title = full[full.index("<title>"):full.index("</title>")]
    assert "<a" not in title and '<a href="/billing/exports">Back to exports</a>' in full
    assert exports_logged() == []  # starting is not yet a disclosure; the download is
    resp = client.get(f"/jobs/{job_id}/download")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = read_csv(resp.data)
    got = sorted((r["dos"], r["mrn"], r["status"]) for r in rows)
    assert got == [("2026-11-17", "100231", "ready"), ("2026-11-17", "100234", "ready"),
                   ("2026-11-17", "100250", "ready"),
                   ("2026-11-18", "100231", "ready"), ("2026-11-18", "100234", "ready")]
    alvarez = next(r for r in rows if r["mrn"] == "100231" and r["dos"] == "2026-11-18")
    assert alvarez["patient_name"] == "Marisol Alvarez" and alvarez["code"] == "H0015"
    assert alvarez["modifiers"] == "HF:HQ" and alvarez["charge_cents"] == "16500"
    assert alvarez["charge_dollars"] == "165.00" and alvarez["authorization_number"] == "SMC-A-1001"
    assert alvarez["rendering_npi"] == "1487654323" and alvarez["blocking_reasons"] == ""
    (log,) = exports_logged("jobs.download")
    assert log.user_id == world.billing.id and "claim-lines CSV" in log.path
    assert "lines=5" in log.path and "ready only" in log.path


def test_csv_export_all_includes_blocked_with_reasons_for_one_payer(client, login, world, two_days, run_jobs):
    login.as_(world.admin)
    job_id, _ = run_csv_export(client, run_jobs, {"from": DAY.isoformat(), "to": DAY.isoformat(),
                                             "payer": "sunrise_medicaid_mco", "all": "1"})
    rows = read_csv(client.get(f"/jobs/{job_id}/download").data)
    by_mrn = {r["mrn"]: r for r in rows}
    assert set(by_mrn) == {"100231", "100232", "100250"}  # no other payer, no no-service rows
    assert by_mrn["100232"]["status"] == "blocked"
    assert "patient_not_signed" in by_mrn["100232"]["blocking_reasons"]
    assert by_mrn["100232"]["who_must_act"] == "facilitator"
    assert "roster_not_closed" in by_mrn["100250"]["blocking_reasons"]


def test_export_jobs_belong_to_their_user(client, login, world, two_days, run_jobs):
    login.as_(world.billing)
    job_id, _ = run_csv_export(client, run_jobs, {"from": DAY.isoformat(), "to": DAY.isoformat()})
    login.as_(world.admin)
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.get(f"/jobs/{job_id}/download").status_code == 404
    assert exports_logged() == []


def test_export_status_full_page_without_htmx(client, login, world, two_days, run_jobs):
    login.as_(world.billing)
    resp = client.post("/billing/exports", data={"csrf_token": token(client), "from": str(DAY),
                                                 "to": str(DAY)})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/jobs/")
    page = client.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "<h1>Claim-line export</h1>" in html
    assert "Refresh progress" in html  # without script, a link does the polling
    assert '<a href="/billing/exports">Back to exports</a>' in html
    run_jobs()
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Claim-line export ready." in html and "Refresh progress" not in html


@pytest.mark.parametrize("data, message", [
    ({"from": "2026-11-18", "to": "2026-11-01"}, "after the end date"),
    ({"from": "2025-11-01", "to": "2026-11-18"}, "at most one year"),
    ({"from": "2026-11-01", "to": "2026-11-31"}, "not a date"),
    ({"from": "2026-11-01", "to": "2026-11-18", "payer": "acme_health"}, "no payer"),
])
def test_bad_export_input_is_400_and_starts_nothing(client, login, world, app, data, message):
    login.as_(world.billing)
    for url in ("/billing/exports", "/billing/837p"):
        payload = {"payer": "sunrise_medicaid_mco", **data}
        resp = client.post(url, data={"csrf_token": token(client), **payload})
        assert resp.status_code == 400, (url, resp.get_data(as_text=True))
        assert message in resp.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(BackgroundJob)) == 0
    assert exports_logged() == []


@pytest.mark.parametrize("data", [{"from": "", "to": ""}, {"from": "2026-11-01"}, {"to": " "}])
def test_a_posted_csv_export_needs_both_dates(client, login, world, data):
    """QA: a raw POST without dates exported a default range nobody asked for."""
    login.as_(world.billing)
    resp = client.post("/billing/exports", data={"csrf_token": token(client), **data})
    assert resp.status_code == 400
    assert "Give the first and the last date of service" in resp.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(BackgroundJob)) == 0


# ----------------------------------------------------------------------------------------
# 837P
# ----------------------------------------------------------------------------------------

def segments(text: str) -> list[list[str]]:
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def check_837p_structure(text: str) -> dict:
    """Envelope and claim arithmetic of one interchange (and pyx12 plus the situational rules
    it skips); returns what a test needs to look at."""
    assert_valid_837p(text)
    segs = segments(text)
    ids = [s[0] for s in segs]
    assert ids[0] == "ISA" and ids[1] == "GS" and ids[2] == "ST" and ids[-2:] == ["GE", "IEA"]
    isa, gs, st = segs[0], segs[1], segs[2]
    se, ge, iea = segs[-3], segs[-2], segs[-1]
    assert se[0] == "SE"
    assert isa[13] == iea[2], "ISA13 = IEA02"
    assert gs[6] == ge[2], "GS06 = GE02"
    assert st[2] == se[2], "ST02 = SE02"
    assert int(se[1]) == len(segs) - 4, "SE01 counts ST..SE inclusive"
    assert st[3] == gs[8] == "005010X222A1"
    assert len(segs[0]) == 17 and len("*".join(isa)) == 105  # fixed-width ISA
    claims = []
    for i, s in enumerate(segs):
        if s[0] == "CLM":
            body = []
            for t in segs[i + 1:]:
                if t[0] in ("CLM", "HL", "SE"):
                    break
                body.append(t)
            claims.append((s, body))
    out = {"isa13": isa[13], "claims": claims}
    for clm, body in claims:
        sv1 = [t for t in body if t[0] == "SV1"]
        cents = sum(round(float(t[2]) * 100) for t in sv1)
        assert round(float(clm[2]) * 100) == cents, "CLM02 = sum of SV102"
        kinds = [t[0] for t in body]
        first_lx = kinds.index("LX")
        assert kinds.count("DTP") == len(sv1) == kinds.count("LX")
        for j, t in enumerate(body):
            if t[0] == "SV1":
                assert body[j + 1][:2] == ["DTP", "472"] and body[j + 1][2] == "D8"
        assert all(t[0] != "REF" or j < first_lx for j, t in enumerate(body)), "REF*G1 at claim level"
    return out


def post_837p(client, payer, first, last, **extra):
    return client.post("/billing/837p", data={"csrf_token": token(client), "payer": payer,
                                              "from": first.isoformat(), "to": last.isoformat(),
                                              **extra})


def run_837p(client, run_jobs, resp):
    """A good form starts a job (303 to its progress page); run it; returns (job page html,
    download response or None)."""
    assert resp.status_code == 303, resp.get_data(as_text=True)
    job_url = resp.headers["Location"]
    assert job_url.startswith("/jobs/")
    assert "Waiting for a worker" in client.get(job_url).get_data(as_text=True)
    assert run_jobs() == 1
    html = client.get(job_url).get_data(as_text=True)
    if "837P claim file ready." not in html:
        return html, None
    return html, client.get(f"{job_url}/download")


def sent_837p(client, run_jobs, payer, first, last, **extra):
    """Post the form, run the job, download: the 200 response with the file."""
    html, resp = run_837p(client, run_jobs, post_837p(client, payer, first, last, **extra))
    assert resp is not None, html
    assert resp.status_code == 200
    return resp


def test_837p_structure_and_control_numbers(client, login, world, two_days, run_jobs):
    first, last = two_days
    login.as_(world.billing)
    html, resp = run_837p(client, run_jobs, post_837p(client, "sunrise_medicaid_mco", first, last))
    assert "Export #1: 2 claims, 3 lines, $495.00, ISA13 000000001." in html
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/edi-x12"
    assert resp.headers["Content-Disposition"] == \
        f"attachment; filename=837p-sunrise_medicaid_mco-{first}-{last}-000000001.x12"
    text = resp.get_data(as_text=True)
    info = check_837p_structure(text)
    assert info["isa13"] == "000000001"
    claims = defaultdict(list)
    for clm, body in info["claims"]:
        claims[clm[1].split("-")[0]].append((clm, body))
    assert set(claims) == {"100231", "100250"}  # Alvarez both days; Patel on the 17th only
    (alvarez_clm, body), = claims["100231"]
    assert alvarez_clm[2] == "330"  # two $165 days in one claim under one authorization
    sv1 = [t for t in body if t[0] == "SV1"]
    assert [t[1] for t in sv1] == ["HC:H0015:HF:HQ", "HC:H0015:HF:HQ"]
    assert [t[3:5] for t in sv1] == [["UN", "1"], ["UN", "1"]]
    assert [t[3] for t in body if t[:2] == ["DTP", "472"]] == ["20261117", "20261118"]
    assert ["REF", "G1", "SMCA1001"] in body
    # 2310B: the rendering clinician (Dana, LCSW) differs from the billing NPI
    dana = ["NM1", "82", "1", "WHITFIELD", "DANA", "", "", "", "XX", "1487654323"]
    assert body.index(dana) < [t[0] for t in body].index("LX")  # claim level, before the lines
    (patel_clm, patel_body), = claims["100250"]
    assert ["NM1", "82", "1", "GREENE", "MARCUS", "", "", "", "XX", "1598765430"] in patel_body
    assert "NM1*85*2*LAKESHORE RECOVERY IOP*****XX*1234567893" in text
    (log,) = exports_logged("billing.x12_837p")  # making the file is the disclosure
    assert "ISA13=000000001" in log.path and "lines=3" in log.path
    (dl,) = exports_logged("jobs.download")  # and so is each download of it
    assert "EXPORT 837P file export=1 ISA13=000000001" in dl.path
    # the same lines again: refused, naming the earlier export, with the lines listed
    html, none = run_837p(client, run_jobs, post_837p(client, "sunrise_medicaid_mco", first, last))
    assert none is None and 'role="alert"' in html and "already sent in export #1" in html
    assert "<li>100231 Nov 17</li>" in html
    assert len(exports_logged("billing.x12_837p")) == 1
    # an explicit replacement of export #1: frequency 7 with each original claim's reference
    _, resp = run_837p(client, run_jobs, post_837p(client, "sunrise_medicaid_mco", first, last,
                                                   frequency="7", replaces="1"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    replacement = check_837p_structure(resp.get_data(as_text=True))
    assert replacement["isa13"] == "000000002"
    for clm, body in replacement["claims"]:
        assert clm[5].endswith(":B:7") and ["REF", "F8", clm[1]] in body


def test_837p_refusals_write_nothing(client, login, world, two_days, run_jobs):
    first, last = two_days
    login.as_(world.billing)
    html, none = run_837p(client, run_jobs, post_837p(client, "self_pay", first, last))
    assert none is None and "Self-pay days are not billed to a payer" in html
    # García-López lacks an authorization
    html, none = run_837p(client, run_jobs, post_837p(client, "blueriver_ppo", first, last))
    assert none is None and "No ready lines for BlueRiver PPO" in html
    missing = client.post("/billing/837p", data={"csrf_token": token(client), "from": str(first),
                                                 "to": str(last)})
    assert missing.status_code == 400 and "Choose a payer" in missing.get_data(as_text=True)
    assert exports_logged() == []
    assert db.session.scalar(db.select(db.func.count()).select_from(db.text("claim_exports"))) == 0
