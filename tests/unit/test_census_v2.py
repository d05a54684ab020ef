"""Census v2: Address, City, State, ZIP, Phone (and optional Diagnoses) columns, Sex as EHRs
write it mapped to X12 F/M/U, payer spellings from the payers' census names."""
from __future__ import annotations

from pathlib import Path

import pytest

from portal.census.parse import COLUMNS, OPTIONAL_COLUMNS, parse_census
from tests.unit.test_census_parse import GOOD, GROUPS, PAYERS, csv_bytes

V2 = Path(__file__).parent.parent / "fixtures" / "census_export_v2.csv"
HEADER = COLUMNS + OPTIONAL_COLUMNS
ADDRESS = {"Address": "1420 W Wrightwood Ave", "City": "Chicago", "State": "IL",
           "ZIP": "60614", "Phone": "(312) 555-0100", "Diagnoses": "", "QMB": ""}


def v2(**over) -> bytes:
    return csv_bytes({**ADDRESS, **over}, header=HEADER)


@pytest.mark.parametrize("written,code", [
    ("F", "F"), ("Female", "F"), ("female", "F"), ("M", "M"), ("Male", "M"), ("male", "M"),
    ("Unknown", "U"), ("X", "U"), ("u", "U"), ("", None),
])
def test_sex_is_mapped_to_x12(written, code):
    result = parse_census(v2(Sex=written), PAYERS, GROUPS)
    assert result.ok, result.errors
    assert result.rows[0].sex == code


@pytest.mark.parametrize("over,column,words", [
    ({"Sex": "Fem"}, "Sex", "not a sex"),
    ({"State": "Illinois"}, "State", "not a US state code"),
    ({"State": "ZZ"}, "State", "not a US state code"),
    ({"ZIP": "6061"}, "ZIP", "5 or 9 digits"),
    ({"ZIP": "60614-22"}, "ZIP", "5 or 9 digits"),
    ({"City": ""}, "City", "go together"),
    ({"Phone": "555-0100"}, "Phone", "10 digits"),
    ({"Diagnoses": "F10.20; alcohol"}, "Diagnoses", "not an ICD-10-CM code"),
])
def test_bad_v2_cells_are_named(over, column, words):
    result = parse_census(v2(**over), PAYERS, GROUPS)
    assert any(e.column == column and words in e.reason for e in result.errors), result.errors


def test_address_zip_phone_and_diagnoses_are_normalized():
    [row] = parse_census(v2(ZIP="60614-2207", State="il", Phone="+1 312 555 0100",
                            Diagnoses="f10.20; F1210"), PAYERS, GROUPS).rows
    assert (row.address_line1, row.city, row.state, row.zip, row.phone) == \
        ("1420 W Wrightwood Ave", "Chicago", "IL", "606142207", "3125550100")
    assert row.diagnoses == "F10.20,F12.10"


def test_a_file_without_v2_columns_still_imports():
    result = parse_census(csv_bytes(GOOD), PAYERS, GROUPS)
    assert result.ok and result.rows[0].address_line1 is None and result.rows[0].zip is None


def test_payer_spellings_come_from_the_census_names():
    data = v2(**{"Primary Payer": "Sunrise  MCO"})
    assert not parse_census(data, PAYERS, GROUPS).ok
    result = parse_census(data, PAYERS, GROUPS, aliases={"sunrise mco": "Sunrise Medicaid MCO"})
    assert result.ok and result.rows[0].payer == "Sunrise Medicaid MCO"


def test_the_v2_fixture_names_its_three_faulty_rows():
    result = parse_census(V2.read_bytes(), PAYERS, GROUPS)
    assert sorted({e.line for e in result.errors}) == [23, 24, 25]
    by_mrn = {r.mrn: r for r in result.rows}
    assert by_mrn["100243"].address_line1 is None  # the row without an address
    assert by_mrn["100232"].zip == "606121834" and by_mrn["100236"].sex == "U"
