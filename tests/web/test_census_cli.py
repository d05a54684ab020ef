"""``flask census import``: dry run by default, all or nothing with --commit, idempotent."""
from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Authorization, Cohort, Enrollment, Patient, Program
from tests import factories
from tests.unit.test_census_parse import FIXTURE, csv_bytes

FAULTY_LINES = (23, 24, 25)


def clean_fixture() -> bytes:
    """The shared fixture without its three faulty lines (no quoted field there spans lines)."""
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    return b"".join(ln for i, ln in enumerate(lines, start=1) if i not in FAULTY_LINES)


@pytest.fixture
def bare(app):
    """A program with its payers and two groups, and no patients yet."""
    program = factories.make_program()
    payers = factories.make_payers()
    for name, start in (("AM IOP", time(9, 0)), ("PM IOP", time(17, 30))):
        db.session.add(Cohort(program=program, name=name, start_local=start))
    db.session.commit()
    return payers


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(m))
                 for m in (Patient, Enrollment, Authorization))


def run(runner, tmp_path: Path, data: bytes, *extra: str):
    path = tmp_path / "census.csv"
    path.write_bytes(data)
    return runner.invoke(args=["census", "import", str(path), *extra])


def test_dry_run_of_the_fixture_names_the_faulty_rows_and_writes_nothing(bare, runner, tmp_path):
    result = run(runner, tmp_path, FIXTURE.read_bytes())
    assert result.exit_code == 1
    out = result.output
    assert "DRY RUN: nothing written" in out
    assert "3 error(s); nothing was written." in out
    assert 'line 23, DOB: bad date "13/02/1990": month 13 (expected M/D/YYYY)' in out
    assert ('line 24, MRN: MRN 100232 duplicates line 3 with conflicting data (this line vs line 3): '
            'Group "PM IOP" vs "AM IOP"') in out
    assert 'line 25, Primary Payer: unknown payer "Unknown Payer Inc"' in out
    assert counts() == (0, 0, 0)


def test_commit_with_a_faulty_file_writes_nothing_and_exits_1(bare, runner, tmp_path):
    result = run(runner, tmp_path, FIXTURE.read_bytes(), "--commit")
    assert result.exit_code == 1
    assert "Census import NOT written" in result.output
    assert counts() == (0, 0, 0)


def test_one_bad_row_at_the_end_stops_the_whole_commit(bare, runner, tmp_path):
    data = clean_fixture() + csv_bytes({"MRN": "100300", "Auth Units": "many"}).split(b"\r\n", 1)[1]
    result = run(runner, tmp_path, data, "--commit")
    assert result.exit_code == 1
    assert 'line 23, Auth Units: "many" is not a whole number of units' in result.output
    assert counts() == (0, 0, 0)


def test_dry_run_of_a_clean_file_reports_and_writes_nothing(bare, runner, tmp_path):
    result = run(runner, tmp_path, clean_fixture())
    assert result.exit_code == 0, result.output
    assert "DRY RUN: nothing written (add --commit to write)." in result.output
    assert "Patients: 21 new, 0 unchanged, 0 updated" in result.output
    assert "Enrollments: 21 new, 0 unchanged, 0 updated" in result.output
    assert "Authorizations: 15 new, 0 unchanged" in result.output
    assert counts() == (0, 0, 0)


def test_commit_of_a_clean_file_creates_patients_enrollments_and_authorizations(bare, runner, tmp_path):
    result = run(runner, tmp_path, clean_fixture(), "--commit")
    assert result.exit_code == 0, result.output
    assert "Census import written." in result.output
    assert counts() == (21, 21, 15)

    jose = db.session.scalar(select(Patient).where(Patient.mrn == "100233"))
    assert (jose.legal_first, jose.legal_last, jose.dob, jose.sex) == ("José", "García-López", date(1995, 12, 1), "M")
    assert (jose.payer.name, jose.member_id, jose.prior_level_of_care) == ("BlueRiver PPO", "BRP-883-1120", "2.5")
    assert jose.prior_auth_number == "PHP-2231"  # the step-down source authorization
    [enrollment] = jose.enrollments
    assert (enrollment.cohort.name, enrollment.start_date, enrollment.primary_counselor) == (
        "AM IOP", date(2026, 11, 5), "Dana Whitfield, LCSW")
    auth = db.session.scalar(select(Authorization).where(Authorization.patient_id == jose.id))
    assert (auth.number, auth.hcpcs_code, auth.level_of_care, auth.start_date, auth.end_date, auth.units) == (
        "BR-IOP-9001", "H0015", "2.1", date(2026, 11, 5), date(2026, 11, 25), 9)
    eric = db.session.scalar(select(Patient).where(Patient.mrn == "100239"))
    assert eric.legal_first == "Eric"
    nguyen = db.session.scalar(select(Patient).where(Patient.mrn == "100234"))
    assert nguyen.member_id is None and nguyen.payer.name == "Self-pay"


