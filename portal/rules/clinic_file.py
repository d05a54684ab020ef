"""Read and check a clinic file (docs/setup.md): one YAML file describing the program, its staff,
cohorts, payers and closures. Pure: no Flask, no database. The caller passes what the file is
checked against (roles, payer rule files, which credentials need a supervisor).

Every fault is collected (not just the first) as ``file:line: field: message`` so a coordinator
can fix the whole file in one pass. Values are read from the YAML text as written, never through
YAML 1.1's guesses: ``9:00`` would otherwise be the integer 540 and an NPI an int.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from portal.rules.npi import npi_problem

MAX_BYTES = 1024 * 1024
TOP_KEYS = ("program", "staff", "cohorts", "payers", "closures")
PROGRAM_KEYS = ("legal_name", "billing_npi", "taxonomy_code", "tax_id", "service_address",
                "pay_to_address", "contact", "time_zone", "default_place_of_service")
ADDRESS_KEYS = ("line1", "line2", "city", "state", "zip")
CONTACT_KEYS = ("name", "phone")
STAFF_KEYS = ("name", "email", "role", "credentials", "npi", "supervisor", "active", "payer_scope")
COHORT_KEYS = ("name", "weekdays", "start", "end", "modality", "facilitator", "capacity",
               "place_of_service", "effective_from", "effective_to")
PAYER_KEYS = ("name", "rules", "payer_id", "census_names", "contact")
CLOSURE_KEYS = ("date", "reason")
MODALITIES = ("in_person", "video", "audio_only")
# Roles that may run a group (be a cohort's facilitator).
FACILITATING_ROLES = ("facilitator", "clinician", "admin")

# USPS state and territory codes (X12 N402 takes these).
STATES = frozenset("""AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO
MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI""".split())
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TAXONOMY = re.compile(r"[0-9]{3}[0-9A-Z]{6}X")  # NUCC provider taxonomy: 10 chars ending in X
_EIN = re.compile(r"([0-9]{2})-?([0-9]{7})")
_POS = re.compile(r"[0-9]{2}")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_PAYER_ID = re.compile(r"[0-9A-Za-z]{2,80}")


class ClinicFileError(Exception):
    """The file cannot be applied. ``problems`` lists every fault as ``file:line: field: why``."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str | None
    city: str
    state: str
    zip: str  # digits only


@dataclass(frozen=True)
class ProgramSpec:
    legal_name: str
    billing_npi: str
    taxonomy_code: str
    tax_id: str  # 9 digits
    service_address: Address
    pay_to_address: Address | None
    contact_name: str
    contact_phone: str  # 10 digits
    time_zone: str
    default_pos: str


@dataclass(frozen=True)
class StaffSpec:
    line: int
    name: str
    email: str  # lower case
    role: str
    credentials: str | None
    npi: str | None
    supervisor: str | None  # email, lower case
    active: bool


@dataclass(frozen=True)
class CohortSpec:
    line: int
    name: str
    weekdays: tuple[int, ...]
    start: time
    end: time
    modality: str
    facilitator: str | None  # email
    capacity: int
    place_of_service: str | None
    effective_from: date | None
    effective_to: date | None

    @property
    def duration_minutes(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)


@dataclass(frozen=True)
class PayerSpec:
    line: int
    name: str
    rules: str
    payer_id: str
    census_names: tuple[str, ...]
    contact: str | None


@dataclass(frozen=True)
class ClosureSpec:
    line: int
    date: date
    reason: str


