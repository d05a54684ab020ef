"""The clinic file, table-driven: each bad input gets a message naming file, line and field;
the example file (docs/examples/clinic.yaml) is valid and accepts the census fixtures."""
from __future__ import annotations

import csv
import io
from datetime import date, time
from pathlib import Path

import pytest

from portal.rules.clinic_file import (Checks, ClinicFileError, normalize_name, read_clinic_file)
from portal.rules.npi import is_valid_npi, luhn_check_digit, npi_problem
from portal.rules.password_policy import password_problems

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "clinic.yaml"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHECKS = Checks(roles=("facilitator", "clinician", "billing", "auditor", "admin"),
                payer_rules={"sunrise_medicaid_mco": "medicaid", "blueriver_ppo": "commercial",
                             "keystone_commercial_hmo": "commercial", "self_pay": "self_pay"},
                supervised_credentials=frozenset({"CADC", "CSAC", "LMSW", "QBHP"}))

BASE = """\
program:
  legal_name: Test IOP
  billing_npi: "1234567893"
  taxonomy_code: 261QR0405X
  tax_id: 36-1234567
  time_zone: America/Chicago
  service_address: {line1: 1 Main St, city: Chicago, state: IL, zip: 60601-7325}
  contact: {name: Jo Ellis, phone: 312-555-0190}
payers:
  - {name: Sunrise Medicaid MCO, rules: sunrise_medicaid_mco, payer_id: SUNRISE01}
staff:
  - {name: Dana Whitfield, email: dana@x.test, role: facilitator, credentials: LCSW, npi: "1487654323"}
  - {name: Marcus Greene, email: marcus@x.test, role: facilitator}
cohorts:
  - {name: AM IOP, weekdays: [1, 2, 3, 4], start: "09:00", end: "12:00", facilitator: dana@x.test}
"""


def read(text: str):
    return read_clinic_file(text.encode(), "clinic.yaml", CHECKS)


def test_the_example_file_is_valid_and_complete():
    spec = read_clinic_file(EXAMPLE.read_bytes(), "clinic.yaml", CHECKS)
    assert spec.program.service_address.zip == "606017325"
    assert spec.program.tax_id == "361234567" and spec.program.contact_phone == "3125550190"
    assert {c.name for c in spec.cohorts} >= {"AM IOP", "PM IOP"}
    am = next(c for c in spec.cohorts if c.name == "AM IOP")
    assert am.start == time(9, 0) and am.duration_minutes == 180 and am.weekdays == (1, 2, 3, 4)
    assert date(2026, 11, 26) in {c.date for c in spec.closures}
    assert not spec.warnings


@pytest.mark.parametrize("fixture", ["census_export.csv", "census_export_v2.csv"])
def test_the_example_file_accepts_the_census_payers_and_groups(fixture):
    """Every payer spelling and group of the shared census fixtures (but the deliberately unknown
    payer) names a payer or cohort of the example file."""
    spec = read_clinic_file(EXAMPLE.read_bytes(), "clinic.yaml", CHECKS)
    spellings = {normalize_name(n) for p in spec.payers for n in (p.name, *p.census_names)}
    groups = {c.name for c in spec.cohorts}
    rows = list(csv.DictReader(io.StringIO((FIXTURES / fixture).read_text(encoding="utf-8-sig"))))
    payers = {r["Primary Payer"] for r in rows} - {"Unknown Payer Inc"}
    assert all(normalize_name(p) in spellings for p in payers), payers
    assert {r["Group"] for r in rows} <= groups


