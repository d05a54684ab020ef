"""Read and check an EHR census export (CSV) without touching the database or Flask.

The export is what the EHR gives us, not what we would like: UTF-8 with or without a BOM, CRLF,
M/D/YYYY dates with or without leading zeros, payer names in any case, stray spaces, quoted
fields with commas. Everything that can be known from the file plus the lists of payer and group
names is checked here, so the importer only has to compare clean rows with the database.

Line numbers are the file's physical line numbers (the header is line 1), so a coordinator can
open the file in any editor and go straight to the faulty row.
"""
from __future__ import annotations

import calendar
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Iterable, Mapping

from portal.rules.invisible_text import describe, first_invisible

# Plausible dates: a living patient's DOB; program dates (admission, authorizations) in the
# 2000-2100 window every other date field of the portal uses (portal.input_dates).
PROGRAM_DATES = (date(2000, 1, 1), date(2100, 12, 31))
DATE_RANGES = {"DOB": (date(1900, 1, 1), date(2100, 12, 31))}
ADMIT_AHEAD = timedelta(days=366)

COLUMNS = (
    "MRN", "Last Name", "First Name", "DOB", "Sex", "Primary Payer", "Member ID", "Level of Care",
    "Admit Date", "Group", "Primary Counselor", "Prior Level of Care", "Prior Auth #", "Auth #",
    "Auth Start", "Auth End", "Auth Units",
)
# Census v2 adds the subscriber's address and phone (the 837P needs them); files without these
# columns still import, and then keep whatever address the portal has.
# "Diagnoses" (ICD-10-CM, principal first, separated by ";") is optional too: a claim needs a
# diagnosis and many EHR census reports can add the column.
# "QMB" (Y/N) marks a Qualified Medicare Beneficiary, who may never be charged a no-show fee
# (42 USC 1396a(n)(3)(B)); the EHR's eligibility check knows it, so the census carries it.
OPTIONAL_COLUMNS = ("Address", "City", "State", "ZIP", "Phone", "Diagnoses", "QMB")
# How EHRs write a yes/no flag; blank means "not exported" (the portal keeps what it has).
YES_NO = {"y": True, "yes": True, "true": True, "1": True,
          "n": False, "no": False, "false": False, "0": False}
_ICD10 = re.compile(r"([A-TV-Z][0-9][0-9AB])\.?([0-9A-TV-Z]{1,4})?")
ADDRESS_COLUMNS = ("Address", "City", "State", "ZIP")
REQUIRED = ("MRN", "Last Name", "First Name", "DOB", "Primary Payer", "Admit Date", "Group")
AUTH_COLUMNS = ("Auth #", "Auth Start", "Auth End", "Auth Units")
SELF_PAY_KIND = "self_pay"
DEFAULT_LEVEL_OF_CARE = "2.1"  # an IOP census row is ASAM 2.1 unless it says otherwise

# Widths of the columns the values land in; checking here turns a database error into a message.
MAX_LENGTH = {
    "MRN": 40, "Last Name": 100, "First Name": 100, "Sex": 10, "Member ID": 60,
    "Primary Counselor": 200, "Prior Auth #": 60, "Auth #": 60, "Address": 55, "City": 30,
    "Diagnoses": 200,
}
# How EHRs write Sex -> X12 DMG03 (F, M, U). "X" (non-binary marker on some IDs) has no X12
# code of its own; U ("unknown") is what 005010X222A1 allows.
SEX_CODES = {"f": "F", "female": "F", "m": "M", "male": "M", "u": "U", "unknown": "U",
             "x": "U", "unk": "U", "nonbinary": "U", "non-binary": "U"}
US_STATES = frozenset("""AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS
MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI""".split())
_ZIP = re.compile(r"([0-9]{5})(?:-?([0-9]{4}))?")
_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_MRN = re.compile(r"[A-Za-z0-9-]+")
_LEVEL = re.compile(r"[0-4](\.[0-9])?")
_UNITS = re.compile(r"[0-9]{1,6}")
# A census of one IOP program is tens to a few hundred rows; past this the file is not a census
# (110,000 near-empty rows once took 8 s and 52 MB of HTML to report).
MAX_ROWS = 5000


@dataclass(frozen=True)
class RowError:
    """Why a line cannot be imported. ``column`` is None when the whole line is at fault."""

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class RowNote:
    """Something worth telling the user that does not stop the import."""

    line: int
    reason: str