@dataclass(frozen=True)
class ClinicSpec:
    program: ProgramSpec
    staff: tuple[StaffSpec, ...]
    cohorts: tuple[CohortSpec, ...]
    payers: tuple[PayerSpec, ...]
    closures: tuple[ClosureSpec, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checks:
    """What the file is checked against. ``payer_rules`` maps rule-file key -> payer kind."""

    roles: tuple[str, ...]
    payer_rules: Mapping[str, str]
    supervised_credentials: frozenset[str] = frozenset()


def normalize_name(value: str) -> str:
    """The census's matching key (case-folded, spaces collapsed): census_names match this way."""
    return " ".join(value.split()).casefold()


def credential_list(credentials: str | None) -> list[str]:
    """"LPC, LCADC" -> ["LPC", "LCADC"]."""
    return [c.strip().upper() for c in (credentials or "").replace("/", ",").split(",") if c.strip()]


# --- YAML with line numbers -------------------------------------------------------------------

class _Map(dict):
    """A YAML mapping that remembers its line, each key's line and each scalar's text."""

    line: int = 0
    key_lines: dict
    raw: dict


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data = _Map()
    data.line = node.start_mark.line + 1
    data.key_lines, data.raw = {}, {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in data.key_lines:
            loader.duplicates.append((key, data.key_lines[key], key_node.start_mark.line + 1))
        data.key_lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode):
            data.raw[key] = value_node.value
            if value_node.tag == "tag:yaml.org,2002:null" or (
                    value_node.style is None and value_node.value in ("", "~", "null", "Null", "NULL")):
                data.raw[key] = None
        data[key] = loader.construct_object(value_node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _line_of_error(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark else 1


# --- reading -----------------------------------------------------------------------------------

class _Reader:
    def __init__(self, filename: str):
        self.filename = filename
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, line: int, where: str, message: str) -> None:
        self.problems.append(f"{self.filename}:{line}: {where}: {message}")

    def keys(self, m: _Map, allowed: Iterable[str], where: str,
             required: Iterable[str] = ()) -> None:
        allowed = tuple(allowed)
        for key in m:
            if key == "password" or key.endswith("_password"):
                self.fail(m.key_lines[key], f"{where}.{key}" if where else key,
                          "passwords never go in the clinic file; staff set their own through "
                          "a one-time link (admin page Staff, or `flask setup invite EMAIL`)")
            elif key not in allowed:
                self.fail(m.key_lines[key], f"{where}.{key}" if where else key,
                          f'unknown key "{key}"; expected one of: {", ".join(allowed)}')
        for key in required:
            if m.get(key) in (None, ""):
                self.fail(m.line, f"{where}.{key}" if where else key, "missing (required)")

    def text(self, m: _Map, key: str, where: str, *, required: bool = True,
             max_len: int = 200) -> str | None:
        if key not in m or m[key] is None or m.raw.get(key, "x") is None:
            if required and key in m:  # missing keys were already named by keys()
                self.fail(m.key_lines[key], f"{where}.{key}", "missing (required)")
            return None
        if isinstance(m[key], (dict, list)):
            self.fail(m.key_lines[key], f"{where}.{key}", "expected a single value")
            return None
        value = " ".join(str(m.raw.get(key, m[key])).split())
        if required and not value:
            self.fail(m.key_lines[key], f"{where}.{key}", "missing (required)")
            return None
        if len(value) > max_len:
            self.fail(m.key_lines[key], f"{where}.{key}", f"longer than {max_len} characters")
            return None
        return value or None

    def line(self, m: _Map, key: str) -> int:
        return m.key_lines.get(key, m.line)

    def mapping(self, m: _Map, key: str, where: str) -> _Map | None:
        value = m.get(key)
        if value is None:
            return None
        if not isinstance(value, _Map):
            self.fail(self.line(m, key), f"{where}.{key}" if where else key, "expected a mapping")
            return None
        return value

    def items(self, m: _Map, key: str) -> list[_Map]:
        value = m.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(self.line(m, key), key, "expected a list")
            return []
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, _Map):
                self.fail(self.line(m, key), f"{key}[{i + 1}]", "expected a mapping (name: ...)")
            else:
                out.append(item)
        return out

    def day(self, m: _Map, key: str, where: str) -> date | None:
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(m.raw.get(key, value)).strip())
        except ValueError:
            self.fail(self.line(m, key), f"{where}.{key}",
                      f'"{m.raw.get(key, value)}" is not a date (YYYY-MM-DD)')
            return None

    def address(self, m: _Map, key: str, where: str, *, nine_digit_zip: bool) -> Address | None:
        a = self.mapping(m, key, where)
        if a is None:
            return None
        here = f"{where}.{key}"
        self.keys(a, ADDRESS_KEYS, here, required=("line1", "city", "state", "zip"))
        line1 = self.text(a, "line1", here, max_len=55)
        line2 = self.text(a, "line2", here, required=False, max_len=55)
        city = self.text(a, "city", here, max_len=30)
        state = self.text(a, "state", here)
        if state is not None:
            state = state.upper()
            if state not in STATES:
                self.fail(self.line(a, "state"), f"{here}.state", f'"{state}" is not a US state code')
                state = None
        raw_zip = self.text(a, "zip", here)
        zip_code = None
        if raw_zip is not None:
            zip_code, problem = read_zip(raw_zip, nine_digits=nine_digit_zip)
            if problem:
                self.fail(self.line(a, "zip"), f"{here}.zip", problem)
        if None in (line1, city, state, zip_code):
            return None
        return Address(line1, line2, city, state, zip_code)


