"""Who may sign a group's encounter note (issue 11, QA).

A signed note attests that its author provided the service, and the claim names the session's
facilitator as rendering clinician: the facilitator signs. Anyone else (a co-leader, a clinician
signing for the facilitator) signs only with a written reason, archived in the note's record and
line and printed on its PDF. Without it: a clear message naming the facilitator, nothing signed,
nothing archived. A facilitator-role user cannot even open another facilitator's group.
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ArchivedDocument, ArchivedDocumentPatient, EncounterNote
from portal.services import notes as svc
from portal.services.archiving import archive_store
from portal.services.errors import Invalid
from tests import factories

from .test_notes import GOOD, _pdf_text, day, write_group  # noqa: F401  (fixture)

REASON = "Co-led this group with the facilitator and ran the individual check-ins."


def _draft(world, am, patient, author):
    write_group(world, am)
    return svc.save_note(am.id, patient.id, author=author, form=dict(GOOD, individual_text="Own words."))


def _archived_notes() -> int:
    return db.session.scalar(select(func.count()).select_from(ArchivedDocument)
                             .where(ArchivedDocument.kind == "encounter_note"))


@pytest.mark.parametrize("reason", [None, "", "   ", "covering"])
def test_a_clinician_who_did_not_run_the_group_cannot_sign_without_a_reason(world, day, reason):  # noqa: F811
    am, _plans = day
    note = _draft(world, am, world.patients[0], world.clinician)
    with pytest.raises(Invalid, match="This group was run by Dana|who signs its notes") as err:
        svc.sign_note(note.id, signer=world.clinician, attested=True, author_reason=reason)
    assert err.value.field == "author_reason" and world.facilitator.name in err.value.message
    db.session.rollback()
    assert db.session.get(EncounterNote, note.id).status != "signed" and _archived_notes() == 0


def test_the_facilitator_signs_with_no_reason_and_none_is_archived(world, day):  # noqa: F811
    am, _plans = day
    note = _draft(world, am, world.patients[0], world.clinician)  # drafted by another clinician
    note = svc.sign_note(note.id, signer=world.facilitator, attested=True,
                         author_reason="ignored: the facilitator provided the service")
    assert note.status == "signed" and note.author_id == world.facilitator.id
    line = json.loads(db.session.scalar(select(ArchivedDocumentPatient.line_json)
                                        .where(ArchivedDocumentPatient.document_id == note.document_id)))
    assert "author_reason" not in line
    text = _pdf_text(archive_store().get(note.document.doc_sha256))
    assert "I attest that I provided this service" in text and "Reason for signing" not in text


def test_another_clinician_signs_with_a_documented_reason_archived_and_printed(world, day):  # noqa: F811
    am, _plans = day
    note = _draft(world, am, world.patients[0], world.clinician)
    note = svc.sign_note(note.id, signer=world.clinician, attested=True, author_reason=REASON)
    assert note.status == "signed" and note.author_id == world.clinician.id
    line = json.loads(db.session.scalar(select(ArchivedDocumentPatient.line_json)
                                        .where(ArchivedDocumentPatient.document_id == note.document_id)))
    assert line["author_reason"] == REASON and line["signed_by"] == world.clinician.name
    text = " ".join(_pdf_text(archive_store().get(note.document.doc_sha256)).split())
    assert "Reason for signing: " + REASON in text
    assert f"Signed for the group run by {world.facilitator.name}" in text
    assert "took part in this service as stated in the reason for signing" in text


def test_sign_form_asks_the_reason_and_refuses_without_it_over_http(world, day, client, login):  # noqa: F811
    am, _plans = day
    alvarez = world.patients[0]
    note = _draft(world, am, alvarez, world.clinician)
    login.as_(world.clinician)
    page = client.get(f"/notes/sessions/{am.id}/patients/{alvarez.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="author_reason"' in html
    csrf = factories.csrf_from(html)
    resp = client.post(f"/notes/{note.id}/sign", data={"csrf_token": csrf, "attest": "yes"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "who signs its notes" in body
    assert _archived_notes() == 0
    resp = client.post(f"/notes/{note.id}/sign", data={"csrf_token": csrf, "attest": "yes",
                                                       "author_reason": REASON})
    assert resp.status_code == 302 and _archived_notes() == 1
    # The facilitator's own page has no reason field.
    login.as_(world.facilitator)
    html = client.get(f"/notes/sessions/{am.id}/patients/{world.patients[1].id}").get_data(as_text=True)
    assert 'id="author_reason"' not in html


def test_a_facilitator_cannot_open_or_sign_another_facilitators_group(world, day, client, login):  # noqa: F811
    am, _plans = day
    alvarez = world.patients[0]
    note = _draft(world, am, alvarez, world.facilitator)
    login.as_(world.facilitator2)
    assert client.get(f"/notes/sessions/{am.id}/patients/{alvarez.id}").status_code == 403
    resp = client.post(f"/notes/{note.id}/sign", data={"attest": "yes", "author_reason": REASON})
    assert resp.status_code in (400, 403)
    assert _archived_notes() == 0
