"""`flask setup init / apply / invite`, and the issue's acceptance path: a clinic set up from
the example file, the v2 census imported (faulty rows named, then a corrected copy), a roster
closed whose claim lines are Ready."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (AdminLogEntry, AttendanceEntry, Cohort, GroupSession, Patient,
                           Program, User)
from portal.passwords import check_password
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "clinic.yaml"
CENSUS_V2 = ROOT / "tests" / "fixtures" / "census_export_v2.csv"
PASSWORD = "harbor window pepper violin"


def init(runner, password=PASSWORD, again=None, **flags):
    args = ["setup", "init"]
    for k, v in flags.items():
        args += [f"--{k.replace('_', '-')}", v]
    return runner.invoke(args=args, input=f"{password}\n{again or password}\n")


FLAGS = dict(program_name="Lakeshore Recovery IOP", billing_npi="1234567893",
             time_zone="America/Chicago", admin_name="Sam Okoye",
             admin_email="admin@lakeshore.example")


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(m))
                 for m in (Program, User, Cohort, Patient))


def test_init_with_prompts_creates_program_and_admin_once(runner):
    result = runner.invoke(args=["setup", "init"], input="\n".join([
        "Lakeshore Recovery IOP", "1234567893", "America/Chicago", "Sam Okoye",
        "admin@lakeshore.example", PASSWORD, PASSWORD]) + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # never echoed
    admin = db.session.scalar(select(User))
    assert admin.role == "admin" and check_password(admin.password_hash, PASSWORD)
    again = init(runner, **FLAGS)
    assert again.exit_code == 1 and "a program already exists" in again.output
    assert counts()[:2] == (1, 1)


@pytest.mark.parametrize("flags,password,again,message", [
    ({}, PASSWORD, PASSWORD + "x", "not the same"),
    ({}, "password1234", "password1234", "commonly used"),
    ({}, "too short", "too short", "at least 12"),
    ({"billing_npi": "1234567890"}, PASSWORD, None, "check digit"),
    ({"time_zone": "Central"}, PASSWORD, None, "unknown time zone"),
])
def test_init_bad_input_writes_nothing(runner, flags, password, again, message):
    result = init(runner, password, again, **{**FLAGS, **flags})
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Nothing was written" in result.output
    assert counts() == (0, 0, 0, 0)


def test_init_has_no_password_flag(runner):
    result = runner.invoke(args=["setup", "init", "--password", "x"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_apply_twice_is_a_no_op_and_dry_run_writes_nothing(runner):
    dry = runner.invoke(args=["setup", "apply", str(EXAMPLE), "--dry-run"])
    assert dry.exit_code == 0 and "NOT written" in dry.output
    assert counts() == (0, 0, 0, 0)
    first = runner.invoke(args=["setup", "apply", str(EXAMPLE)])
    assert first.exit_code == 0, first.output
    assert "+ cohort AM IOP: created" in first.output
    assert dry.output.count("\n+ ") == first.output.count("\n+ ")
    snapshot = counts()
    logged = db.session.scalar(select(func.count()).select_from(AdminLogEntry))
    second = runner.invoke(args=["setup", "apply", str(EXAMPLE)])
    assert second.exit_code == 0
    assert "No changes: the database already matches" in second.output
    assert counts() == snapshot
    assert db.session.scalar(select(func.count()).select_from(AdminLogEntry)) == logged


def test_changed_file_updates_in_place_and_deactivates_without_deleting(runner, tmp_path):
    assert runner.invoke(args=["setup", "apply", str(EXAMPLE)]).exit_code == 0
    # history: a closed AM roster
    program = db.session.scalar(select(Program))
    am = db.session.scalar(select(Cohort).where(Cohort.name == "AM IOP"))
    dana = db.session.scalar(select(User).where(User.email == "dana@lakeshore.example"))
    closed = GroupSession(cohort=am, dos=date(2026, 11, 2), facilitator_id=dana.id,
                          scheduled_start=datetime(2026, 11, 2, 15, tzinfo=program.tz),
                          scheduled_end=datetime(2026, 11, 2, 18, tzinfo=program.tz),
                          status="closed")
    db.session.add(closed)
    db.session.commit()
    text = EXAMPLE.read_text()
    start = text.index("  - name: Weekend Relapse Prevention")
    text = text[:start] + text[text.index("closures:"):]          # a cohort removed
    start = text.index("  - name: Tomas Reyes")
    text = text[:start] + text[text.index("  - name: Jordan Ellis"):]  # a staff member removed
    text = text.replace('start: "17:30"', 'start: "17:00"')          # a time changed
    changed = tmp_path / "clinic.yaml"
    changed.write_text(text)
    before = counts()
    result = runner.invoke(args=["setup", "apply", str(changed)])
    assert result.exit_code == 0, result.output
    assert "~ cohort PM IOP: start_local 17:30 -> 17:00" in result.output
    assert "- staff tomas@lakeshore.example: deactivated" in result.output
    assert "- cohort Weekend Relapse Prevention: ended on" in result.output
    assert counts() == before  # nothing deleted
    db.session.expire_all()
    assert not db.session.scalar(select(User).where(User.email == "tomas@lakeshore.example")).is_active_user
    weekend = db.session.scalar(select(Cohort).where(Cohort.name == "Weekend Relapse Prevention"))
    assert weekend.effective_to is not None
    assert db.session.get(GroupSession, closed.id).status == "closed"
    again = runner.invoke(args=["setup", "apply", str(changed)])
    assert "No changes" in again.output


def test_apply_refuses_to_lock_out_the_only_admin(runner, tmp_path):
    assert init(runner, **{**FLAGS, "admin_email": "owner@lakeshore.example"}).exit_code == 0
    result = runner.invoke(args=["setup", "apply", str(EXAMPLE)])
    assert result.exit_code == 1 and "no active admin who can sign in" in result.output
    assert db.session.scalar(select(func.count()).select_from(Cohort)) == 0


def test_bad_file_names_file_line_field_and_writes_nothing(runner, tmp_path):
    bad = tmp_path / "clinic.yaml"
    bad.write_text(EXAMPLE.read_text().replace('npi: "1487654323"', 'npi: "1487654324"')
                   .replace("weekdays: [6, 7]", "weekdays: [6, 8]"))
    result = runner.invoke(args=["setup", "apply", str(bad)])
    assert result.exit_code == 1
    line = EXAMPLE.read_text().splitlines().index('    npi: "1487654323"') + 1
    assert f"{bad}:{line}: staff[2].npi: NPI 1487654324 fails its check digit" in result.output
    assert "cohorts[3].weekdays: 8: weekdays are 1..7" in result.output
    assert "Nothing was written" in result.output
    assert counts() == (0, 0, 0, 0)
    missing = runner.invoke(args=["setup", "apply", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_invite_prints_a_one_time_link(runner):
    assert runner.invoke(args=["setup", "apply", str(EXAMPLE)]).exit_code == 0
    result = runner.invoke(args=["setup", "invite", "DANA@lakeshore.example"])
    assert result.exit_code == 0 and "/set-password/" in result.output
    unknown = runner.invoke(args=["setup", "invite", "nobody@x.test"])
    assert unknown.exit_code == 1


def test_done_when_clinic_file_census_v2_and_a_ready_roster(app, runner, tmp_path):
    """The issue's acceptance, without the demo: init, apply the example file, import the v2
    census (three faulty rows named, nothing written), import a corrected copy, close a roster,
    and its claim lines are Ready (and the patient without an address is named)."""
    from portal.fact_loader import load_facts
    from portal.rules.claim_lines import derive_claim_lines
    from portal.services.schedule import ensure_sessions

    assert init(runner, **FLAGS).exit_code == 0
    assert runner.invoke(args=["setup", "apply", str(EXAMPLE)]).exit_code == 0
    census = tmp_path / "census.csv"
    census.write_bytes(CENSUS_V2.read_bytes())
    first = runner.invoke(args=["census", "import", str(census), "--commit"])
    assert first.exit_code == 1
    assert 'line 23, DOB: bad date "13/02/1990"' in first.output
    assert "line 24, MRN: MRN 100232 duplicates line 3" in first.output
    assert 'line 25, Primary Payer: unknown payer "Unknown Payer Inc"' in first.output
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 0
    # The coordinator corrects the three rows and adds the diagnoses the claim needs.
    lines = CENSUS_V2.read_text(encoding="utf-8-sig").splitlines()
    fixed = [lines[0] + ",Diagnoses"]
    for n, line in enumerate(lines[1:], start=2):
        if n == 24:
            continue  # the duplicate row
        line = line.replace("13/02/1990", "02/13/1990").replace("Unknown Payer Inc", "Self-pay")
        fixed.append(line + ",F10.20")
    census.write_text("\n".join(fixed) + "\n", encoding="utf-8")
    second = runner.invoke(args=["census", "import", str(census), "--commit"])
    assert second.exit_code == 0, second.output
    alvarez = db.session.scalar(select(Patient).where(Patient.mrn == "100231"))
    assert (alvarez.city, alvarez.state, alvarez.zip, alvarez.phone, alvarez.sex) == \
        ("Chicago", "IL", "60614", "3125550100", "F")
    assert db.session.scalar(select(Patient).where(Patient.mrn == "100240")).sex == "U"  # "X"
    # The Sunrise MCO spelling from the file's census_names matched without code changes.
    program = db.session.scalar(select(Program))
    dos = date(2026, 11, 24)  # a Tuesday: AM IOP meets
    [am] = [s for s in ensure_sessions(program, dos) if s.cohort.name == "AM IOP"]
    dana = db.session.scalar(select(User).where(User.email == "dana@lakeshore.example"))
    assert am.facilitator_id == dana.id
    # 13 are enrolled and the payer's group limit is 12: one is a no-show that day.
    factories.sign_and_close(am, dana, absent=("100235",),
                             now=datetime(2026, 11, 24, 9, 30, tzinfo=program.tz))
    facts = load_facts(program, dos, dos)
    lines_ = [ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"])
              if ln.dos == dos]
    by_mrn = {f.mrn: f for f in facts.patients}
    mrn_of = {f.patient_id: f.mrn for f in facts.patients}
    status = {mrn_of[ln.patient_id]: ln for ln in lines_}
    assert status["100231"].status == "ready", status["100231"].reasons
    blocked = status["100243"]  # Abernathy: no address in the census
    assert any(r.code == "subscriber_address_missing" for r in blocked.reasons)
    assert by_mrn["100243"].address_line == ""
    entries = db.session.scalar(select(func.count()).select_from(AttendanceEntry).where(
        AttendanceEntry.session_id == am.id))
    assert entries >= 10