def read_zip(text: str, *, nine_digits: bool = False) -> tuple[str | None, str | None]:
    """"60601-1234" / "606011234" / "60601" -> digits, or (None, why)."""
    digits = text.replace("-", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in (5, 9) or (nine_digits and len(digits) != 9):
        want = "9 digits (ZIP+4, e.g. 60601-1234)" if nine_digits else "5 or 9 digits"
        return None, f'"{text}" is not a ZIP code: expected {want}'
    return digits, None


def read_phone(text: str) -> tuple[str | None, str | None]:
    """"(312) 555-0100" / "312.555.0100" / "+1 312 555 0100" -> "3125550100", or (None, why)."""
    digits = re.sub(r"[\s().+-]", "", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if not digits.isdigit() or len(digits) != 10:
        return None, f'"{text}" is not a phone number: expected 10 digits'
    return digits, None


def read_clinic_file(data: bytes, filename: str, checks: Checks) -> ClinicSpec:
    """Parse and check a clinic file. Raises ``ClinicFileError`` listing every fault."""
    r = _Reader(filename)
    if len(data) > MAX_BYTES:
        raise ClinicFileError([f"{filename}:1: file: {len(data):,} bytes is over the 1 MB limit "
                               "for a clinic file"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ClinicFileError([f"{filename}:{line}: file: not UTF-8 "
                               f"(byte 0x{data[exc.start]:02X})"]) from exc
    tabs = [i + 1 for i, line in enumerate(text.splitlines()) if "\t" in line]
    if tabs:
        raise ClinicFileError([f"{filename}:{n}: file: contains a tab; YAML needs spaces "
                               "for indentation" for n in tabs[:5]])
    loader = _Loader(text)
    loader.duplicates = []
    try:
        top = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ClinicFileError([f"{filename}:{_line_of_error(exc)}: file: not valid YAML "
                               f"({getattr(exc, 'problem', None) or exc})"]) from exc
    finally:
        loader.dispose()
    for key, first, again in loader.duplicates:
        r.fail(again, key, f'"{key}" appears twice (also on line {first})')
    if not isinstance(top, _Map):
        raise ClinicFileError([f"{filename}:1: file: expected a mapping with the keys "
                               f"{', '.join(TOP_KEYS)}; got "
                               f"{'an empty file' if top is None else type(top).__name__}"])
    r.keys(top, TOP_KEYS, "", required=("program",))
    program = _program(r, top)
    payers = _payers(r, top, checks)
    staff = _staff(r, top, checks, {p.rules for p in payers})
    cohorts = _cohorts(r, top, staff, program)
    closures = _closures(r, top)
    if r.problems or program is None:
        raise ClinicFileError(r.problems or [f"{filename}:1: program: missing (required)"])
    return ClinicSpec(program, tuple(staff), tuple(cohorts), tuple(payers), tuple(closures),
                      tuple(r.warnings))


def _program(r: _Reader, top: _Map) -> ProgramSpec | None:
    m = r.mapping(top, "program", "")
    if m is None:
        return None
    w = "program"
    r.keys(m, PROGRAM_KEYS, w, required=("legal_name", "billing_npi", "taxonomy_code", "tax_id",
                                         "service_address", "contact", "time_zone"))
    name = r.text(m, "legal_name", w, max_len=200)
    npi = r.text(m, "billing_npi", w)
    if npi is not None and (problem := npi_problem(npi)):
        r.fail(r.line(m, "billing_npi"), f"{w}.billing_npi", problem)
        npi = None
    taxonomy = r.text(m, "taxonomy_code", w)
    if taxonomy is not None and not _TAXONOMY.fullmatch(taxonomy.upper()):
        r.fail(r.line(m, "taxonomy_code"), f"{w}.taxonomy_code",
               f'"{taxonomy}" is not a provider taxonomy code (10 characters ending in X, '
               "e.g. 261QR0405X)")
        taxonomy = None
    tax_id = r.text(m, "tax_id", w)
    if tax_id is not None:
        found = _EIN.fullmatch(tax_id)
        if not found:
            r.fail(r.line(m, "tax_id"), f"{w}.tax_id",
                   f'"{tax_id}" is not a federal tax id (EIN, 9 digits as 12-3456789)')
            tax_id = None
        else:
            tax_id = found.group(1) + found.group(2)
    zone = r.text(m, "time_zone", w)
    if zone is not None:
        try:
            if "/" not in zone:
                raise ZoneInfoNotFoundError(zone)
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            r.fail(r.line(m, "time_zone"), f"{w}.time_zone",
                   f'unknown time zone "{zone}"; use an IANA name such as America/Chicago')
            zone = None
    pos = r.text(m, "default_place_of_service", w, required=False) or "57"
    if not _POS.fullmatch(pos):
        r.fail(r.line(m, "default_place_of_service"), f"{w}.default_place_of_service",
               f'"{pos}" is not a place-of-service code (2 digits, e.g. 57 or 11)')
    service = r.address(m, "service_address", w, nine_digit_zip=True)
    pay_to = r.address(m, "pay_to_address", w, nine_digit_zip=False)
    contact_name = phone = None
    c = r.mapping(m, "contact", w)
    if c is not None:
        r.keys(c, CONTACT_KEYS, f"{w}.contact", required=CONTACT_KEYS)
        contact_name = r.text(c, "name", f"{w}.contact", max_len=60)
        raw_phone = r.text(c, "phone", f"{w}.contact")
        if raw_phone is not None:
            phone, problem = read_phone(raw_phone)
            if problem:
                r.fail(r.line(c, "phone"), f"{w}.contact.phone", problem)
    if None in (name, npi, taxonomy, tax_id, zone, service, contact_name, phone):
        return None
    return ProgramSpec(name, npi, taxonomy.upper(), tax_id, service, pay_to, contact_name, phone,
                       zone, pos)


def _payers(r: _Reader, top: _Map, checks: Checks) -> list[PayerSpec]:
    out: list[PayerSpec] = []
    names: dict[str, int] = {}
    rules_seen: dict[str, int] = {}
    spellings: dict[str, tuple[str, int]] = {}
    for i, m in enumerate(r.items(top, "payers")):
        w = f"payers[{i + 1}]"
        r.keys(m, PAYER_KEYS, w, required=("name", "rules", "payer_id"))
        name = r.text(m, "name", w)
        rules = r.text(m, "rules", w)
        if rules is not None and rules not in checks.payer_rules:
            r.fail(r.line(m, "rules"), f"{w}.rules", f'no payer rules file "{rules}"; known: '
                   f'{", ".join(sorted(checks.payer_rules))}')
            rules = None
        if rules is not None and rules in rules_seen:
            r.fail(r.line(m, "rules"), f"{w}.rules",
                   f'rules "{rules}" are already used by the payer on line {rules_seen[rules]}')
        payer_id = r.text(m, "payer_id", w, max_len=80)
        if payer_id is not None and not _PAYER_ID.fullmatch(payer_id):
            r.fail(r.line(m, "payer_id"), f"{w}.payer_id",
                   f'"{payer_id}" is not a payer id (2-80 letters and digits)')
        if name is not None:
            key = normalize_name(name)
            if key in names:
                r.fail(r.line(m, "name"), f"{w}.name",
                       f'payer "{name}" is already on line {names[key]}')
            names[key] = r.line(m, "name")
        raw_names = m.get("census_names") or []
        if not isinstance(raw_names, list) or any(isinstance(n, (dict, list)) for n in raw_names):
            r.fail(r.line(m, "census_names"), f"{w}.census_names", "expected a list of spellings")
            raw_names = []
        census = tuple(" ".join(str(n).split()) for n in raw_names if str(n).strip())
        for spelling in ((name,) if name else ()) + census:
            key = normalize_name(spelling)
            owner = spellings.get(key)
            if owner is not None and owner[0] != name:
                r.fail(r.line(m, "census_names"), f"{w}.census_names",
                       f'"{spelling}" also names the payer "{owner[0]}" (line {owner[1]})')
            spellings[key] = (name, m.line)
        contact = r.text(m, "contact", w, required=False, max_len=300)
        if rules is not None:
            rules_seen[rules] = m.line
        if None not in (name, rules, payer_id):
            out.append(PayerSpec(m.line, name, rules, payer_id, census, contact))
    return out


def _staff(r: _Reader, top: _Map, checks: Checks, payer_rules: set[str]) -> list[StaffSpec]:
    out: list[StaffSpec] = []
    emails: dict[str, int] = {}
    rows = r.items(top, "staff")
    for i, m in enumerate(rows):
        w = f"staff[{i + 1}]"
        r.keys(m, STAFF_KEYS, w, required=("name", "email", "role"))
        name = r.text(m, "name", w)
        email = r.text(m, "email", w, max_len=254)
        if email is not None:
            email = email.lower()
            if not _EMAIL.fullmatch(email):
                r.fail(r.line(m, "email"), f"{w}.email", f'"{email}" is not an email address')
                email = None
            elif email in emails:
                r.fail(r.line(m, "email"), f"{w}.email",
                       f"duplicate staff email {email} (also on line {emails[email]})")
                email = None
            else:
                emails[email] = r.line(m, "email")
        role = r.text(m, "role", w)
        if role is not None and role not in checks.roles:
            r.fail(r.line(m, "role"), f"{w}.role",
                   f'unknown role "{role}"; expected one of: {", ".join(checks.roles)}')
            role = None
        credentials = r.text(m, "credentials", w, required=False, max_len=40)
        npi = r.text(m, "npi", w, required=False)
        if npi is not None and (problem := npi_problem(npi)):
            r.fail(r.line(m, "npi"), f"{w}.npi", problem)
            npi = None
        supervisor = r.text(m, "supervisor", w, required=False)
        supervisor = supervisor.lower() if supervisor else None
        active = m.get("active", True)
        if not isinstance(active, bool):
            r.fail(r.line(m, "active"), f"{w}.active", f'"{m.raw.get("active")}" is not true/false')
            active = True
        if "payer_scope" in m:
            # Auditor access is a grant with a purpose, a legal basis and an expiry (42 CFR 2.31,
            # 2.53), made on the admin pages; a permanent scope in a file re-applied forever is
            # what issue 14 removed.
            r.fail(r.line(m, "payer_scope"), f"{w}.payer_scope",
                   "auditor access is no longer set in the clinic file: remove payer_scope and "
                   "grant access on Admin \u2192 Auditor grants (scoped, expiring, revocable)")
        supervised = sorted(set(credential_list(credentials)) & checks.supervised_credentials)
        if supervised and not supervisor and active:
            r.fail(r.line(m, "credentials"), f"{w}.supervisor",
                   f"{', '.join(supervised)} may bill only under supervision under the payer "
                   "rules; name the supervisor's email")
        if None not in (name, email, role):
            out.append(StaffSpec(m.line, name, email, role, credentials, npi, supervisor, active))
    by_email = {s.email: s for s in out}
    for s in out:
        if s.supervisor is None:
            continue
        boss = by_email.get(s.supervisor)
        if s.supervisor == s.email:
            r.fail(s.line, "supervisor", f"{s.email} cannot supervise themselves")
        elif boss is None:
            r.fail(s.line, "supervisor", f"supervisor {s.supervisor} is not in the staff list")
        elif not boss.active and s.active:
            r.fail(s.line, "supervisor", f"supervisor {s.supervisor} is not active")
    return out


def _clock(r: _Reader, m: _Map, key: str, where: str) -> time | None:
    raw = r.text(m, key, where)
    if raw is None:
        return None
    found = _CLOCK.fullmatch(raw)
    if not found:
        r.fail(r.line(m, key), f"{where}.{key}", f'"{raw}" is not a time (24-hour HH:MM, e.g. "09:00")')
        return None
    return time(int(found.group(1)), int(found.group(2)))


def _cohorts(r: _Reader, top: _Map, staff: list[StaffSpec],
             program: ProgramSpec | None) -> list[CohortSpec]:
    out: list[CohortSpec] = []
    names: dict[str, int] = {}
    by_email = {s.email: s for s in staff}
    for i, m in enumerate(r.items(top, "cohorts")):
        w = f"cohorts[{i + 1}]"
        r.keys(m, COHORT_KEYS, w, required=("name", "weekdays", "start", "end"))
        name = r.text(m, "name", w, max_len=100)
        if name is not None:
            if normalize_name(name) in names:
                r.fail(r.line(m, "name"), f"{w}.name",
                       f'cohort "{name}" is already on line {names[normalize_name(name)]}')
            names[normalize_name(name)] = r.line(m, "name")
        weekdays = m.get("weekdays")
        days: tuple[int, ...] | None = None
        if weekdays is not None:
            if not isinstance(weekdays, list) or not weekdays:
                r.fail(r.line(m, "weekdays"), f"{w}.weekdays",
                       "expected a list of ISO weekday numbers, Monday=1 ... Sunday=7")
            else:
                bad = [d for d in weekdays if isinstance(d, bool) or not isinstance(d, int)
                       or not 1 <= d <= 7]
                if bad:
                    r.fail(r.line(m, "weekdays"), f"{w}.weekdays",
                           f"{', '.join(map(str, bad))}: weekdays are 1..7 (Monday=1, Sunday=7)")
                else:
                    days = tuple(sorted(set(weekdays)))
        start, end = _clock(r, m, "start", w), _clock(r, m, "end", w)
        if start and end and end <= start:
            r.fail(r.line(m, "end"), f"{w}.end",
                   f"ends at {end:%H:%M}, not after it starts ({start:%H:%M})")
            end = None
        modality = r.text(m, "modality", w, required=False) or "in_person"
        if modality not in MODALITIES:
            r.fail(r.line(m, "modality"), f"{w}.modality",
                   f'"{modality}" is not a modality; expected one of: {", ".join(MODALITIES)}')
        facilitator = r.text(m, "facilitator", w, required=False)
        if facilitator is not None:
            facilitator = facilitator.lower()
            person = by_email.get(facilitator)
            if person is None:
                r.fail(r.line(m, "facilitator"), f"{w}.facilitator",
                       f"{facilitator} is not in the staff list")
            elif person.role not in FACILITATING_ROLES:
                r.fail(r.line(m, "facilitator"), f"{w}.facilitator",
                       f"{facilitator} has the role {person.role}, which cannot run a group")
            elif not person.active:
                r.fail(r.line(m, "facilitator"), f"{w}.facilitator", f"{facilitator} is not active")
        capacity = m.get("capacity", 12)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 100:
            r.fail(r.line(m, "capacity"), f"{w}.capacity",
                   f'"{m.raw.get("capacity", capacity)}" is not a capacity (a whole number 1..100)')
            capacity = None
        # A cohort records a place of service only when the file names one: otherwise each
        # payer's rule decides (BlueRiver bills in-person IOP as 11, others as 57; issue 10).
        pos = r.text(m, "place_of_service", w, required=False) or None
        if pos is not None and not _POS.fullmatch(pos):
            r.fail(r.line(m, "place_of_service"), f"{w}.place_of_service",
                   f'"{pos}" is not a place-of-service code (2 digits)')
        first, last = r.day(m, "effective_from", w), r.day(m, "effective_to", w)
        if first and last and last < first:
            r.fail(r.line(m, "effective_to"), f"{w}.effective_to",
                   f"{last.isoformat()} is before effective_from {first.isoformat()}")
        if None not in (name, days, start, end, capacity):
            out.append(CohortSpec(m.line, name, days, start, end, modality, facilitator, capacity,
                                  pos, first, last))
    r.warnings.extend(facilitator_overlaps(out, r.filename))
    return out


def facilitator_overlaps(cohorts: Iterable[CohortSpec], filename: str = "") -> list[str]:
    """One warning per pair of cohorts that put the same facilitator in two groups at once
    (a shared weekday, overlapping hours and overlapping effective dates)."""
    warnings = []
    items = [c for c in cohorts if c.facilitator]
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.facilitator != b.facilitator or not set(a.weekdays) & set(b.weekdays):
                continue
            if not (a.start < b.end and b.start < a.end):
                continue
            if (a.effective_to and b.effective_from and a.effective_to < b.effective_from) or (
                    b.effective_to and a.effective_from and b.effective_to < a.effective_from):
                continue
            prefix = f"{filename}:{b.line}: " if filename else ""
            warnings.append(
                f"{prefix}warning: {a.facilitator} is scheduled in both \"{a.name}\" "
                f"({a.start:%H:%M}-{a.end:%H:%M}) and \"{b.name}\" ({b.start:%H:%M}-{b.end:%H:%M}) "
                "on the same weekday")
    return warnings


def _closures(r: _Reader, top: _Map) -> list[ClosureSpec]:
    out: list[ClosureSpec] = []
    seen: dict[date, int] = {}
    for i, m in enumerate(r.items(top, "closures")):
        w = f"closures[{i + 1}]"
        r.keys(m, CLOSURE_KEYS, w, required=("date",))
        day = r.day(m, "date", w)
        reason = r.text(m, "reason", w, required=False) or ""
        if day is not None and day in seen:
            r.fail(r.line(m, "date"), f"{w}.date", f"{day.isoformat()} is already on line {seen[day]}")
        elif day is not None:
            seen[day] = r.line(m, "date")
            out.append(ClosureSpec(m.line, day, reason))
    return out


__all__ = [
    "Address", "Checks", "ClinicFileError", "ClinicSpec", "ClosureSpec", "CohortSpec",
    "MAX_BYTES", "PayerSpec", "ProgramSpec", "STATES", "StaffSpec", "credential_list",
    "facilitator_overlaps", "normalize_name", "read_clinic_file", "read_phone", "read_zip",
]
