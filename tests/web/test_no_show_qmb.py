"""Never a fee to a Qualified Medicare Beneficiary: the census import (either format) or the
billing staff set ``Patient.qmb``, and a fee on that patient is refused on the real No-shows page
with the rule and its source (42 USC 1396a(n)(3)(B))."""
from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.census.parse import COLUMNS, parse_census
from portal.extensions import db
from portal.models import AdminLogEntry, FeeLedgerEntry, Patient
from tests.factories import csrf_from, make_policy
from tests.unit.test_census_parse import GROUPS, PAYERS, csv_bytes
from tests.web.test_census_upload import upload
from tests.web.test_no_shows import _absent, _ack, _post, _today

QMB_FIXTURE = Path(__file__).parent.parent / "fixtures" / "census_qmb.csv"


@pytest.mark.parametrize("written, value", [
    ("Y", True), ("y", True), ("Yes", True), ("1", True), ("N", False), ("no", False),
    ("0", False), ("", None),
])
@pytest.mark.parametrize("header", [COLUMNS + ("QMB",), COLUMNS + (
    "Address", "City", "State", "ZIP", "Phone", "QMB")], ids=["v1", "v2"])
def test_qmb_column_in_both_census_formats(header, written, value):
    extra = {"Address": "", "City": "", "State": "", "ZIP": "", "Phone": ""}
    result = parse_census(csv_bytes({**extra, "QMB": written}, header=header), PAYERS, GROUPS)
    assert result.ok, result.errors
    assert result.rows[0].qmb is value


def test_a_bad_qmb_value_is_named_and_nothing_parsed():
    result = parse_census(csv_bytes({"QMB": "maybe"}, header=COLUMNS + ("QMB",)), PAYERS, GROUPS)
    assert [(e.column, e.reason) for e in result.errors] == [
        ("QMB", '"maybe" is not Y or N (Qualified Medicare Beneficiary)')]
    assert result.rows == []


def _charge(client, patient, session_id):
    return _post(client, f"/no-shows/patients/{patient.id}/fees", {"session_id": session_id},
                 f"/no-shows/patients/{patient.id}")


def test_census_import_sets_qmb_and_the_fee_is_refused_on_the_no_show_page(world, client, login):
    lan = world.patients[3]  # self-pay: the fee would be allowed
    policy = make_policy(world.program)
    day = _today(world) - timedelta(days=1)
    s, _ = _absent(world, day, lan)
    _ack(lan, policy, world, s.scheduled_start - timedelta(days=3))
    login.as_(world.billing)
    assert "QMB</code> is Y or N" in client.get("/admin/census/").get_data(as_text=True)

    preview = upload(client, QMB_FIXTURE.read_bytes())
    body = html.unescape(preview.get_data(as_text=True))
    assert preview.status_code == 200, body
    assert "QMB: N -> Y" in body                    # the preview names the change
    token = csrf_from(body)
    commit_token = body.split('name="token" value="')[1].split('"')[0]
    done = client.post("/admin/census/commit", data={"csrf_token": token, "token": commit_token})
    assert done.status_code == 200 and "Import written" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Patient, lan.id).qmb is True
    assert db.session.get(Patient, world.patients[0].id).qmb is False

    page = html.unescape(client.get(f"/no-shows/patients/{lan.id}").get_data(as_text=True))
    assert "Yes: never charged a fee" in page
    refused = _charge(client, lan, s.id)
    body = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 422
    assert "Qualified Medicare Beneficiaries may not be billed" in body
    assert "42 USC 1396a(n)(3)(B)" in body
    assert db.session.scalar(select(func.count()).select_from(FeeLedgerEntry)) == 0
    # The billing page shows the same decision for that absence.
    board = html.unescape(client.get(f"/billing/no-shows?date={day.isoformat()}").get_data(as_text=True))
    assert "Qualified Medicare Beneficiaries may not be billed" in board


def test_billing_sets_qmb_on_the_patient_page_logged_and_then_the_fee_is_refused(world, client, login):
    lan = world.patients[3]
    policy = make_policy(world.program)
    day = _today(world) - timedelta(days=1)
    s, _ = _absent(world, day, lan)
    _ack(lan, policy, world, s.scheduled_start - timedelta(days=3))
    url = f"/no-shows/patients/{lan.id}"

    login.as_(world.facilitator)  # facilitators and clinicians may not set it
    assert _post(client, url + "/qmb", {"qmb": "yes"}, url).status_code == 403
    login.as_(world.billing)
    bad = _post(client, url + "/qmb", {"qmb": "perhaps"}, url)
    assert bad.status_code == 422 and "Qualified Medicare Beneficiary" in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AdminLogEntry)) == 0
    assert _post(client, url + "/qmb", {"qmb": "yes"}, url).status_code == 303
    db.session.expire_all()
    assert db.session.get(Patient, lan.id).qmb is True
    log = db.session.scalar(select(AdminLogEntry))
    assert (log.object_type, log.object_id, log.before, log.after) == ("patient", lan.id, "QMB: N", "QMB: Y")
    assert "Jo Billing" in log.actor
    refused = _charge(client, lan, s.id)
    assert refused.status_code == 422
    assert "42 USC 1396a(n)(3)(B)" in html.unescape(refused.get_data(as_text=True))
    # Unset: the same fee is charged.
    assert _post(client, url + "/qmb", {"qmb": "no"}, url).status_code == 303
    assert _charge(client, lan, s.id).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(AdminLogEntry)) == 2
