"""Property tests (Hypothesis) for the pure input readers: whatever bytes arrive, the census
parser, the signature judge and the date/number readers answer with a message, never an
exception of another kind."""
from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from portal.census.parse import COLUMNS, MAX_ROWS, parse_census
from portal.input_dates import DATE_MAX, DATE_MIN, DateInputError, read_date, read_whole_number
from portal.services.roster import json_depth
from portal.signatures import SignatureRejected, check_signature_png

PAYERS = {"Sunrise Medicaid MCO": "medicaid", "Self-pay": "self_pay"}
GROUPS = ["AM IOP", "PM IOP"]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that tends to break parsers: controls, bidi overrides, non-ASCII digits, quotes, commas.
nasty_text = st.text(alphabet=st.one_of(
    st.characters(codec="utf-8"), st.sampled_from(list("\x00\r\n\",/-.0123456789²٣\u202e\u2066\ufeff"))),
    max_size=30)


def _csv_line(cells):
    return ",".join('"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\r\n') else c
                    for c in cells)


@FAST
@given(st.binary(max_size=4000))
def test_census_parser_never_raises_on_any_bytes(data):
    result = parse_census(data, PAYERS, GROUPS)
    assert isinstance(result.errors, list)


@FAST
@given(st.lists(st.lists(nasty_text, min_size=len(COLUMNS), max_size=len(COLUMNS)), max_size=8))
def test_census_parser_never_raises_on_any_rows(rows):
    text = "\r\n".join([_csv_line(COLUMNS)] + [_csv_line(r) for r in rows])
    result = parse_census(text.encode("utf-8"), PAYERS, GROUPS)
    for row in result.rows:  # whatever got through is clean
        for value in (row.mrn, row.first_name, row.last_name, row.member_id or ""):
            assert not any(ch in value for ch in "\x00\u202e\u2066\ufeff")
    assert result.ok or result.errors


def test_census_parser_stops_at_the_row_cap():
    header = _csv_line(COLUMNS)
    data = (header + "\r\n" + "x,,,,,,,,,,,,,,,,\r\n" * (MAX_ROWS + 500)).encode()
    result = parse_census(data, PAYERS, GROUPS)
    assert any("more than" in e.reason for e in result.errors)
    assert max(e.line for e in result.errors) <= MAX_ROWS + 2


@pytest.mark.parametrize("bad", ["Mari\x00sol", "Smi\u202eht", "Ann\u2066e", "Jo\x07e"])
def test_census_names_with_control_or_bidi_characters_are_refused(bad):
    row = ["100231", bad, "Marisol", "3/14/1988", "F", "Sunrise Medicaid MCO", "SMC1", "2.1",
           "11/2/2026", "AM IOP", "", "", "", "", "", "", ""]
    result = parse_census((_csv_line(COLUMNS) + "\r\n" + _csv_line(row)).encode(), PAYERS, GROUPS)
    assert not result.rows
    assert any("control character" in e.reason and e.column == "Last Name" for e in result.errors)


@FAST
@given(st.binary(max_size=3000))
def test_signature_judge_only_ever_rejects(data):
    try:
        check_signature_png(data, 512 * 1024)
    except SignatureRejected:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from(["RGBA", "L", "P", "1", "I;16", "LA", "RGB"]),
       st.integers(0, 2))
def test_signature_judge_handles_any_png_shape(width, height, mode, corrupt):
    assume(width * height <= 4_000_000)
    buf = io.BytesIO()
    Image.new(mode, (width, height)).save(buf, format="PNG")
    data = buf.getvalue()
    if corrupt == 1:
        data = data[: len(data) // 2]
    elif corrupt == 2:
        data = data[:40] + b"\x00" * 16 + data[56:]
    with pytest.raises(SignatureRejected):  # blank, odd sizes or damaged: never accepted
        check_signature_png(data, 512 * 1024)


@FAST
@given(nasty_text)
def test_dates_are_read_or_refused_with_a_message(text):
    try:
        value = read_date(text)
    except DateInputError as exc:
        assert str(exc)
    else:
        assert DATE_MIN <= value <= DATE_MAX


@pytest.mark.parametrize("text", ["0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31",
                                  "２０２６-11-30", "2026-11-3٠", "2026-02-30", "+2026-01-01"])
def test_dates_outside_the_sane_range_or_with_odd_digits_are_refused(text):
    with pytest.raises(DateInputError):
        read_date(text)


@pytest.mark.parametrize("text", ["²", "٣", "1e3", "-1", " ", "9" * 13, "1_000"])
def test_whole_numbers_are_ascii_digits_only(text):
    with pytest.raises(ValueError):
        read_whole_number(text)


@FAST
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3),
                    max_leaves=20))
def test_json_depth_matches_the_parsed_structure(value):
    def depth(v):
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        return 0
    assert json_depth(json.dumps(value)) == depth(value)
