"""The census parser: every kind of faulty row is named by line, column and reason."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from portal.census.parse import COLUMNS, RowError, parse_census, parse_date

FIXTURE = Path(__file__).parent.parent / "fixtures" / "census_export.csv"
PAYERS = {"Sunrise Medicaid MCO": "medicaid", "BlueRiver PPO": "commercial",
          "Keystone Commercial HMO": "commercial", "Self-pay": "self_pay"}
GROUPS = ("AM IOP", "PM IOP")
GOOD = {
    "MRN": "100231", "Last Name": "Alvarez", "First Name": "Marisol", "DOB": "03/14/1988",
    "Sex": "F", "Primary Payer": "Sunrise Medicaid MCO", "Member ID": "SMC44120931",
    "Level of Care": "2.1", "Admit Date": "11/02/2026", "Group": "AM IOP",
    "Primary Counselor": "Dana Whitfield, LCSW", "Prior Level of Care": "3.5",
    "Prior Auth #": "RS-77812", "Auth #": "IOP-55102", "Auth Start": "11/02/2026",
    "Auth End": "12/01/2026", "Auth Units": "12",
}

UNKNOWN_PAYER_HINT = (": no payer has this spelling; add it to the payer's census names (admin page Payers, or census_names in the clinic file)")


def _cell(value: str) -> str:
    return f'"{value}"' if "," in value or '"' in value else value


def csv_bytes(*rows: dict, header=COLUMNS) -> bytes:
    """Header plus one line per row (each a dict of overrides on a valid row), CRLF."""
    lines = [",".join(header)]
    for over in rows:
        row = {**GOOD, **over}
        lines.append(",".join(_cell(row[c]) for c in header))
    return ("\r\n".join(lines) + "\r\n").encode()


def parse(data: bytes):
    return parse_census(data, PAYERS, GROUPS)


def errors_of(data: bytes) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.column, e.reason) for e in parse(data).errors]


def test_a_good_row_parses_to_clean_values():
    result = parse(csv_bytes({}))
    assert result.ok and result.notes == []
    [row] = result.rows
    assert (row.line, row.mrn, row.dob, row.admit_date, row.payer, row.group) == (
        2, "100231", date(1988, 3, 14), date(2026, 11, 2), "Sunrise Medicaid MCO", "AM IOP")
    assert row.counselor == "Dana Whitfield, LCSW"
    assert (row.auth.number, row.auth.start, row.auth.end, row.auth.units) == (
        "IOP-55102", date(2026, 11, 2), date(2026, 12, 1), 12)


@pytest.mark.parametrize("over, expected", [
    ({"Primary Payer": "  sunrise   MEDICAID mco "}, ("payer", "Sunrise Medicaid MCO")),
    ({"Group": "am iop"}, ("group", "AM IOP")),
    ({"First Name": " Eric "}, ("first_name", "Eric")),
    ({"Last Name": "García-López", "First Name": "José"}, ("last_name", "García-López")),
    ({"Last Name": "Garci\u0301a"}, ("last_name", "García")),  # NFD in, NFC out
    ({"DOB": "7/9/1979"}, ("dob", date(1979, 7, 9))),
    ({"DOB": "02/29/1996"}, ("dob", date(1996, 2, 29))),
    ({"Level of Care": ""}, ("level_of_care", "2.1")),
    ({"Primary Payer": "Self-pay", "Member ID": ""}, ("member_id", None)),
    ({k: "" for k in ("Auth #", "Auth Start", "Auth End", "Auth Units")}, ("auth", None)),
    ({"Primary Counselor": "Marcus Greene, LPC, LCADC"}, ("counselor", "Marcus Greene, LPC, LCADC")),
])
def test_values_are_normalised(over, expected):
    result = parse(csv_bytes(over))
    assert result.ok, result.errors
    attr, value = expected
    assert getattr(result.rows[0], attr) == value


AUTH_TOGETHER = "Auth #, Auth Start, Auth End, Auth Units go together"


@pytest.mark.parametrize("over, column, reason", [
    ({"DOB": "13/02/1990"}, "DOB", 'bad date "13/02/1990": month 13 (expected M/D/YYYY)'),
    ({"DOB": "02/30/1990"}, "DOB", 'bad date "02/30/1990": day 30 is not in February 1990'),
    ({"DOB": "02/29/1990"}, "DOB", 'bad date "02/29/1990": day 29 is not in February 1990'),
    ({"DOB": "1990-02-13"}, "DOB", 'bad date "1990-02-13": expected M/D/YYYY'),
    ({"Admit Date": "11/2/26"}, "Admit Date", 'bad date "11/2/26": expected M/D/YYYY'),
    ({"DOB": "12/01/2026", "Admit Date": "11/02/2026"}, "DOB",
     "DOB 12/01/2026 is after Admit Date 11/02/2026"),
    ({"Primary Payer": "Unknown Payer Inc"}, "Primary Payer", 'unknown payer "Unknown Payer Inc"' + UNKNOWN_PAYER_HINT),
    ({"Group": "Evening IOP"}, "Group", 'unknown group "Evening IOP"'),
    ({"MRN": ""}, "MRN", "missing (required)"),
    ({"MRN": "100 231"}, "MRN", '"100 231" is not an MRN (letters, digits and hyphens only)'),
    ({"Last Name": "  "}, "Last Name", "missing (required)"),
    ({"First Name": ""}, "First Name", "missing (required)"),
    ({"DOB": ""}, "DOB", "missing (required)"),
    ({"Primary Payer": ""}, "Primary Payer", "missing (required)"),
    ({"Admit Date": ""}, "Admit Date", "missing (required)"),
    ({"Group": ""}, "Group", "missing (required)"),
    ({"Member ID": ""}, "Member ID", "missing (required for Sunrise Medicaid MCO)"),
    ({"Primary Payer": "blueriver ppo", "Member ID": ""}, "Member ID",
     "missing (required for BlueRiver PPO)"),
    ({"Auth End": ""}, "Auth End", f"missing; {AUTH_TOGETHER} (this row has Auth #, Auth Start, Auth Units)"),
    ({"Auth #": "", "Auth Start": "", "Auth End": ""}, "Auth #",
     f"missing; {AUTH_TOGETHER} (this row has Auth Units)"),
    ({"Auth Start": "12/02/2026"}, "Auth End", "Auth End 12/01/2026 is before Auth Start 12/02/2026"),
    ({"Auth Units": "twelve"}, "Auth Units", '"twelve" is not a whole number of units'),
    ({"Auth Units": "12.5"}, "Auth Units", '"12.5" is not a whole number of units'),
    ({"Auth Units": "0"}, "Auth Units", "0 units authorizes nothing"),
    ({"Auth Start": "11/31/2026"}, "Auth Start", 'bad date "11/31/2026": day 31 is not in November 2026'),
    ({"Level of Care": "IOP"}, "Level of Care", '"IOP" is not an ASAM level of care (such as 2.1)'),
    ({"Prior Level of Care": "9.9"}, "Prior Level of Care",
     '"9.9" is not an ASAM level of care (such as 2.1)'),
    ({"Member ID": "X" * 61}, "Member ID", "longer than 60 characters"),
])
def test_each_kind_of_faulty_row_is_named(over, column, reason):
    # Line 2 is good, line 3 carries the fault: the line number must be the file's.
    data = csv_bytes({"MRN": "100999", "Auth #": "IOP-1"}, over)
    assert (3, column, reason) in errors_of(data)
    assert [r.line for r in parse(data).rows] == [2]


def test_duplicate_mrn_with_same_data_is_a_note_not_an_error():
    # Same person written differently (date without zeros, payer in lower case, stray spaces).
    data = csv_bytes({}, {"DOB": "3/14/1988", "Primary Payer": "sunrise medicaid mco",
                          "First Name": " Marisol "})
    result = parse(data)
    assert result.ok
    assert [r.line for r in result.rows] == [2]
    assert [(n.line, n.reason) for n in result.notes] == [(3, "duplicate of line 2, same data")]


def test_duplicate_mrn_with_conflicting_data_names_the_differences():
    data = csv_bytes({}, {"Group": "PM IOP"})
    assert errors_of(data) == [(3, "MRN", (
        'MRN 100231 duplicates line 2 with conflicting data (this line vs line 2): '
        'Group "PM IOP" vs "AM IOP"'))]


def test_same_authorization_on_two_patients_is_refused():
    data = csv_bytes({}, {"MRN": "100232", "Member ID": "SMC2"})
    assert errors_of(data) == [(3, "Auth #", "authorization IOP-55102 is already on line 2 (MRN 100231)")]


@pytest.mark.parametrize("header, column, reason", [
    (COLUMNS[:-1], "Auth Units", "missing column in the header"),
    (COLUMNS + ("Notes",), "Notes", "unexpected column in the header"),
    (COLUMNS[:3] + ("MRN",) + COLUMNS[4:], "MRN", "column appears twice in the header"),
])
def test_wrong_header_is_a_line_1_error_and_stops(header, column, reason):
    data = ",".join(header).encode() + b"\r\n" + b"1,2,3\r\n"
    errors = errors_of(data)
    assert (1, column, reason) in errors
    assert errors[-1][0:2] == (1, None) and errors[-1][2].startswith("wrong header; expected: MRN, ")
    assert parse(data).rows == []


def test_header_matching_ignores_case_and_spaces():
    data = csv_bytes({}).replace(b"Last Name", b" last  name ", 1)
    assert parse(data).ok


@pytest.mark.parametrize("data, expected", [
    (b"", (1, None, "the file is empty; expected a header line")),
    (b"\r\n\r\n", (1, None, "the file is empty; expected a header line")),
])
def test_empty_file(data, expected):
    assert errors_of(data) == [expected]


def test_undecodable_bytes_are_reported_with_line_and_byte_offset():
    good = csv_bytes({})
    latin1 = csv_bytes({"MRN": "100232", "Member ID": "SMC2", "Auth #": "IOP-2",
                        "Last Name": "García"}).split(b"\r\n", 1)[1].replace(
        "García".encode(), "García".encode("latin-1"))
    data = good + latin1
    offset = data.index(b"\xed")
    assert errors_of(data) == [(3, "Last Name", (
        f"byte 0xED at byte offset {offset} is not UTF-8; export the census as CSV UTF-8"))]
    assert parse(data).rows == []


def _latin1(data: bytes) -> bytes:
    """What a census saved as Latin-1/cp1252 instead of UTF-8 looks like."""
    return data.decode("utf-8").encode("cp1252")


REORDERED = ("Last Name", "First Name", "MRN") + COLUMNS[3:]
SECOND = {"MRN": "100232", "Member ID": "SMC2", "Auth #": "IOP-2"}


BOM = b"\xef\xbb\xbf"


def _first_non_ascii(data: bytes) -> int:
    start = len(BOM) if data.startswith(BOM) else 0
    return next(i for i in range(start, len(data)) if data[i] >= 0x80)


@pytest.mark.parametrize("data, line, column", [
    (_latin1(csv_bytes({"Last Name": "García"})), 2, "Last Name"),
    (_latin1(csv_bytes({"First Name": "José"})), 2, "First Name"),
    (_latin1(csv_bytes({"Last Name": "García, Jr."})), 2, "Last Name"),  # quoted, comma before
    (_latin1(csv_bytes({"Primary Counselor": "Renée Roy, LPC"})), 2, "Primary Counselor"),
    (_latin1(csv_bytes({"Sex": "é"})), 2, "Sex"),
    # the file's own header order decides the column, not the expected order
    (_latin1(csv_bytes({"Last Name": "García"}, header=REORDERED)), 2, "Last Name"),
    (_latin1(csv_bytes({"First Name": "José"}, header=REORDERED)), 2, "First Name"),
    # a quoted line break in an earlier field: physical line 4, still the right column
    (_latin1(csv_bytes({"Primary Counselor": "Dana\r\nWhitfield, LCSW"}, {**SECOND, "First Name": "José"})),
     4, "First Name"),
    (_latin1(csv_bytes({"Primary Counselor": "Dana Whitfield,\r\nRenée Roy"})), 3, "Primary Counselor"),
    # CR-only and LF-only line ends count lines like the CSV reader does
    (_latin1(csv_bytes({}, {**SECOND, "Last Name": "García"})).replace(b"\r\n", b"\r"), 3, "Last Name"),
    (_latin1(csv_bytes({}, {**SECOND, "Last Name": "García"})).replace(b"\r\n", b"\n"), 3, "Last Name"),
    (BOM + _latin1(csv_bytes({"Last Name": "García"})), 2, "Last Name"),
    # a byte at the very start of a field or of a line
    (_latin1(csv_bytes({"Last Name": "Élan"})), 2, "Last Name"),
    (_latin1(csv_bytes({"MRN": "Ñ1"})), 2, "MRN"),
    # in the header: there is no column name to give, only its position
    (_latin1(csv_bytes({}).replace(b"Last Name", "Lást Name".encode(), 1)), 1, "column 2"),
])
def test_an_undecodable_byte_is_named_by_line_and_the_column_holding_it(data, line, column):
    offset = _first_non_ascii(data)
    assert errors_of(data) == [(line, column, (
        f"byte 0x{data[offset]:02X} at byte offset {offset} is not UTF-8; export the census as CSV UTF-8"))]


@pytest.mark.parametrize("data, line, column, first, more", [
    # a zip (an .xlsx) renamed .csv: one error, not one per byte
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5\xff" * 50, 1, "column 1", 14, 99),
    (bytes(range(256)) * 4, 3, "column 2", 128, 4 * 128 - 1),  # \n at 0x0A, \r at 0x0D, "," at 0x2C
    # two Latin-1 names: the first is reported, the second counted
    (_latin1(csv_bytes({"Last Name": "García"}, {**SECOND, "First Name": "José"})), 2, "Last Name", None, 1),
    # a truncated multi-byte sequence counts each of its bytes
    (csv_bytes({}) + b"100300,Gar\xe2\x82,Jo\xe9\r\n", 3, "Last Name", None, 2),
])
def test_undecodable_input_is_one_error_with_a_count_of_the_rest(data, line, column, first, more):
    [error] = parse(data).errors
    offset = first if first is not None else _first_non_ascii(data)
    assert (error.line, error.column) == (line, column)
    plural = "is 1 more byte" if more == 1 else f"are {more} more bytes"
    assert error.reason == (f"byte 0x{data[offset]:02X} at byte offset {offset} is not UTF-8 "
                            f"(nor {plural} after it); export the census as CSV UTF-8")
    assert parse(data).rows == []


def test_wrong_number_of_fields_and_unclosed_quote():
    data = csv_bytes({}) + b"100300,Doe,Jane,01/01/1990\r\n"
    assert errors_of(data) == [(3, None, "4 fields, expected 17 (a value with a comma must be in double quotes)")]
    broken = csv_bytes({}) + b'100300,"Doe,Jane\r\n'
    [(line, column, reason)] = errors_of(broken)
    assert (line, column) == (3, None) and reason.startswith("not readable as CSV")


def test_line_numbers_count_physical_lines_and_skip_blank_ones():
    data = csv_bytes({}) + b"\r\n" + csv_bytes({"MRN": "100232", "Auth #": "IOP-2", "DOB": "x"}).split(b"\r\n", 1)[1]
    assert errors_of(data) == [(4, "DOB", 'bad date "x": expected M/D/YYYY')]


def test_bom_and_crlf_and_bare_lf_are_all_read():
    assert parse(b"\xef\xbb\xbf" + csv_bytes({})).ok
    assert parse(csv_bytes({}).replace(b"\r\n", b"\n")).ok


def test_parse_date_accepts_both_zero_padding_styles():
    assert parse_date("7/9/1979") == parse_date("07/09/1979") == date(1979, 7, 9)
    with pytest.raises(ValueError, match="month 13"):
        parse_date("13/02/1990")


# --- the shared fixture -------------------------------------------------------------------------

FIXTURE_ERRORS = [
    RowError(23, "DOB", 'bad date "13/02/1990": month 13 (expected M/D/YYYY)'),
    RowError(24, "MRN", (
        'MRN 100232 duplicates line 3 with conflicting data (this line vs line 3): '
        'Group "PM IOP" vs "AM IOP"; '
        'Primary Counselor "Marcus Greene, LPC, LCADC" vs "Dana Whitfield, LCSW"; '
        'authorization (empty) vs "IOP-55103" 11/02/2026-12/01/2026 12 units')),
    RowError(25, "Primary Payer", 'unknown payer "Unknown Payer Inc"' + UNKNOWN_PAYER_HINT),
]


def test_fixture_names_its_three_faulty_rows_exactly():
    result = parse(FIXTURE.read_bytes())
    assert result.errors == FIXTURE_ERRORS
    assert result.notes == []


def test_fixture_every_other_row_parses():
    result = parse(FIXTURE.read_bytes())
    assert [r.line for r in result.rows] == list(range(2, 23))
    by_mrn = {r.mrn: r for r in result.rows}
    assert by_mrn["100232"].dob == date(1979, 7, 9)          # 7/9/1979, lower-case payer
    assert by_mrn["100232"].payer == "Sunrise Medicaid MCO"
    assert by_mrn["100233"].last_name == "García-López" and by_mrn["100233"].first_name == "José"
    assert by_mrn["100239"].first_name == "Eric"              # "Eric " in the file
    assert by_mrn["100243"].dob == date(1996, 2, 29)          # leap day
    assert by_mrn["100253"].first_name == "Ana Sofía"
    assert by_mrn["100256"].last_name == "Running Bear"
    assert by_mrn["100251"].counselor == "Marcus Greene, LPC, LCADC"
    assert by_mrn["100234"].member_id is None and by_mrn["100234"].auth is None
    assert by_mrn["100235"].prior_level_of_care == "3.7" and by_mrn["100235"].auth is None
    # lines 5, 6, 12, 13, 19 and 22 carry no authorization
    assert sum(1 for r in result.rows if r.auth) == 15


@pytest.mark.parametrize("over, column, words", [
    ({"DOB": "1/1/1890"}, "DOB", "DOB 1/1/1890 is outside 1900–2100"),
    ({"Admit Date": "1/1/1999", "DOB": "1/1/1980"}, "Admit Date", "Admit Date 1/1/1999 is outside 2000–2100"),
    ({"Auth Start": "1/1/2101", "Auth End": "1/2/2101"}, "Auth Start", "outside 2000–2100"),
])
def test_implausible_years_are_named(over, column, words):
    """QA: DOB 1890 and an admit date in year 1 were taken (the latter only as 'DOB is after
    Admit Date')."""
    found = errors_of(csv_bytes(over))
    assert any(c == column and words in reason for _, c, reason in found), found


@pytest.mark.parametrize("over, column, words", [
    ({"DOB": "12/31/2026"}, "DOB", "is in the future"),
    ({"Admit Date": "1/1/2035", "Auth Start": "1/1/2035", "Auth End": "1/31/2035"},
     "Admit Date", "more than a year ahead"),
])
def test_with_today_a_future_dob_or_a_far_admission_is_named(over, column, words):
    result = parse_census(csv_bytes(over), PAYERS, GROUPS, today=date(2026, 12, 3))
    assert any(e.column == column and words in e.reason for e in result.errors), result.errors
    # a year ahead to the day is still a plan, not a typo
    near = parse_census(csv_bytes({"Admit Date": "12/3/2027", "Auth Start": "12/3/2027",
                                   "Auth End": "12/31/2027"}), PAYERS, GROUPS, today=date(2026, 12, 3))
    assert near.ok, near.errors