def test_reimporting_the_same_file_is_idempotent(bare, runner, tmp_path):
    assert run(runner, tmp_path, clean_fixture(), "--commit").exit_code == 0
    result = run(runner, tmp_path, clean_fixture(), "--commit")
    assert result.exit_code == 0, result.output
    assert "Patients: 0 new, 21 unchanged, 0 updated" in result.output
    assert "Enrollments: 0 new, 21 unchanged, 0 updated" in result.output
    assert "Authorizations: 0 new, 15 unchanged" in result.output
    assert counts() == (21, 21, 15)


def test_duplicate_row_with_same_data_is_reported_and_imported_once(bare, runner, tmp_path):
    lines = clean_fixture().splitlines(keepends=True)
    data = b"".join(lines) + lines[2].replace(b"7/9/1979", b"07/09/1979")
    result = run(runner, tmp_path, data, "--commit")
    assert result.exit_code == 0, result.output
    assert "line 23: duplicate of line 3, same data" in result.output
    assert counts() == (21, 21, 15)


def test_existing_patients_are_updated_not_duplicated(world, runner, tmp_path):
    before = counts()
    result = run(runner, tmp_path, clean_fixture(), "--commit")
    assert result.exit_code == 0, result.output
    # The world already has 100231-100234, 100250 and 100251 enrolled (no counselor recorded).
    assert "Patients: 15 new, 0 unchanged, 6 updated" in result.output
    assert "Enrollments: 15 new, 0 unchanged, 6 updated" in result.output
    assert counts() == (before[0] + 15, before[1] + 15, 15)
    keegan = db.session.scalar(select(Patient).where(Patient.mrn == "100232"))
    assert keegan.dob == date(1979, 7, 9) and keegan.sex == "M"
    [enrollment] = keegan.enrollments
    assert enrollment.start_date == date(2026, 10, 1)  # the existing enrollment is kept
    assert enrollment.primary_counselor == "Dana Whitfield, LCSW"


def test_moving_a_patient_to_another_group_is_refused(world, runner, tmp_path):
    data = csv_bytes({"MRN": "100250", "Last Name": "Patel", "First Name": "Ravi",
                      "Member ID": "SMC44120950", "Group": "AM IOP"})
    result = run(runner, tmp_path, data, "--commit")
    assert result.exit_code == 1
    assert ("line 2, Group: MRN 100250 is enrolled in PM IOP since 10/01/2026; move patients "
            "between groups in the portal, not by census import") in result.output


def test_an_import_never_changes_a_recorded_authorization(bare, runner, tmp_path):
    assert run(runner, tmp_path, clean_fixture(), "--commit").exit_code == 0
    data = clean_fixture().replace(b"IOP-55102,11/02/2026,12/01/2026,12", b"IOP-55102,11/02/2026,12/01/2026,20")
    result = run(runner, tmp_path, data, "--commit")
    assert result.exit_code == 1
    assert ("line 2, Auth Units: authorization IOP-55102 is recorded with 12, the census says 20; "
            "an import never changes an authorization") in result.output
    assert db.session.scalar(select(Authorization.units).where(Authorization.number == "IOP-55102")) == 12


def test_an_authorization_of_another_patient_is_refused(bare, runner, tmp_path):
    assert run(runner, tmp_path, csv_bytes({}), "--commit").exit_code == 0
    data = csv_bytes({"MRN": "100299", "Member ID": "SMC9"})
    result = run(runner, tmp_path, data, "--commit")
    assert result.exit_code == 1
    assert ("line 2, Auth #: authorization IOP-55102 from Sunrise Medicaid MCO is already "
            "recorded for MRN 100231") in result.output
    assert counts() == (1, 1, 1)


def test_without_a_program_the_import_says_so(app, runner, tmp_path):
    result = run(runner, tmp_path, clean_fixture())
    assert result.exit_code == 1
    assert "needs exactly one program" in result.output


def test_two_programs_are_refused(bare, runner, tmp_path):
    db.session.add(Program(name="Second", billing_npi="1234567893"))
    db.session.commit()
    result = run(runner, tmp_path, clean_fixture())
    assert result.exit_code == 1 and "found 2" in result.output