@pytest.mark.parametrize("edit,line,field,message", [
    # (replace this, with that) -> expected line, field and words in the message
    (("billing_npi: \"1234567893\"", "billing_npi: \"1234567890\""), 3, "program.billing_npi",
     "fails its check digit"),
    (("time_zone: America/Chicago", "time_zone: Central"), 6, "program.time_zone",
     "unknown time zone"),
    (("time_zone: America/Chicago", "time_zone: Mars/Olympus"), 6, "program.time_zone",
     "unknown time zone"),
    (("zip: 60601-7325", "zip: 60601"), 7, "program.service_address.zip", "9 digits"),
    (("state: IL", "state: XX"), 7, "program.service_address.state", "not a US state"),
    (("tax_id: 36-1234567", "tax_id: 3612"), 5, "program.tax_id", "EIN"),
    (("phone: 312-555-0190", "phone: 555-0190"), 8, "program.contact.phone", "10 digits"),
    (("weekdays: [1, 2, 3, 4]", "weekdays: [0, 8]"), 15, "cohorts[1].weekdays", "1..7"),
    (("end: \"12:00\"", "end: \"08:00\""), 15, "cohorts[1].end", "not after it starts"),
    (("start: \"09:00\"", "start: \"9am\""), 15, "cohorts[1].start", "not a time"),
    (("email: marcus@x.test", "email: DANA@x.test"), 13, "staff[2].email", "duplicate staff email"),
    (("npi: \"1487654323\"", "npi: \"1487654324\""), 12, "staff[1].npi", "check digit"),
    (("credentials: LCSW", "credentials: CADC"), 12, "staff[1].supervisor", "supervision"),
    (("role: facilitator}", "role: facilitator, supervisor: nobody@x.test}"), 13, "supervisor",
     "not in the staff list"),
    (("facilitator: dana@x.test", "facilitator: nobody@x.test"), 15, "cohorts[1].facilitator",
     "not in the staff list"),
    (("rules: sunrise_medicaid_mco", "rules: acme"), 10, "payers[1].rules", "no payer rules file"),
    (("legal_name: Test IOP", "legal_name: Test IOP\n  colour: blue"), 3, "program.colour",
     'unknown key "colour"'),
    (("role: facilitator}", "role: facilitator, password: hunter2hunter2}"), 13,
     "staff[2].password", "passwords never go in the clinic file"),
    (("cohorts:", "cohort:"), 14, "cohort", 'unknown key "cohort"'),
    # issue 14: auditor access is a grant (scoped, expiring), never a permanent scope in the file
    (("role: facilitator}", "role: auditor, payer_scope: sunrise_medicaid_mco}"), 13,
     "staff[2].payer_scope", "Auditor grants"),
])
def test_each_bad_input_is_named_with_file_line_and_field(edit, line, field, message):
    text = BASE.replace(*edit, 1)
    assert text != BASE
    with pytest.raises(ClinicFileError) as err:
        read(text)
    problems = err.value.problems
    assert any(p.startswith(f"clinic.yaml:{line}: {field}") and message in p for p in problems), problems


@pytest.mark.parametrize("data,message", [
    (b"- just\n- a list\n", "expected a mapping"),
    (b"", "an empty file"),
    (b"program:\n\tlegal_name: x\n", "contains a tab"),
    (b"program: [unclosed\n", "not valid YAML"),
    (b"x: " + b"a" * (1024 * 1024 + 1), "over the 1 MB limit"),
    (b"program:\n  legal_name: A\n  legal_name: B\n", "appears twice"),
])
def test_files_that_are_not_clinic_files(data, message):
    with pytest.raises(ClinicFileError) as err:
        read_clinic_file(data, "clinic.yaml", CHECKS)
    assert any(message in p and p.startswith("clinic.yaml:") for p in err.value.problems), \
        err.value.problems


def test_overlapping_cohorts_of_one_facilitator_warn_naming_both():
    text = BASE + ('  - {name: Early Group, weekdays: [4, 5], start: "11:00", end: "13:00", '
                   'facilitator: dana@x.test}\n')
    spec = read(text)
    [warning] = spec.warnings
    assert "dana@x.test" in warning and '"AM IOP"' in warning and '"Early Group"' in warning


def test_census_spelling_claimed_by_two_payers_is_an_error():
    text = BASE.replace("payer_id: SUNRISE01}\n", "payer_id: SUNRISE01, census_names: [Blue]}\n"
                        "  - {name: BlueRiver PPO, rules: blueriver_ppo, payer_id: BR1, "
                        "census_names: [blue]}\n")
    with pytest.raises(ClinicFileError) as err:
        read(text)
    assert any('"blue" also names the payer "Sunrise Medicaid MCO"' in p for p in err.value.problems)


@pytest.mark.parametrize("npi,ok", [("1234567893", True), ("1487654323", True),
                                    ("1234567890", False), ("123456789", False),
                                    ("12345678a3", False), ("", False)])
def test_npi_luhn_with_the_80840_prefix(npi, ok):
    assert is_valid_npi(npi) == ok
    assert (npi_problem(npi) is None) == ok


def test_luhn_digit_of_the_cms_example():
    # CMS's worked example: NPI 123456789 -> check digit 3 (with prefix 80840).
    assert luhn_check_digit("80840123456789") == 3


@pytest.mark.parametrize("password,problem", [
    ("short pass", "at least 12"),
    ("password1234", "commonly used"),
    ("Qwerty123456", "commonly used"),
    ("dana@x.test", "at least 12"),
    ("dana whitfield", "your name or email"),
    ("maple kettle orbit lantern", None),
    ("aaaaaaaaaaaaaaaaaaaaaaaa", None),  # no composition rules (800-63B)
])
def test_password_policy(password, problem):
    problems = password_problems(password, context=("dana@x.test", "Dana Whitfield"))
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems
