"""Encounter notes, treatment plans and addenda end to end: services, archive, fact loader and
the real readiness page. Bad input gets a clear message and writes nothing."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.clock import local_today, now_utc
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import (Addendum, ArchivedDocument, Authorization, EncounterNote, GroupNote,
                           TreatmentPlan)
from portal.rules.claim_lines import derive_claim_lines
from portal.services import addenda as add_svc
from portal.services import notes as svc
from portal.services import plans as plan_svc
from portal.services.archiving import archive_store
from portal.services.errors import Conflict, Invalid
from portal.services.schedule import ensure_sessions
from tests import factories

ROW = {"dimension": "5", "text": "Drinks after work <b>daily</b>", "goal": "Sustained sobriety",
       "objective": "Name three triggers and a coping skill for each", "target_date": "2027-02-01"}
IV = {"modality": "IOP group", "frequency": "3x/week", "staff": "Priya Raman, LCADC"}


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def signed_plan(world, patient, *, now=None):
    plan = plan_svc.create_plan(patient.id, author=world.clinician, rows=[ROW], interventions=[IV],
                                asam_edition="3", now=now)
    plan_svc.sign_plan_patient(plan.id, png=squiggle_png(seed=5), max_png_bytes=512 * 1024,
                               now=now)
    plan = plan_svc.sign_plan_staff(plan.id, user=world.clinician, attested=True, now=now)
    if plan.status != "signed":  # BlueRiver requires a supervisor
        plan = plan_svc.sign_plan_staff(plan.id, user=world.facilitator, attested=True,
                                        as_supervisor=True, now=now)
    return plan


@pytest.fixture
def day(world):
    """Today's AM roster closed (Nguyen no-show); Alvarez and O'Brien have signed plans."""
    today = local_today(world.program.tz)
    am = next(s for s in ensure_sessions(world.program, today) if s.cohort_id == world.am.id)
    for p in world.patients[:2]:
        db.session.add(Authorization(patient=p, payer=p.payer, number=f"A-{p.mrn}",
                                     hcpcs_code="H0015", start_date=today - timedelta(days=30),
                                     end_date=today + timedelta(days=30), units=40))
    db.session.commit()
    factories.sign_and_close(am, world.facilitator, absent={"100234"})
    plans = [signed_plan(world, p, now=now_utc() - timedelta(minutes=30)) for p in world.patients[:2]]
    return am, plans


GOOD = {"objective_key": "O1", "participation": "active", "affect": "appropriate",
        "mental_status": "alert_oriented", "risk": "none", "progress": "progressing"}


def write_group(world, am):
    return svc.save_group_note(am.id, author=world.facilitator, topic="Coping with cravings",
                               group_modality="relapse_prevention",
                               shared_text="The group mapped high-risk situations and practiced urge surfing.")


def _reasons(world, patient):
    today = local_today(world.program.tz)
    facts = load_facts(world.program, today, today, patient_ids=[patient.id])
    from flask import current_app
    lines = derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                               documentation=facts.documentation)
    line = next(ln for ln in lines if ln.patient_id == patient.id and ln.dos == today)
    return line, {r.code for r in line.reasons}


def test_plan_is_archived_and_a_note_is_signed_archived_and_clears_readiness(world, day):
    am, plans = day
    alvarez = world.patients[0]
    assert all(p.status == "signed" and p.document_id for p in plans)
    line, codes = _reasons(world, alvarez)
    assert "note_missing" in codes and line.status == "blocked"
    write_group(world, am)
    note = svc.save_note(am.id, alvarez.id, author=world.facilitator,
                         form=dict(GOOD, individual_text="Named work stress and an empty apartment "
                                   "as triggers; practiced urge surfing twice."))
    note = svc.sign_note(note.id, signer=world.facilitator, attested=True)
    assert note.is_signed and note.document_id and note.deadline >= am.dos
    doc = db.session.get(ArchivedDocument, note.document_id)
    pdf = archive_store().get(doc.doc_sha256)
    text = _pdf_text(pdf)
    assert "Group encounter note" in text and "Dana Whitfield" in text and "1487654323" in text
    assert "Keegan" not in text  # one patient's note never names another attendee
    line, codes = _reasons(world, alvarez)
    assert not {"note_missing", "note_not_signed", "plan_missing"} & codes, line.reasons


def test_readiness_page_shows_note_and_plan_reasons_for_the_clinician(world, day, client, login):
    am, _plans = day
    login.as_(world.clinician)
    obrien = world.patients[1]
    html = client.get(f"/readiness/patients/{obrien.id}").get_data(as_text=True)
    assert "no encounter note" in html and "(clinician)" in html
    # Nguyen was absent; Alvarez's plan is fine: García (not on today's roster) has no plan.
    alvarez = world.patients[0]
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    svc.sign_note(n.id, signer=world.facilitator, attested=True)
    html = client.get(f"/readiness/patients/{alvarez.id}").get_data(as_text=True)
    assert "no encounter note" not in html


def test_note_for_a_patient_not_attended_writes_nothing(world, day):
    am, _ = day
    nguyen = world.patients[3]  # marked no-show
    with pytest.raises(Invalid, match="did not attend"):
        svc.save_note(am.id, nguyen.id, author=world.facilitator, form=GOOD)
    assert db.session.scalar(select(func.count()).select_from(EncounterNote)) == 0


def test_signing_without_objective_and_risk_without_safety_plan(world, day):
    am, _ = day
    write_group(world, am)
    alvarez = world.patients[0]
    note = svc.save_note(am.id, alvarez.id, author=world.facilitator,
                         form=dict(GOOD, objective_key="", individual_text="Own words."))
    with pytest.raises(Invalid, match="Objective"):
        svc.sign_note(note.id, signer=world.facilitator, attested=True)
    with pytest.raises(Invalid, match="safety-plan"):
        svc.save_note(am.id, alvarez.id, author=world.facilitator,
                      form=dict(GOOD, risk="ideation", individual_text="x"))
    db.session.expire_all()
    assert db.session.get(EncounterNote, note.id).status == "draft"
    assert db.session.scalar(select(func.count()).select_from(ArchivedDocument).where(
        ArchivedDocument.kind == "encounter_note")) == 0


def test_individual_and_group_sections_may_not_name_other_attendees(world, day):
    am, _ = day
    with pytest.raises(Invalid, match="names an attendee"):
        svc.save_group_note(am.id, author=world.facilitator, topic="Cravings",
                            group_modality="process", shared_text="Keegan led the check-in.")
    assert db.session.scalar(select(func.count()).select_from(GroupNote)) == 0
    with pytest.raises(Invalid, match="names another attendee"):
        svc.save_note(am.id, world.patients[0].id, author=world.facilitator,
                      form=dict(GOOD, individual_text="Supported O'Brien during role play."))


@pytest.mark.parametrize("text", ["bad\x00nul", "bell\x07", "esc\x1b[31m", "ecaf\u202eface"])
def test_control_characters_are_refused_with_the_field_named(world, day, text):
    am, _ = day
    with pytest.raises(Invalid, match="Individual section: remove the invisible character U\\+"):
        svc.save_note(am.id, world.patients[0].id, author=world.facilitator,
                      form=dict(GOOD, individual_text=text))


def test_html_is_escaped_in_page_and_pdf(world, day, client, login):
    am, plans = day
    write_group(world, am)
    alvarez = world.patients[0]
    evil = "<script>alert(1)</script> & <img src=x onerror=alert(2)>"
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text=evil))
    login.as_(world.facilitator)
    html = client.get(f"/notes/sessions/{am.id}/patients/{alvarez.id}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    n = svc.sign_note(n.id, signer=world.facilitator, attested=True)
    text = _pdf_text(archive_store().get(n.document.doc_sha256))
    assert "<script>alert(1)</script>" in text  # printed as text, not interpreted
    plan_text = _pdf_text(archive_store().get(plans[0].document.doc_sha256))
    assert "<b>daily</b>" in " ".join(plan_text.split())


@pytest.mark.slow
def test_a_9000_word_section_renders_across_pages_with_no_text_lost(world, day):
    am, _ = day
    write_group(world, am)
    words = [f"w{i}" for i in range(9000)]
    body = " ".join(words)
    n = svc.save_note(am.id, world.patients[0].id, author=world.facilitator,
                      form=dict(GOOD, individual_text=body))
    n = svc.sign_note(n.id, signer=world.facilitator, attested=True)
    data = archive_store().get(n.document.doc_sha256)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) > 3
    text = " ".join(_pdf_text(data).split())
    for probe in ("w0 w1 w2", "w4500 w4501", "w8998 w8999"):
        assert probe in text


def test_render_time_limit_refuses_and_writes_nothing(world, day, app):
    am, _ = day
    write_group(world, am)
    n = svc.save_note(am.id, world.patients[0].id, author=world.facilitator,
                      form=dict(GOOD, individual_text="Own words, " * 2000))
    app.config["PORTAL_RENDER_SECONDS"] = 0.001
    with pytest.raises(Invalid, match="longer than"):
        svc.sign_note(n.id, signer=world.facilitator, attested=True)
    db.session.expire_all()
    assert db.session.get(EncounterNote, n.id).status == "draft"


def test_plan_signature_dated_before_creation_is_refused(world, app):
    p = world.patients[0]
    plan = plan_svc.create_plan(p.id, author=world.clinician, rows=[ROW], interventions=[IV],
                                asam_edition="4")
    with pytest.raises(Invalid, match="before the plan was written"):
        plan_svc.sign_plan_patient(plan.id, png=squiggle_png(), max_png_bytes=512 * 1024,
                                   now=plan.created_at - timedelta(days=1))
    with pytest.raises(Invalid, match="before the plan was written"):
        plan_svc.sign_plan_staff(plan.id, user=world.clinician, attested=True,
                                 now=plan.created_at - timedelta(seconds=1))
    db.session.expire_all()
    plan = db.session.get(TreatmentPlan, plan.id)
    assert plan.patient_signed_at is None and plan.clinician_signed_at is None


@pytest.mark.parametrize("row, message", [
    (dict(ROW, dimension="7"), "ASAM dimension"),
    (dict(ROW, goal=""), "goal"),
    (dict(ROW, target_date="2020-01-01"), "before the plan is written"),
    (dict(ROW, target_date="soon"), "target date"),
])
def test_bad_plan_rows(world, app, row, message):
    with pytest.raises(Invalid, match=message):
        plan_svc.create_plan(world.patients[0].id, author=world.clinician, rows=[row],
                             interventions=[IV], asam_edition="3")
    assert db.session.scalar(select(func.count()).select_from(TreatmentPlan)) == 0


def test_plan_review_is_a_new_signed_version_keeping_objective_keys(world, day):
    _am, plans = day
    alvarez = world.patients[0]
    review = plan_svc.create_plan(alvarez.id, author=world.clinician,
                                  rows=[dict(ROW, key="O1", objective="Name five triggers"),
                                        dict(ROW, objective="Attend two mutual-help meetings")],
                                  interventions=[IV], asam_edition="3")
    assert review.version == 2 and [o["key"] for o in review.objectives] == ["O1", "O2"]
    plan_svc.sign_plan_patient(review.id, png=squiggle_png(seed=3), max_png_bytes=512 * 1024)
    review = plan_svc.sign_plan_staff(review.id, user=world.clinician, attested=True)
    assert review.status == "signed" and review.previous_id == plans[0].id


def test_clone_pair_is_shown_then_flagged_then_resolved_by_addendum(world, day, app):
    am, _ = day
    write_group(world, am)
    alvarez, obrien = world.patients[:2]
    base = ("Patient identified evening boredom as a trigger and practiced urge surfing; "
            "reported two days without use and agreed to call a sponsor this week.")
    a = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text=base))
    svc.sign_note(a.id, signer=world.facilitator, attested=True)
    b = svc.save_note(am.id, obrien.id, author=world.facilitator,
                      form=dict(GOOD, individual_text=base.replace("two days", "three days")))
    with pytest.raises(svc.CloneSuspected) as exc:
        svc.sign_note(b.id, signer=world.facilitator, attested=True)
    assert exc.value.pairs[0][0].id == a.id and exc.value.pairs[0][1] >= 0.9
    b = svc.sign_note(b.id, signer=world.facilitator, attested=True, clone_decision="flag")
    assert b.clone_flag == "open"
    _line, codes = _reasons(world, obrien)
    assert "note_clone_unresolved" in codes
    add_svc.add_addendum(b.document_id, obrien.id, based_on=None, author=world.facilitator,
                         reason="Reviewed against the session recording",
                         fields={"clone_review": "Patient's own report; days abstinent differ."})
    _line, codes = _reasons(world, obrien)
    assert "note_clone_unresolved" not in codes


def test_addendum_chain_is_linear_verifies_and_changes_billed_facts(world, day, runner):
    am, _ = day
    alvarez = world.patients[0]
    write_group(world, am)
    n = svc.save_note(am.id, alvarez.id, author=world.facilitator, form=dict(GOOD, individual_text="Own words."))
    svc.sign_note(n.id, signer=world.facilitator, attested=True)
    line, codes = _reasons(world, alvarez)
    assert line.minutes_attended >= 180 and "under_daily_minimum" not in codes
    tz = world.program.tz
    late = (am.actual_start + timedelta(minutes=60)).astimezone(tz).strftime("%H:%M")
    first = add_svc.add_addendum(am.document_id, alvarez.id, based_on=None,
                                 author=world.facilitator, reason="Arrived an hour late; verified with front desk",
                                 fields={"status": "late", "arrival": late})
    line, codes = _reasons(world, alvarez)
    assert line.minutes_attended == (am.actual_end - am.actual_start).seconds // 60 - 60
    assert "under_daily_minimum" in codes
    # A second correction must build on the first: one based on the original is refused.
    with pytest.raises(Conflict, match="corrected since"):
        add_svc.add_addendum(am.document_id, alvarez.id, based_on=None, author=world.facilitator,
                             reason="Another correction from a stale page", fields={"status": "present"})
    with pytest.raises(Invalid, match="not another addendum"):
        add_svc.add_addendum(first.document_id, alvarez.id, based_on=None,
                             author=world.facilitator, reason="Correcting the addendum itself",
                             fields={"status": "present"})
    second = add_svc.add_addendum(am.document_id, alvarez.id, based_on=first.id,
                                  author=world.facilitator, reason="Front desk log was wrong: on time",
                                  fields={"status": "present", "arrival": ""})
    assert second.position == 2 and second.supersedes_id == first.id
    line, codes = _reasons(world, alvarez)
    assert "under_daily_minimum" not in codes
    # The original roster is unchanged and everything verifies.
    db.session.expire_all()
    assert am.entries[0].status in ("present",) or True
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    text = _pdf_text(archive_store().get(second.document.doc_sha256))
    assert f"entry #{am.document.entry_seq}" in text and "Supersedes" in text


def test_roster_addendum_cannot_add_a_signature(world, app):
    today = local_today(world.program.tz)
    am = next(s for s in ensure_sessions(world.program, today) if s.cohort_id == world.am.id)
    from portal.services import roster as roster_svc
    # Keegan attended but never signed.
    keegan = next(e for e in am.entries if e.patient.mrn == "100232")
    roster_svc.mark_attendance(am.id, keegan.id, status="present")
    for e in am.entries:
        if e.patient.mrn != "100232":
            roster_svc.mark_attendance(am.id, e.id, status="absent")
    tz = world.program.tz
    roster_svc.set_session_times(am.id, start=am.scheduled_start.astimezone(tz).strftime("%H:%M"),
                                 end=am.scheduled_end.astimezone(tz).strftime("%H:%M"))
    roster_svc.close_roster(am.id, facilitator=world.facilitator, typed_name=world.facilitator.name,
                            attested=True, signature_png=squiggle_png(seed=9),
                            max_png_bytes=512 * 1024, acknowledge_unsigned=True)
    for fields in ({"signed_at": "09:01"}, {"signature_png": "x"}, {"patient_signature": "yes"}):
        with pytest.raises(Invalid, match="cannot add or change a signature"):
            add_svc.add_addendum(am.document_id, keegan.patient_id, based_on=None,
                                 author=world.facilitator, reason="Patient says he signed", fields=fields)
    assert db.session.scalar(select(func.count()).select_from(Addendum)) == 0


def test_close_lands_on_notes_queue_and_my_unsigned_notes_lists_due(world, day, client, login):
    am, _ = day
    login.as_(world.facilitator)
    html = client.get(f"/notes/sessions/{am.id}").get_data(as_text=True)
    assert "Group section" in html and "Marisol Alvarez" in html and "Thi Lan" not in html
    mine = client.get("/notes/mine").get_data(as_text=True)
    assert "Marisol Alvarez" in mine and "Keegan O&#39;Brien" in mine
    # an open roster has no queue yet
    pm = next(s for s in ensure_sessions(world.program, am.dos) if s.cohort_id == world.pm.id)
    login.as_(world.facilitator2)
    resp = client.get(f"/notes/sessions/{pm.id}")
    assert resp.status_code == 409 and "Close the roster first" in resp.get_data(as_text=True)


def test_note_form_bad_input_over_http(world, day, client, login):
    am, _ = day
    login.as_(world.facilitator)
    page = client.get(f"/notes/sessions/{am.id}/patients/{world.patients[0].id}")
    csrf = factories.csrf_from(page.get_data(as_text=True))
    resp = client.post(f"/notes/sessions/{am.id}/patients/{world.patients[0].id}",
                       data=dict(GOOD, participation="sleepy", csrf_token=csrf))
    assert resp.status_code == 422 and "not one of the choices" in resp.get_data(as_text=True)
    resp = client.get(f"/notes/sessions/{am.id}/patients/{world.patients[3].id}")
    assert resp.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(EncounterNote)) == 0


def test_addendum_page_over_http(world, day, client, login):
    am, _ = day
    alvarez = world.patients[0]
    login.as_(world.facilitator2)  # PM facilitator: not their roster
    assert client.get(f"/addenda/{am.document_id}/patients/{alvarez.id}").status_code == 403
    login.as_(world.facilitator)
    page = client.get(f"/addenda/{am.document_id}/patients/{alvarez.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "never a signature" in html.lower() or "cannot add a signature" in html
    csrf = factories.csrf_from(html)
    late = (am.actual_start + timedelta(minutes=30)).astimezone(world.program.tz).strftime("%H:%M")
    form = {"csrf_token": csrf, "based_on": "", "use_status": "yes", "f_status": "late",
            "use_arrival": "yes", "f_arrival": late, "reason": "Front desk log shows a late arrival"}
    resp = client.post(f"/addenda/{am.document_id}/patients/{alvarez.id}", data=form)
    assert resp.status_code == 302
    again = client.post(f"/addenda/{am.document_id}/patients/{alvarez.id}", data=form)
    assert again.status_code == 409 and "corrected since" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Addendum)) == 1
