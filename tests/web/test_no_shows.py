"""No-show policy end to end: services, pages, readiness and board integration, archive."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.clock import local_today, now_utc
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import (AbsenceNotice, ArchivedDocument, ClinicalReviewTask, FeeLedgerEntry,
                           NoShowLetter, NoShowPolicy, OutreachAttempt, PolicyAcknowledgment)
from portal.rules.no_show_letters import disclosing_words
from portal.services import no_shows as svc
from portal.services import roster as roster_svc
from portal.services.errors import Conflict, Invalid
from portal.services.schedule import ensure_sessions
from tests.factories import csrf_from, make_policy


def _today(world):
    return local_today(world.program.tz)


def _entry(world, day, patient, cohort=None):
    cohort = cohort or world.am
    for s in ensure_sessions(world.program, day):
        if s.cohort_id == cohort.id:
            for e in s.entries:
                if e.patient_id == patient.id:
                    return s, e
    raise AssertionError("no roster row")


def _absent(world, day, patient):
    s, e = _entry(world, day, patient)
    roster_svc.mark_attendance(s.id, e.id, status="absent")
    return s, e


def _ack(patient, policy, world, at):
    return svc.sign_acknowledgment(patient.id, policy.id, png=squiggle_png(seed=3), witness=world.clinician,
                                   max_png_bytes=512 * 1024, now=at)


def _post(client, url, data, page="/no-shows/policy"):
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


# ---- policy ------------------------------------------------------------------------------

POLICY_FORM = {"grace_minutes": "15", "notice_hours": "24", "fee": "25.00", "uniform": "1",
               "letter_sender": "Harbor Health Services", "body": "Come on time or call ahead."}


def test_publishing_archives_the_policy_and_refuses_overlaps(world, client, login):
    login.as_(world.admin)
    today = _today(world)
    resp = _post(client, "/no-shows/policy", {**POLICY_FORM, "effective_from": today.isoformat()})
    assert resp.status_code == 303
    v1 = db.session.scalar(select(NoShowPolicy))
    assert v1.version == 1 and v1.fee_cents == 2500 and v1.document.kind == "no_show_policy"
    # A later version ends the open-ended one the day before it starts.
    resp = _post(client, "/no-shows/policy", {**POLICY_FORM, "effective_from": (today + timedelta(days=10)).isoformat(),
                                              "fee": "30"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(NoShowPolicy, v1.id).effective_to == today + timedelta(days=9)
    before = db.session.scalar(select(func.count()).select_from(ArchivedDocument))
    bad = [
        ({"effective_from": (today + timedelta(days=5)).isoformat()}, "overlap version"),
        ({"effective_from": (today - timedelta(days=1)).isoformat()}, "before it is published"),
        ({"effective_from": (today + timedelta(days=40)).isoformat(), "letter_sender": "Lakeshore Recovery IOP"},
         "42 CFR Part 2"),
        ({"effective_from": "2026-13-01"}, "enter a date"),
        ({"effective_from": (today + timedelta(days=40)).isoformat(), "fee": "-5"}, "amount in dollars"),
        ({"effective_from": (today + timedelta(days=40)).isoformat(), "grace_minutes": "abc"}, "Grace minutes"),
    ]
    for extra, message in bad:
        resp = _post(client, "/no-shows/policy", {**POLICY_FORM, **extra})
        assert resp.status_code == 422, extra
        assert message in resp.get_data(as_text=True), (extra, resp.get_data(as_text=True)[:3000])
    assert db.session.scalar(select(func.count()).select_from(NoShowPolicy)) == 2
    assert db.session.scalar(select(func.count()).select_from(ArchivedDocument)) == before


# ---- fees -----------------------------------------------------------------------------------

def test_self_pay_fee_charged_and_medicaid_refused_with_rule_and_source(world, client, login):
    policy = make_policy(world.program)
    today = _today(world)
    day = today - timedelta(days=1)
    lan, marisol = world.patients[3], world.patients[0]  # self-pay, Medicaid
    s, _ = _absent(world, day, lan)
    _absent(world, day, marisol)
    _ack(lan, policy, world, s.scheduled_start - timedelta(days=3))
    _ack(marisol, policy, world, s.scheduled_start - timedelta(days=3))
    login.as_(world.billing)
    page = client.get(f"/no-shows/patients/{lan.id}")
    assert page.status_code == 200 and "No-show" in page.get_data(as_text=True)
    resp = _post(client, f"/no-shows/patients/{lan.id}/fees", {"session_id": s.id}, f"/no-shows/patients/{lan.id}")
    assert resp.status_code == 303
    charge = db.session.scalar(select(FeeLedgerEntry))
    assert (charge.kind, charge.amount_cents, charge.classification) == ("charge", 2500, "no_show")
    again = _post(client, f"/no-shows/patients/{lan.id}/fees", {"session_id": s.id}, f"/no-shows/patients/{lan.id}")
    assert again.status_code == 409
    refused = _post(client, f"/no-shows/patients/{marisol.id}/fees", {"session_id": s.id},
                    f"/no-shows/patients/{marisol.id}")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Medicaid" in body and "42 CFR 447.15" in body
    assert db.session.scalar(select(func.count()).select_from(FeeLedgerEntry)) == 1
    # Waive needs a reason; a payment cannot exceed the balance.
    assert _post(client, f"/no-shows/fees/{charge.id}/waive", {"reason": ""}, f"/no-shows/patients/{lan.id}").status_code == 422
    assert _post(client, f"/no-shows/patients/{lan.id}/payments", {"amount": "30.00"},
                 f"/no-shows/patients/{lan.id}").status_code == 422
    assert _post(client, f"/no-shows/patients/{lan.id}/payments", {"amount": "10.5"},
                 f"/no-shows/patients/{lan.id}").status_code == 303
    assert svc.balance_cents(lan.id) == 1450
    assert _post(client, f"/no-shows/fees/{charge.id}/waive", {"reason": "hardship"},
                 f"/no-shows/patients/{lan.id}").status_code == 303
    assert svc.balance_cents(lan.id) == -1050  # paid more than now owed: shown as a credit
    # The billing page lists both absences with the fee decision.
    page = client.get(f"/billing/no-shows?date={day.isoformat()}").get_data(as_text=True)
    assert "Charged" in page and "Medicaid members may not be charged" in page
    # Per cohort: the AM cohort has them, the PM cohort none; an unknown cohort is a 400.
    am = client.get(f"/billing/no-shows?date={day.isoformat()}&cohort=AM+IOP").get_data(as_text=True)
    assert "Absences per week, AM IOP" in am and "Charged" in am
    pm = client.get(f"/billing/no-shows?date={day.isoformat()}&cohort=PM+IOP").get_data(as_text=True)
    assert "Charged" not in pm and "Alvarez" not in pm
    assert client.get("/billing/no-shows?cohort=Nope").status_code == 400


def test_acknowledgment_signed_after_the_absence_blocks_the_fee(world):
    policy = make_policy(world.program)
    day = _today(world) - timedelta(days=1)
    lan = world.patients[3]
    s, _ = _absent(world, day, lan)
    ack = _ack(lan, policy, world, s.scheduled_start + timedelta(minutes=30))
    assert ack.document.kind == "no_show_acknowledgment"
    with pytest.raises(Invalid, match="acknowledgment"):
        svc.charge_fee(lan.id, s.id, user=world.billing)
    with pytest.raises(Conflict):
        _ack(lan, policy, world, s.scheduled_start + timedelta(hours=2))


# ---- cancellations --------------------------------------------------------------------------

def test_cancellation_before_the_group_is_timely_and_marks_the_roster(world, client, login):
    make_policy(world.program)
    lan = world.patients[3]
    login.as_(world.facilitator)
    day = _today(world) + timedelta(days=2)
    now_local = now_utc().astimezone(world.program.tz)
    resp = _post(client, f"/no-shows/patients/{lan.id}/notices",
                 {"kind": "cancellation", "cohort_dos": f"{world.am.id}|{day.isoformat()}",
                  "notice_date": now_local.date().isoformat(), "notice_time": now_local.strftime("%H:%M")},
                 f"/no-shows/patients/{lan.id}")
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    s, e = _entry(world, day, lan)
    from portal.no_shows.facts import load_rows

    rows = [r for r in load_rows(world.program, day, day, patient_ids=[lan.id], now=s.scheduled_end + timedelta(hours=1))]
    assert rows[0].code == "timely_cancellation"


def test_bad_notices_write_nothing(world):
    make_policy(world.program)
    lan = world.patients[3]
    day = _today(world) - timedelta(days=1)
    s, _ = _entry(world, day, lan)
    tz = world.program.tz
    two_days = (s.scheduled_start - timedelta(days=2)).astimezone(tz)
    cases = [
        # a timely cancellation recorded after the group ended
        (dict(kind="cancellation", cohort_id=world.am.id, dos=day.isoformat(), notice_date=two_days.date().isoformat(),
              notice_time=two_days.strftime("%H:%M"), reason=""), s.scheduled_end + timedelta(hours=1), "cannot be timely"),
        # notice after the group ended
        (dict(kind="cancellation", cohort_id=world.am.id, dos=day.isoformat(), notice_date=day.isoformat(),
              notice_time="23:00", reason=""), s.scheduled_end + timedelta(hours=12), "no-show"),
        # notice in the future
        (dict(kind="cancellation", cohort_id=world.am.id, dos=day.isoformat(), notice_date=day.isoformat(),
              notice_time="08:00", reason=""), s.scheduled_start - timedelta(days=2), "future"),
        (dict(kind="cancellation", cohort_id=world.am.id, dos=day.isoformat(), notice_date=day.isoformat(),
              notice_time="25:99", reason=""), s.scheduled_end, "not a time"),
        (dict(kind="excused", cohort_id=world.am.id, dos=day.isoformat(), notice_date=None, notice_time=None,
              reason=" "), s.scheduled_end, "documentation"),
        (dict(kind="cancellation", cohort_id=world.pm.id, dos=day.isoformat(), notice_date=day.isoformat(),
              notice_time="08:00", reason=""), s.scheduled_end, "not enrolled"),
        (dict(kind="cancellation", cohort_id="x", dos=day.isoformat(), notice_date=day.isoformat(),
              notice_time="08:00", reason=""), s.scheduled_end, "Choose the group"),
    ]
    for kw, now, message in cases:
        with pytest.raises(Invalid, match=message):
            svc.record_notice(lan.id, user=world.facilitator, now=now, **kw)
    assert db.session.scalar(select(func.count()).select_from(AbsenceNotice)) == 0
    # A late cancellation recorded after the group is accepted as late; an excuse wins over it.
    late = (s.scheduled_start - timedelta(hours=2)).astimezone(tz)
    svc.record_notice(lan.id, kind="cancellation", cohort_id=world.am.id, dos=day.isoformat(),
                      notice_date=late.date().isoformat(), notice_time=late.strftime("%H:%M"), reason="",
                      user=world.facilitator, now=s.scheduled_end + timedelta(hours=1))
    from portal.no_shows.facts import load_rows

    assert load_rows(world.program, day, day, patient_ids=[lan.id])[0].code == "late_cancellation"
    svc.record_notice(lan.id, kind="excused", cohort_id=world.am.id, dos=day.isoformat(), notice_date=None,
                      notice_time=None, reason="ER visit, discharge papers on file", user=world.clinician)
    assert load_rows(world.program, day, day, patient_ids=[lan.id])[0].code == "excused"


# ---- thresholds, letters, tasks --------------------------------------------------------------

def _two_in_a_row(world, patient):
    today = _today(world)
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    for d in days:
        _absent(world, d, patient)
    return days


def test_letter_refused_without_mail_consent_then_archived_without_disclosure(world, client, login):
    make_policy(world.program)
    world.program.contact_phone = "3125550142"
    lan = world.patients[3]
    lan.address_line1, lan.city, lan.state, lan.zip = "1 Elm St", "Chicago", "IL", "60601"
    db.session.commit()
    days = _two_in_a_row(world, lan)
    login.as_(world.clinician)
    page = client.get(f"/no-shows/patients/{lan.id}").get_data(as_text=True)
    assert "Letter due" in page and "2 consecutive" in page
    resp = _post(client, f"/no-shows/patients/{lan.id}/letters", {"trigger_dos": days[1].isoformat()},
                 f"/no-shows/patients/{lan.id}")
    assert resp.status_code == 422 and "consented to mail" in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(NoShowLetter)) == 0
    # Without mail, the clinician still opens the review task (a wrong date is refused).
    assert _post(client, f"/no-shows/patients/{lan.id}/tasks", {"trigger_dos": days[0].isoformat()},
                 f"/no-shows/patients/{lan.id}").status_code == 422
    assert _post(client, f"/no-shows/patients/{lan.id}/tasks", {"trigger_dos": days[1].isoformat()},
                 f"/no-shows/patients/{lan.id}").status_code == 303
    assert _post(client, f"/no-shows/patients/{lan.id}/mail-consent", {"consent": "yes"},
                 f"/no-shows/patients/{lan.id}").status_code == 303
    resp = _post(client, f"/no-shows/patients/{lan.id}/letters", {"trigger_dos": days[1].isoformat()},
                 f"/no-shows/patients/{lan.id}")
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    letter = db.session.scalar(select(NoShowLetter))
    assert letter.document.kind == "no_show_letter"
    pdf = client.get(f"/documents/{letter.document_id}.pdf")
    assert pdf.status_code == 200
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Lan" in text and f"{days[0]:%B %-d}" in text and "(312) 555-0142" in text
    assert disclosing_words(text) == [], text
    task = db.session.scalar(select(ClinicalReviewTask))
    assert task.status == "open" and "consecutive" in task.reason
    # The task shows on the billing page and a clinician closes it (a resolution is required).
    assert task.reason in client.get("/billing/no-shows").get_data(as_text=True)
    assert _post(client, f"/no-shows/tasks/{task.id}/close", {"resolution": ""},
                 f"/no-shows/patients/{lan.id}").status_code == 422
    assert _post(client, f"/no-shows/tasks/{task.id}/close", {"resolution": "Plan reviewed"},
                 f"/no-shows/patients/{lan.id}").status_code == 303
    again = _post(client, f"/no-shows/patients/{lan.id}/letters", {"trigger_dos": days[1].isoformat()},
                  f"/no-shows/patients/{lan.id}")
    assert again.status_code == 409


def test_no_letter_for_a_date_without_a_threshold(world):
    make_policy(world.program)
    lan = world.patients[3]
    lan.mail_consent = True
    db.session.commit()
    with pytest.raises(Invalid, match="No letter threshold"):
        svc.create_letter(lan.id, _today(world).isoformat(), user=world.clinician)


def test_sweep_opens_review_tasks_once(world, runner):
    make_policy(world.program)
    days = _two_in_a_row(world, world.patients[0])
    for d in days:
        for session in ensure_sessions(world.program, d):
            for row in session.entries:
                if row.status == "expected":  # everyone else attended
                    roster_svc.mark_attendance(session.id, row.id, status="present")
    out = runner.invoke(args=["no-shows", "sweep"])
    assert "1 clinical-review task opened" in out.output
    assert "0 clinical-review tasks opened" in runner.invoke(args=["no-shows", "sweep"]).output


# ---- readiness and board -----------------------------------------------------------------------

def test_readiness_marks_no_service_with_its_classification_and_board_counts(world, client, login):
    make_policy(world.program)
    day = _today(world) - timedelta(days=1)
    marisol, keegan = world.patients[0], world.patients[1]
    _absent(world, day, marisol)
    s, e = _entry(world, day, keegan)
    roster_svc.mark_attendance(s.id, e.id, status="cancelled")
    for session in ensure_sessions(world.program, day):
        for row in session.entries:
            if row.status == "expected":  # everyone else attended
                roster_svc.mark_attendance(session.id, row.id, status="present")
    login.as_(world.billing)
    page = client.get(f"/readiness/patients/{marisol.id}?from={day}&to={day}").get_data(as_text=True)
    assert "No service" in page and "No-show" in page
    page = client.get(f"/readiness/patients/{keegan.id}?from={day}&to={day}").get_data(as_text=True)
    assert "Not yet classified" in page
    board = client.get(f"/billing/?date={day}").get_data(as_text=True)
    assert "1 classified" in board and "1 not classified" in board


def test_auditor_sees_only_their_members_pages(world, client, login):
    login.as_(world.auditor)
    assert client.get(f"/no-shows/patients/{world.patients[0].id}").status_code == 200
    assert client.get(f"/no-shows/patients/{world.patients[3].id}").status_code == 404  # no hint
    assert client.get("/billing/no-shows").status_code == 403


def test_acknowledgment_on_the_tablet(world, client, login):
    import base64

    make_policy(world.program)
    lan = world.patients[3]
    login.as_(world.facilitator)
    page = client.get(f"/no-shows/patients/{lan.id}/acknowledge")
    assert page.status_code == 200 and "Harbor" not in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    blank = client.post(f"/no-shows/patients/{lan.id}/acknowledge", data={"csrf_token": token, "signature_png": ""})
    assert blank.status_code == 422
    uri = "data:image/png;base64," + base64.b64encode(squiggle_png(seed=5)).decode()
    ok = client.post(f"/no-shows/patients/{lan.id}/acknowledge", data={"csrf_token": token, "signature_png": uri})
    assert ok.status_code == 200 and "archived as entry" in ok.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PolicyAcknowledgment)) == 1


def test_archive_verifies_after_policy_acknowledgment_and_letter(world, runner):
    policy = make_policy(world.program)
    world.program.contact_phone = "3125550142"
    lan = world.patients[3]
    lan.mail_consent = True
    lan.address_line1, lan.city, lan.state, lan.zip = "1 Elm St", "Chicago", "IL", "606011234"
    db.session.commit()
    days = _two_in_a_row(world, lan)
    _ack(lan, policy, world, now_utc() - timedelta(days=5))
    svc.create_letter(lan.id, days[1].isoformat(), user=world.clinician)
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_absence_loader_query_count_does_not_grow_with_patients(world):
    from datetime import date as _date

    from portal.models import Enrollment
    from portal.no_shows.facts import load_rows
    from tests.factories import make_patient
    from tests.web.test_fact_loader import count_statements

    make_policy(world.program)
    day = _today(world) - timedelta(days=1)
    ensure_sessions(world.program, day)
    db.session.expire_all()
    with count_statements() as few:
        small = load_rows(world.program, day - timedelta(days=7), day)
    for i in range(30):
        p = make_patient(f"77{i:04d}", f"Pat{i}", "Synthetic", world.payers["self_pay"], member_id=None)
        db.session.add(Enrollment(patient=p, cohort=world.am, start_date=_date(2026, 1, 1)))
    db.session.commit()
    ensure_sessions(world.program, day - timedelta(days=2))
    db.session.expire_all()
    with count_statements() as many:
        big = load_rows(world.program, day - timedelta(days=7), day)
    assert len(big) > len(small) and len(many) == len(few) <= 4  # program, policies, notices, rows


def test_payer_change_mid_month_judges_each_absence_under_its_own_payer(world, client, login):
    from portal.models import Authorization

    policy = make_policy(world.program)
    today = _today(world)
    jose = world.patients[2]  # was BlueRiver PPO (contract allows the fee); now Medicaid
    jose.payer = world.payers["sunrise_medicaid_mco"]
    db.session.add_all([
        Authorization(patient=jose, payer=world.payers["blueriver_ppo"], number="BRP-1",
                      start_date=today - timedelta(days=30), end_date=today - timedelta(days=3), units=20),
        Authorization(patient=jose, payer=world.payers["sunrise_medicaid_mco"], number="SMC-1",
                      start_date=today - timedelta(days=2), end_date=today + timedelta(days=30), units=20)])
    db.session.commit()
    before, _ = _absent(world, today - timedelta(days=3), jose)
    after, _ = _absent(world, today - timedelta(days=2), jose)
    _ack(jose, policy, world, before.scheduled_start - timedelta(days=5))
    assert svc.charge_fee(jose.id, before.id, user=world.billing).amount_cents == 2500
    with pytest.raises(Invalid, match="42 CFR 447.15"):
        svc.charge_fee(jose.id, after.id, user=world.billing)
    login.as_(world.billing)
    page = client.get(f"/no-shows/patients/{jose.id}").get_data(as_text=True)
    assert "BlueRiver PPO" in page and "Medicaid members may not be charged" in page


# ---- free text longer than its column ----------------------------------------------------------

def test_over_long_free_text_is_refused_by_name_and_writes_nothing(world, client, login):
    """A crafted post (the pages cap these fields with maxlength) used to be cut to the column
    silently; now each field is refused with its limit and nothing is written."""
    policy = make_policy(world.program)
    lan = world.patients[3]  # self-pay
    day = _today(world) - timedelta(days=1)
    s, _ = _absent(world, day, lan)
    _ack(lan, policy, world, s.scheduled_start - timedelta(days=3))
    login.as_(world.admin)
    page = f"/no-shows/patients/{lan.id}"
    assert _post(client, f"{page}/fees", {"session_id": s.id}, page).status_code == 303
    charge = db.session.scalar(select(FeeLedgerEntry))
    long_text = "x" * 301
    before = {m: db.session.scalar(select(func.count()).select_from(m))
              for m in (FeeLedgerEntry, OutreachAttempt, AbsenceNotice, NoShowPolicy)}
    cases = [
        (f"{page}/outreach", {"method": "phone", "outcome": "reached", "note": long_text}, "Note: at most 300"),
        (f"{page}/payments", {"amount": "5.00", "note": long_text}, "Note: at most 300"),
        (f"/no-shows/fees/{charge.id}/waive", {"reason": long_text}, "Reason: at most 300"),
        (f"{page}/notices", {"kind": "excused", "cohort_id": world.am.id, "dos": day.isoformat(),
                             "reason": long_text}, "Reason: at most 300"),
        ("/no-shows/policy", {**POLICY_FORM, "effective_from": (day + timedelta(days=60)).isoformat(),
                              "letter_sender": "y" * 121}, "Letter sender: at most 120"),
    ]
    for url, data, message in cases:
        resp = _post(client, url, data, page)
        assert resp.status_code == 422, (url, resp.status_code)
        assert message in resp.get_data(as_text=True), url
    db.session.expire_all()
    assert {m: db.session.scalar(select(func.count()).select_from(m)) for m in before} == before
    # Exactly at the limit is accepted.
    assert _post(client, f"{page}/outreach", {"method": "phone", "outcome": "reached", "note": "x" * 300},
                 page).status_code == 303
    assert len(db.session.scalar(select(OutreachAttempt.note))) == 300
    task = ClinicalReviewTask(patient_id=lan.id, trigger_dos=day, reason="2 consecutive no-shows",
                              assignee="Unassigned", created_at=now_utc())
    db.session.add(task)
    db.session.commit()
    resp = _post(client, f"/no-shows/tasks/{task.id}/close", {"resolution": long_text}, page)
    assert resp.status_code == 422 and "Resolution: at most 300" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ClinicalReviewTask, task.id).status != "done"
