"""`flask demo load`: a fictional program with history, realistic gaps, and an intact archive."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from audit_archive.schema import audit_checkpoints, audit_entries
from portal.demo import load_demo
from portal.extensions import db
from portal.models import ArchivedDocument, GroupSession, Patient, User


def test_demo_load_is_idempotent_and_has_gaps(app, runner):
    summary = load_demo(today=date(2026, 11, 30), history_days=10)  # a Monday
    assert summary.created and summary.closed >= 8
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 24  # 21 + 3 auth stories
    open_past = db.session.scalars(select(GroupSession).where(
        GroupSession.status == "open", GroupSession.dos < date(2026, 11, 30))).all()
    assert open_past, "the demo must leave a documentation gap to find"
    entries = db.session.scalar(select(func.count()).select_from(audit_entries))
    c = summary.clinical  # plans, notes and addenda are archived too (issue 11)
    no_show_docs = db.session.scalar(select(func.count()).select_from(ArchivedDocument).where(
        ArchivedDocument.kind.like("no_show%")))
    # + the authorization stories' archived transitions (issue 12) and the no-show documents
    assert entries == summary.closed + c["plans"] + c["notes"] + c["addenda"] + 11 + no_show_docs
    _documentation_reasons(summary)
    assert db.session.scalar(select(func.max(audit_checkpoints.c.tree_size))) == entries
    auditor = db.session.scalar(select(User).where(User.role == "auditor"))
    from portal.auditors.service import active_grants

    (grant,) = active_grants(auditor)  # a scoped, expiring grant, not a permanent payer scope
    assert grant.payer.rule_key == "sunrise_medicaid_mco" and grant.legal_basis == "audit_2_53"
    again = runner.invoke(args=["demo", "load"])
    assert "already exists" in again.output and "demo-dana" in again.output
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    # The demo's past days are archived now, long after their events: every demo entry carries
    # the signed backfill marker, so verify says so once instead of warning per entry.
    assert "late-archived" not in verify.output, verify.output
    assert (f"{entries} entries marked as backfilled history (seq 1-{entries}; events up to "
            in verify.output and "demo history: simulated past days" in verify.output), verify.output


def test_demo_entries_say_backfilled_on_their_verification_page(app, client, login):
    load_demo(today=date(2026, 11, 16), history_days=10)  # weeks before the server's clock
    admin = db.session.scalar(select(User).where(User.role == "admin"))
    admin.password_hash = __import__("tests.factories", fromlist=["x"]).password_hash()
    db.session.commit()
    login.as_(admin)
    page = client.get("/verify/1")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "backfilled history" in body
    assert "demo history: simulated past days" in body and "late-archived</strong>" not in body


def _documentation_reasons(summary):
    """Issue 11: plans, notes (some late, one clone pair, one missing, one draft) and addenda,
    so readiness shows each reason."""
    from flask import current_app

    from portal.fact_loader import load_facts
    from portal.models import Addendum, EncounterNote, Program, TreatmentPlan
    from portal.rules.claim_lines import derive_claim_lines

    assert summary.clinical["plans"] >= 21 and summary.clinical["late"] >= 1
    assert db.session.scalar(select(func.count()).select_from(Addendum)) >= 2
    assert db.session.scalar(select(func.count()).select_from(TreatmentPlan).where(
        TreatmentPlan.version == 2)) == 1
    assert db.session.scalar(select(func.count()).select_from(EncounterNote).where(
        EncounterNote.status == "draft")) >= 1
    program = db.session.scalar(select(Program))
    facts = load_facts(program, date(2026, 11, 20), date(2026, 11, 29))
    lines = derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                               documentation=facts.documentation)
    codes = {r.code for ln in lines for r in ln.reasons}
    for code in ("note_missing", "note_not_signed", "note_late", "note_clone_unresolved",
                 "plan_review_overdue"):
        assert code in codes, code
    assert any(ln.status == "ready" for ln in lines)


def test_demo_has_the_no_show_cases(app, client, login):
    from portal.models import (ClinicalReviewTask, FeeLedgerEntry, NoShowLetter, NoShowPolicy,
                               PolicyAcknowledgment)

    load_demo(today=date(2026, 11, 30), history_days=14)
    policy = db.session.scalar(select(NoShowPolicy))
    assert policy.document.kind == "no_show_policy"
    assert db.session.scalar(select(func.count()).select_from(PolicyAcknowledgment)) == 3
    fee = db.session.scalar(select(FeeLedgerEntry))
    assert (fee.kind, fee.amount_cents) == ("charge", 2500)
    letter = db.session.scalar(select(NoShowLetter))
    assert letter.document.kind == "no_show_letter"
    task = db.session.scalar(select(ClinicalReviewTask))
    assert task.status == "open" and task.assignee.startswith("Dana Whitfield")
    billing = db.session.scalar(select(User).where(User.role == "billing"))
    billing.password_hash = __import__("tests.factories", fromlist=["x"]).password_hash()
    db.session.commit()
    login.as_(billing)
    medicaid = db.session.scalar(select(Patient).where(Patient.mrn == "100231"))
    page = client.get(f"/no-shows/patients/{medicaid.id}").get_data(as_text=True)
    assert "Medicaid members may not be charged" in page and "42 CFR 447.15" in page


def test_demo_837p_per_payer_pos_and_pyx12(app, runner, tmp_path):
    """The demo's claim files pass pyx12 (the CLI validates through the suite's builder hook),
    and BlueRiver's lines carry its file's POS 11, not a database default 57."""
    load_demo(today=date(2026, 11, 30), history_days=10)
    sent = 0
    for payer in ("sunrise_medicaid_mco", "blueriver_ppo", "keystone_commercial_hmo"):
        out = tmp_path / f"{payer}.x12"
        result = runner.invoke(args=["billing", "837p", "--payer", payer, "--from", "2026-11-20",
                                     "--to", "2026-11-30", str(out)])
        if "No ready lines" in result.output:
            continue
        assert result.exit_code == 0, result.output
        sent += 1
        text = out.read_text()
        if payer == "blueriver_ppo":
            assert "***11:B:1*" in text and ":B:1*" in text and "***57:B:1" not in text
    assert sent >= 1