@dataclass(frozen=True)
class CensusAuth:
    number: str
    start: date
    end: date
    units: int
    code: str | None = None  # the HCPCS code it covers, when the census names one


@dataclass(frozen=True)
class CensusRow:
    """One clean census row. ``payer`` and ``group`` are the canonical names the caller passed in."""

    line: int
    mrn: str
    last_name: str
    first_name: str
    dob: date
    sex: str | None
    payer: str
    member_id: str | None
    level_of_care: str
    admit_date: date
    group: str
    counselor: str | None
    prior_level_of_care: str | None
    prior_auth_number: str | None
    auth: CensusAuth | None
    address_line1: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None  # 5 or 9 digits, no dash
    phone: str | None = None  # 10 digits
    diagnoses: str | None = None  # "F10.20,F12.10"
    qmb: bool | None = None  # None: the file does not say (blank cell or no QMB column)

    def differences(self, other: "CensusRow") -> list[str]:
        """What differs from ``other`` (the line number aside), one readable phrase per field,
        such as ``Group "PM IOP" vs "AM IOP"``."""
        out = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name != "line" and mine != theirs:
                out.append(f"{_FIELD_LABELS[f.name]} {_show(mine)} vs {_show(theirs)}")
        return out


def _show(value) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, date):
        return f"{value.month:02d}/{value.day:02d}/{value.year}"
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, CensusAuth):
        return f'"{value.number}" {_show(value.start)}-{_show(value.end)} {value.units} units'
    return f'"{value}"'


_FIELD_LABELS = {
    "mrn": "MRN", "last_name": "Last Name", "first_name": "First Name", "dob": "DOB", "sex": "Sex",
    "payer": "Primary Payer", "member_id": "Member ID", "level_of_care": "Level of Care",
    "admit_date": "Admit Date", "group": "Group", "counselor": "Primary Counselor",
    "prior_level_of_care": "Prior Level of Care", "prior_auth_number": "Prior Auth #",
    "auth": "authorization", "address_line1": "Address", "city": "City", "state": "State",
    "zip": "ZIP", "phone": "Phone", "diagnoses": "Diagnoses", "qmb": "QMB",
}


@dataclass
class ParseResult:
    """``rows``: clean rows, one per MRN, in file order. ``errors``: every fault found.
    ``notes``: harmless oddities (a duplicate row with the same data)."""

    rows: list[CensusRow]
    errors: list[RowError]
    notes: list[RowNote]

    @property
    def ok(self) -> bool:
        return not self.errors


def normalize_name(value: str) -> str:
    """Key for matching payer and group names: case-folded, spaces collapsed."""
    return " ".join(value.split()).casefold()


def clean_text(value: str) -> str:
    """Stray spaces removed, runs collapsed, NFC so that "José" typed two ways compares equal.
    Accents and punctuation are kept as they are."""
    return unicodedata.normalize("NFC", " ".join(value.split()))


def parse_date(text: str) -> date:
    """``M/D/YYYY`` (leading zeros optional) -> ``date``.

    Raises ``ValueError`` with a message naming what is wrong (month 13, day 30 of February).
    """
    m = _DATE.fullmatch(text)
    if not m:
        raise ValueError(f'bad date "{text}": expected M/D/YYYY')
    month, day, year = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        raise ValueError(f'bad date "{text}": month {month} (expected M/D/YYYY)')
    last_day = calendar.monthrange(year, month)[1] if year >= 1 else 0
    if year < 1 or not 1 <= day <= last_day:
        raise ValueError(f'bad date "{text}": day {day} is not in '
                         f'{calendar.month_name[month]} {year}')
    return date(year, month, day)


