"""A payer's auditor (a grant for the payer's members) sees only that payer's members, and gets
a one-patient extract, never a whole group roster that names other payers' members. Out of scope
is 404, never 403."""
from __future__ import annotations

from io import BytesIO

import pytest
from pypdf import PdfReader

from portal.access_scope import is_scoped, may_download_whole
from portal.clock import local_today
from portal.services.schedule import ensure_sessions
from tests import factories


@pytest.mark.parametrize("role, covered, whole", [
    ("billing", [True, False], True),
    ("auditor", [True, True], True),      # everyone on it is in their grants
    ("auditor", [True, False], False),    # mixed-payer group roster
    ("auditor", [], False),               # about no patient: program business
])
def test_may_download_whole(role, covered, whole):
    assert may_download_whole(role, covered) is whole


def test_scope_rules():
    assert is_scoped("auditor") and not any(is_scoped(r) for r in ("admin", "billing", "clinician"))


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
    assert client.get(f"/readiness/patients/{garcia.id}").status_code == 404


def test_auditor_gets_an_extract_not_the_group_roster(client, login, world, closed_am):
    alvarez = world.patients[0]
    doc_id = closed_am.document_id
    login.as_(world.auditor)
    assert client.get(f"/documents/{doc_id}.pdf").status_code == 404
    html = client.get(f"/readiness/patients/{alvarez.id}").get_data(as_text=True)
    assert f"/documents/{doc_id}/patients/{alvarez.id}/extract.pdf" in html
    resp = client.get(f"/documents/{doc_id}/patients/{alvarez.id}/extract.pdf")
    assert resp.status_code == 200
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(resp.data)).pages).split())
    assert "Marisol Alvarez" in text and "42 CFR part 2" in text and "Salt" in text
    for other in ("Brien", "García", "Nguyen", "100232", "100233", "100234"):
        assert other not in text, other
    garcia = next(p for p in world.patients if p.mrn == "100233")
    assert client.get(f"/documents/{doc_id}/patients/{garcia.id}/extract.pdf").status_code == 404


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
