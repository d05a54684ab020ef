"""A payer's auditor sees only that payer's members, and gets a one-patient extract, never a
whole group roster that names other payers' members."""
from __future__ import annotations

from io import BytesIO

import pytest
from pypdf import PdfReader

from portal.access_scope import may_download_whole, may_see_patient, sees_all_patients
from portal.clock import local_today
from portal.services.schedule import ensure_sessions
from tests import factories


@pytest.mark.parametrize("role, scope, payers, whole", [
    ("billing", None, [1, 2], True),
    ("auditor", None, [1, 2], True),     # unscoped (program-wide) auditor
    ("auditor", 1, [1, 1], True),        # everyone on it is their member
    ("auditor", 1, [1, 2], False),       # mixed-payer group roster
    ("auditor", 1, [], False),
])
def test_may_download_whole(role, scope, payers, whole):
    assert may_download_whole(role, scope, payers) is whole


def test_scope_rules():
    assert sees_all_patients("admin", None) and not sees_all_patients("auditor", 3)
    assert may_see_patient("auditor", 3, 3) and not may_see_patient("auditor", 3, 4)


@pytest.fixture
def closed_am(world):
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    return factories.sign_and_close(session, world.facilitator)


def test_auditor_sees_only_their_payers_members(client, login, world, closed_am):
    login.as_(world.auditor)
    page = client.get("/readiness/").get_data(as_text=True)
    assert "Alvarez" in page and "O&#39;Brien" in page          # Sunrise members
    assert "García" not in page and "Nguyen" not in page         # BlueRiver, self-pay
    garcia = next(p for p in world.patients if p.mrn == "100233")
    assert client.get(f"/readiness/patients/{garcia.id}").status_code == 403


def test_auditor_gets_an_extract_not_the_group_roster(client, login, world, closed_am):
    alvarez = world.patients[0]
    doc_id = closed_am.document_id
    login.as_(world.auditor)
    assert client.get(f"/documents/{doc_id}.pdf").status_code == 403
    html = client.get(f"/readiness/patients/{alvarez.id}").get_data(as_text=True)
    assert f"/documents/{doc_id}/patients/{alvarez.id}/extract.pdf" in html
    resp = client.get(f"/documents/{doc_id}/patients/{alvarez.id}/extract.pdf")
    assert resp.status_code == 200
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(resp.data)).pages).split())
    assert "Marisol Alvarez" in text and "42 CFR part 2" in text and "Salt" in text
    for other in ("Brien", "García", "Nguyen", "100232", "100233", "100234"):
        assert other not in text, other
    garcia = next(p for p in world.patients if p.mrn == "100233")
    assert client.get(f"/documents/{doc_id}/patients/{garcia.id}/extract.pdf").status_code == 403


def test_clinic_staff_still_get_the_whole_roster(client, login, world, closed_am):
    login.as_(world.billing)
    assert client.get(f"/documents/{closed_am.document_id}.pdf").status_code == 200


def test_auditor_entry_page_hides_a_mixed_roster_title(client, login, world, closed_am):
    """QA: a scoped auditor walking /verify/<n> read other payers' MRNs, groups and dates of
    service from the document titles. The entry still verifies; the title is withheld."""
    seq = closed_am.document.entry_seq
    title = closed_am.document.title
    login.as_(world.auditor)
    page = client.get(f"/verify/{seq}").get_data(as_text=True)
    assert title not in page and "neither is shown" in page
    assert closed_am.cohort.name not in page
    login.as_(world.billing)
    assert title in client.get(f"/verify/{seq}").get_data(as_text=True)