def parse_census(data: bytes, payers: Mapping[str, str], groups: Iterable[str],
                 aliases: Mapping[str, str] | None = None, *, today: date | None = None) -> ParseResult:
    """Parse and check a census export.

    ``payers`` maps each known payer name to its kind (``"self_pay"`` needs no member ID);
    ``groups`` are the known group (cohort) names. Both are matched case-insensitively with
    spaces collapsed, and rows carry the canonical spelling passed in. ``aliases`` maps other
    spellings the EHR uses (a payer's ``census_aliases``) to the canonical payer name.
    ``today`` (the program's date), when given, also refuses a DOB in the future and an Admit
    Date more than a year ahead. Never raises for bad input: every fault is a ``RowError``.
    """
    text, errors = _decode(data)
    if errors:
        return ParseResult([], errors, [])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return ParseResult([], [RowError(1, None, f"not a readable CSV header ({exc})")], [])
    if header is None or not any(cell.strip() for cell in header):
        return ParseResult([], [RowError(1, None, "the file is empty; expected a header line")], [])
    index, errors = _check_header(header)
    if errors:
        return ParseResult([], errors, [])

    payer_by_key = {normalize_name(name): (name, kind) for name, kind in payers.items()}
    for spelling, name in (aliases or {}).items():
        if name in payers:
            payer_by_key.setdefault(normalize_name(spelling), (name, payers[name]))
    group_by_key = {normalize_name(name): name for name in groups}
    rows: list[CensusRow] = []
    notes: list[RowNote] = []
    first_by_mrn: dict[str, CensusRow] = {}
    auth_owner: dict[tuple[str, str], CensusRow] = {}
    next_line = reader.line_num + 1
    while True:
        line = next_line
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(RowError(line, None, f"not readable as CSV ({exc})"))
            break  # the reader cannot resynchronise after a broken quote
        next_line = reader.line_num + 1
        if line > MAX_ROWS + 1:
            # The only error worth reading: the rows' own faults would bury it.
            return ParseResult([], [RowError(line, None, (
                f"the file has more than {MAX_ROWS:,} rows; a census export of one program is "
                "far smaller. Check that you chose the right file."))], [])
        if not any(cell.strip() for cell in record):
            continue  # blank lines (often a trailing one) carry nothing
        if len(record) != len(header):
            errors.append(RowError(line, None, f"{len(record)} fields, expected {len(header)} "
                                               "(a value with a comma must be in double quotes)"))
            continue
        values = {col: "" for col in OPTIONAL_COLUMNS}
        values.update({col: record[i] for col, i in index.items()})
        row, row_errors = _parse_row(line, values, payer_by_key, group_by_key, today)
        errors.extend(row_errors)
        if row is None:
            continue
        first = first_by_mrn.get(row.mrn)
        if first is not None:
            diff = row.differences(first)
            if diff:
                errors.append(RowError(line, "MRN", (
                    f"MRN {row.mrn} duplicates line {first.line} with conflicting data "
                    f"(this line vs line {first.line}): {'; '.join(diff)}")))
            else:
                notes.append(RowNote(line, f"duplicate of line {first.line}, same data"))
            continue
        first_by_mrn[row.mrn] = row
        if row.auth:
            key = (row.payer, row.auth.number)
            owner = auth_owner.get(key)
            if owner is not None:
                errors.append(RowError(line, "Auth #", f"authorization {row.auth.number} is "
                                       f"already on line {owner.line} (MRN {owner.mrn})"))
                continue
            auth_owner[key] = row
        rows.append(row)
    return ParseResult(rows, errors, notes)


def _decode(data: bytes) -> tuple[str, list[RowError]]:
    """UTF-8 (a BOM is dropped). Undecodable input is ONE error: where the first bad byte is
    (line, column, byte offset) and how many more bad bytes follow.  A binary file renamed .csv
    would otherwise drown the user in one error per byte, and once the encoding is wrong nothing
    after the first bad byte is worth reading anyway."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8"), []
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
    # surrogateescape turns each undecodable byte into exactly one lone surrogate.
    bad = len(_ESCAPED.findall(data[bom:].decode("utf-8", "surrogateescape")))
    more = bad - 1
    line, column = _locate(data[bom:offset].decode("utf-8", "replace"))
    reason = f"byte 0x{data[offset]:02X} at byte offset {offset} is not UTF-8"
    if more:
        reason += f" (nor {'is' if more == 1 else 'are'} {more} more byte{'s' if more != 1 else ''} after it)"
    return "", [RowError(line, column, reason + "; export the census as CSV UTF-8")]


_ESCAPED = re.compile("[\udc80-\udcff]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _locate(prefix: str) -> tuple[int, str | None]:
    """Physical line and column of the character right after ``prefix`` (the decoded text before
    a bad byte).  Counts line breaks the way the csv reader does (CRLF, CR or LF), and finds the
    field by reading ``prefix`` as CSV up to a sentinel, so quoted commas and line breaks inside
    quotes are handled, and names the field by the file's own header (columns may come in any
    order).  Returns column None when the prefix is not readable as CSV."""
    line = len(_LINE_BREAK.findall(prefix)) + 1
    try:
        records = list(csv.reader(io.StringIO(prefix + "x", newline="")))
    except csv.Error:
        return line, None
    position = len(records[-1]) - 1
    if len(records) == 1:  # in the header itself
        return line, f"column {position + 1}"
    header = records[0]
    if position >= len(header):
        return line, f"column {position + 1}"
    known = {normalize_name(c): c for c in COLUMNS}
    cell = header[position]
    return line, known.get(normalize_name(cell)) or cell.strip() or f"column {position + 1}"


def _check_header(header: list[str]) -> tuple[dict[str, int], list[RowError]]:
    """Map column name -> position; a missing, unknown or repeated column is a line-1 error."""
    known = {normalize_name(c): c for c in COLUMNS + OPTIONAL_COLUMNS}
    index: dict[str, int] = {}
    errors = []
    for i, cell in enumerate(header):
        name = known.get(normalize_name(cell))
        if name is None:
            errors.append(RowError(1, cell.strip() or f"column {i + 1}",
                                   "unexpected column in the header"))
        elif name in index:
            errors.append(RowError(1, name, "column appears twice in the header"))
        else:
            index[name] = i
    for name in COLUMNS:
        if name not in index:
            errors.append(RowError(1, name, "missing column in the header"))
    if errors:
        errors.append(RowError(1, None, "wrong header; expected: " + ", ".join(COLUMNS)
                               + " (and optionally " + ", ".join(OPTIONAL_COLUMNS) + ")"))
    return index, errors


def _parse_row(line: int, raw: dict[str, str], payers: dict[str, tuple[str, str]],
               groups: dict[str, str], today: date | None = None
               ) -> tuple[CensusRow | None, list[RowError]]:
    errors: list[RowError] = []

    def fail(column: str, reason: str) -> None:
        errors.append(RowError(line, column, reason))

    for col, value in raw.items():
        # NUL and other controls, and the bidi controls that can make "Smith" display as
        # another name (Trojan Source), never belong in a census value.
        bad = first_invisible(value)
        if bad is not None:
            fail(col, f"contains the invisible control character {describe(bad)}; "
                      "retype the value in the EHR")
    if errors:
        return None, errors
    v = {col: clean_text(value) for col, value in raw.items()}

    for col in REQUIRED:
        if not v[col]:
            fail(col, "missing (required)")
    for col, width in MAX_LENGTH.items():
        if len(v[col]) > width:
            fail(col, f"longer than {width} characters")
    if v["MRN"] and not _MRN.fullmatch(v["MRN"]):
        fail("MRN", f'"{v["MRN"]}" is not an MRN (letters, digits and hyphens only)')

    def read_date(col: str) -> date | None:
        if not v[col]:
            return None
        try:
            value = parse_date(v[col])
        except ValueError as exc:
            fail(col, str(exc))
            return None
        first, last = DATE_RANGES.get(col, PROGRAM_DATES)
        if not first <= value <= last:
            fail(col, f"{col} {v[col]} is outside {first.year}–{last.year}; check the year")
            return None
        return value

    dob, admit = read_date("DOB"), read_date("Admit Date")
    if dob and admit and dob > admit:
        fail("DOB", f"DOB {v['DOB']} is after Admit Date {v['Admit Date']}")
    if today is not None:
        if dob and dob > today:
            fail("DOB", f"DOB {v['DOB']} is in the future")
        if admit and admit > today + ADMIT_AHEAD:
            fail("Admit Date", f"Admit Date {v['Admit Date']} is more than a year ahead; "
                               "check the year")

    payer = kind = None
    if v["Primary Payer"]:
        found = payers.get(normalize_name(v["Primary Payer"]))
        if found is None:
            fail("Primary Payer", f'unknown payer "{v["Primary Payer"]}": no payer has this '
                                  "spelling; add it to the payer's census names (admin page "
                                  "Payers, or census_names in the clinic file)")
        else:
            payer, kind = found
            if kind != SELF_PAY_KIND and not v["Member ID"]:
                fail("Member ID", f"missing (required for {payer})")

    group = None
    if v["Group"]:
        group = groups.get(normalize_name(v["Group"]))
        if group is None:
            fail("Group", f'unknown group "{v["Group"]}"')

    level = v["Level of Care"] or DEFAULT_LEVEL_OF_CARE
    for col, value in (("Level of Care", level), ("Prior Level of Care", v["Prior Level of Care"])):
        if value and not _LEVEL.fullmatch(value):
            fail(col, f'"{value}" is not an ASAM level of care (such as 2.1)')

    auth = _parse_auth(v, fail, read_date)
    sex = None
    if v["Sex"]:
        sex = SEX_CODES.get(v["Sex"].casefold())
        if sex is None:
            fail("Sex", f'"{v["Sex"]}" is not a sex the 837P can carry (F, Female, M, Male, '
                        "Unknown, U or X)")
    address = _parse_address(v, fail)
    qmb = None
    if v["QMB"]:
        qmb = YES_NO.get(v["QMB"].casefold())
        if qmb is None:
            fail("QMB", f'"{v["QMB"]}" is not Y or N (Qualified Medicare Beneficiary)')
    if errors:
        return None, errors
    return CensusRow(
        line=line, mrn=v["MRN"], last_name=v["Last Name"], first_name=v["First Name"], dob=dob,
        sex=sex, payer=payer, member_id=v["Member ID"] or None, level_of_care=level,
        admit_date=admit, group=group, counselor=v["Primary Counselor"] or None,
        prior_level_of_care=v["Prior Level of Care"] or None,
        prior_auth_number=v["Prior Auth #"] or None, auth=auth, qmb=qmb, **address,
    ), []


def _parse_address(v: dict[str, str], fail) -> dict:
    """Address, City, State, ZIP go together (an 837P N3/N4 needs all four); Phone stands alone.
    All blank: no address (the import keeps what the portal has)."""
    out: dict = {}
    filled = [col for col in ADDRESS_COLUMNS if v[col]]
    if filled and len(filled) < len(ADDRESS_COLUMNS):
        for col in ADDRESS_COLUMNS:
            if not v[col]:
                fail(col, f"missing; {', '.join(ADDRESS_COLUMNS)} go together "
                          f"(this row has {', '.join(filled)})")
    elif filled:
        state = v["State"].upper()
        if state not in US_STATES:
            fail("State", f'"{v["State"]}" is not a US state code (two letters, such as IL)')
        m = _ZIP.fullmatch(v["ZIP"].replace(" ", ""))
        if not m:
            fail("ZIP", f'"{v["ZIP"]}" is not a ZIP code (5 or 9 digits, such as 60614 or '
                        "60614-2207)")
        else:
            out["zip"] = m.group(1) + (m.group(2) or "")
        out.update(address_line1=v["Address"], city=v["City"], state=state)
    if v["Phone"]:
        digits = re.sub(r"[\s().+-]", "", v["Phone"])
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        if not digits.isdigit() or len(digits) != 10:
            fail("Phone", f'"{v["Phone"]}" is not a phone number (10 digits)')
        else:
            out["phone"] = digits
    if v["Diagnoses"]:
        codes = []
        for code in re.split(r"[;,\s]+", v["Diagnoses"].upper()):
            m = _ICD10.fullmatch(code) if code else None
            if code and m is None:
                fail("Diagnoses", f'"{code}" is not an ICD-10-CM code (such as F10.20)')
            elif m:
                codes.append(m.group(1) + (f".{m.group(2)}" if m.group(2) else ""))
        if codes:
            out["diagnoses"] = ",".join(codes)
    return out


def _parse_auth(v: dict[str, str], fail, read_date) -> CensusAuth | None:
    """The four auth columns are all filled or all empty: half an authorization is a typo."""
    filled = [col for col in AUTH_COLUMNS if v[col]]
    if not filled:
        return None
    if len(filled) < len(AUTH_COLUMNS):
        for col in AUTH_COLUMNS:
            if not v[col]:
                fail(col, f"missing; {', '.join(AUTH_COLUMNS)} go together "
                          f"(this row has {', '.join(filled)})")
        return None
    start, end = read_date("Auth Start"), read_date("Auth End")
    units = None
    if not _UNITS.fullmatch(v["Auth Units"]):
        fail("Auth Units", f'"{v["Auth Units"]}" is not a whole number of units')
    elif int(v["Auth Units"]) == 0:
        fail("Auth Units", "0 units authorizes nothing")
    else:
        units = int(v["Auth Units"])
    if start and end and end < start:
        fail("Auth End", f"Auth End {v['Auth End']} is before Auth Start {v['Auth Start']}")
        return None
    if start is None or end is None or units is None:
        return None
    return CensusAuth(number=v["Auth #"], start=start, end=end, units=units)


__all__ = [
    "ADDRESS_COLUMNS", "AUTH_COLUMNS", "COLUMNS", "MAX_ROWS", "OPTIONAL_COLUMNS", "SEX_CODES", "YES_NO", "CensusAuth",
    "CensusRow", "ParseResult", "REQUIRED", "RowError",
    "RowNote", "clean_text", "normalize_name", "parse_census", "parse_date",
]
