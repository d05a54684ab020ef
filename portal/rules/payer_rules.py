"""Payer rules as data: versioned YAML files under ``portal/rules/payers/``.

Each file describes one payer and a list of rule versions; the version in force for a date of
service is the one with the latest ``effective_from`` on or before it. Every threshold is data,
never a constant in code, because DOMAIN.md shows the numbers differ by state and payer
(DOMAIN.md §1.2 "Minimum intensity for H0015", §1.3 "Time units", §1.4 "Group size",
§2 "Modifiers and place of service", §9 "Concrete checks"). The schema and the source of
every default is in ``docs/payer-rules.md``.

Loading is strict: an unknown key, a wrong type or an impossible value raises
``RuleFileError`` naming the file and the key path, e.g.
``portal/rules/payers/x.yaml: versions[1].h0015.min_daily_minutes: expected integer >= 0,
got 'abc'``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

import yaml

from portal.rules.deadlines import signing_deadline

PAYERS_DIR = Path(__file__).resolve().parent / "payers"

PAYER_KINDS = frozenset({"medicaid", "commercial", "medicare", "self_pay"})
#: H0015 per diem; the per-15-minute SUD counseling code is payer data (the ``h2019`` section's
#: ``code``): H2019, H0004 (individual) or H0005 (group) (DOMAIN.md §1.3).
PER_DIEM_CODE = "H0015"
PER_15_CODES = ("H2019", "H0004", "H0005")
SUPPORTED_CODES = (PER_DIEM_CODE,) + PER_15_CODES
#: Who renders on the 837P (loop 2310B/2420A): the session's facilitator, the facilitator's
#: supervisor, or nobody (agency-only billing: the billing provider renders, 2310B omitted).
RENDERING_PROVIDERS = frozenset({"facilitator", "supervisor", "none"})
#: A session with fewer attendees than ``group_size_min``: block the lines, or bill them as
#: individual service (no group modifier).
UNDER_MIN_GROUP = frozenset({"block", "individual"})
ROUNDING_RULES = frozenset({"cpt_midpoint", "whole_units"})
DAY_KINDS = frozenset({"business", "calendar"})
#: X12 SBR09 claim filing indicator defaults by payer kind.
DEFAULT_FILING_INDICATOR = {"medicaid": "MC", "medicare": "MB", "commercial": "CI", "self_pay": "ZZ"}


class RuleFileError(ValueError):
    """A payer rule file is unreadable or invalid. The message starts with the file path
    and the key path (``versions[1].h0015.min_daily_minutes``)."""


class UnknownPayerError(LookupError):
    """``rules_for`` was asked about a payer key that no rule file defines."""


class NoRulesInForceError(LookupError):
    """The date of service is before the payer's first ``effective_from``."""


@dataclass(frozen=True)
class H0015Rules:
    """H0015 per diem. ``min_daily_minutes``: attended minutes needed to bill the day
    (180 = 3 h: HCPCS descriptor [S1], NC SAIOP [S8], 405 IAC 5-21.5-11 [S9]);
    ``adolescent_min_daily_minutes`` (120 = 2 h: 12VAC30-130-5090 [S5]).
    ``units_per_day`` is 1 (BCBS NC, Nebraska Blue [S110][S111])."""

    rate_cents: int
    min_daily_minutes: int
    adolescent_min_daily_minutes: int
    units_per_day: int
    rendering_credentials: frozenset[str]


@dataclass(frozen=True)
class H2019Rules:
    """H2019 per 15 minutes [S1]. ``rounding``: ``cpt_midpoint`` (8-22 min = 1 unit, 23-37 = 2,
    ...; under 8 not billed: Premera "Billing for Time" [S19], Medicare Claims Processing
    Manual Ch. 5 §20.2 [S20]) or ``whole_units`` (floor). ``daily_unit_cap`` (FL APD: 16 [S22])."""

    rate_cents: int
    unit_minutes: int
    rounding: str
    daily_unit_cap: int | None
    rendering_credentials: frozenset[str]
    code: str = "H2019"  # the payer's per-15-minute code: H2019, H0004 or H0005


@dataclass(frozen=True)
class TelehealthRules:
    """Telehealth coding (DOMAIN.md §2): 95/GT for audio+video, 93 for audio-only, POS 10 =
    patient's home, POS 02 = elsewhere (CMS Transmittal 11045 / CR 12427 [S28], NGS [S27],
    Novitas/First Coast [S29][S30]). A modifier of None means the payer codes telehealth by
    POS alone (Medicare after 2023 [S27])."""

    video_allowed: bool
    audio_only_allowed: bool
    video_modifier: str | None
    audio_only_modifier: str | None
    pos_home: str
    pos_other: str


@dataclass(frozen=True)
class WeeklyRules:
    """ISO-week intensity: adult floor 540 min (9 h), adolescent 360 min (6 h), cap 1140 min
    (19 h) (SAMHSA TIP 47 [S4], 12VAC30-130-5090 [S5], NC CCP 8A-12 [S7], Aetna [S39]);
    ``min_service_days`` 3 (HCPCS H0015 descriptor [S1], NC SAIOP [S8]). ``blocking`` false
    makes these warnings, because a partial week or an Aetna step-down week [S39] is legal.
    With ``blocking`` true, ``allowed_under_floor_weeks`` consecutive under-floor weeks (floor
    or service days missed) stay warnings (step-down weeks, Aetna 1-2 [S39]); the next
    consecutive one blocks. A cap overrun blocks at once."""

    adult_floor_minutes: int
    adolescent_floor_minutes: int
    cap_minutes: int | None
    min_service_days: int
    blocking: bool
    allowed_under_floor_weeks: int = 0


@dataclass(frozen=True)
class SupervisionRules:
    """Rendering credentials that may bill only under a supervisor (Louisiana: unlicensed
    staff supervised by an LMHP [S10]; Virginia CSAC/CATP [S6]) and the credentials that may
    supervise. DOMAIN.md §1.5 notes no source sets supervising-NPI rules for H0015, so this
    is configuration."""

    supervised_credentials: frozenset[str]
    supervisor_credentials: frozenset[str]


@dataclass(frozen=True)
class NoteSigningRules:
    """Progress-note deadline after the DOS: 3 business days (CA BHIN 22-019 [S37]),
    14 calendar days (program policy; cf. the 14-day documentation rule of California
    narcotic treatment programs, 9 CCR 10345 [S16], which is not an IOP rule)."""

    days: int
    day_kind: str  # business | calendar


REVIEW_COMBINE = frozenset({"less_frequent", "more_frequent"})


@dataclass(frozen=True)
class PlanRules:
    """Treatment plan review and signatures (DOMAIN.md §3 "Treatment plan review interval",
    §9.22-23). ``review_days``: review at least every N days (Louisiana 2.5/3.5: 30 [S11][S12];
    NY CDT, MA OTP: 90 [S83][S86]). ``review_sessions`` with ``review_days``: NH He-W 513.10
    "every 4 sessions or 4 weeks, whichever is less frequent" [S36] (``review_combine``
    ``less_frequent``: the later due date counts; ``more_frequent``: the earlier one).
    ``supervisor_signature``: the plan needs a clinical supervisor's signature too (NH [S36])."""

    review_days: int | None = 30
    review_sessions: int | None = None
    review_combine: str = "less_frequent"
    supervisor_signature: bool = False


@dataclass(frozen=True)
class RuleVersion:
    """The rules of one payer in force from ``effective_from`` (a DOS) until the next version.

    ``bill_codes``: codes a day may bill, in order of preference: ``[H0015]``,
    ``[H2019]``, or ``[H0015, H2019]`` (per diem when the daily minimum is met, otherwise
    15-minute units). ``program_modifiers`` go first on every line (HF = substance abuse
    program [S26]); ``group_modifier`` (HQ [S26], required on group lines by e.g. CareOregon
    from 2026-01-01 [S23]) follows on group sessions; telehealth modifiers come last.
    ``in_person_pos``: 57 (non-residential SUD facility) or 11 (office) [S32][S33].
    ``group_size_limit``: attended headcount cap per session (25 TAC 448.901: 16 [S15]; or
    program policy). ``group_size_min`` (2: one attendee is not a group) and
    ``group_under_min`` (block, or bill as individual service without the group modifier).
    ``rendering_provider``: facilitator | supervisor | none. ``send_taxonomy``: the payer
    requires PRV*BI (billing provider taxonomy) in 837P loop 2000A. ``exclusive_levels``: level kinds that may not share a DOS
    with IOP (BCBS NC: PHP, IOP and RTC mutually exclusive [S110]).
    """

    effective_from: date
    bill_codes: tuple[str, ...]
    program_modifiers: tuple[str, ...]
    group_modifier: str | None
    in_person_pos: str
    group_size_limit: int | None
    authorization_required: bool
    exclusive_levels: frozenset[str]
    telehealth: TelehealthRules
    weekly: WeeklyRules
    supervision: SupervisionRules
    note_signing: NoteSigningRules
    h0015: H0015Rules | None
    h2019: H2019Rules | None
    group_size_min: int = 2
    group_under_min: str = "block"
    rendering_provider: str = "facilitator"
    send_taxonomy: bool = False
    plan: PlanRules = PlanRules()

    def code_rules(self, code: str) -> H0015Rules | H2019Rules | None:
        if code == PER_DIEM_CODE:
            return self.h0015
        if self.h2019 is not None and code == self.h2019.code:
            return self.h2019
        return None

    @property
    def per_15_code(self) -> str | None:
        return self.h2019.code if self.h2019 is not None else None

    def default_code(self) -> str:
        """The code an authorization covers when the census does not name one."""
        return self.bill_codes[0]


@dataclass(frozen=True)
class Payer:
    """A payer and its rule versions sorted by ``effective_from`` (strictly increasing)."""

    key: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    payer_id: str  # 2010BB NM109 (payer identification)
    claim_filing_indicator: str  # 2000B SBR09
    versions: tuple[RuleVersion, ...]
    source_file: str
    # Missed-appointment fees under the contract (commercial): allowed | forbidden | None
    # (unknown = not allowed), and any cap in cents (portal.rules.no_show_fees).
    no_show_fee: str | None = None
    no_show_fee_cap_cents: int | None = None

    def version_for(self, dos: date) -> RuleVersion:
        """The version in force on ``dos``. Raises ``NoRulesInForceError`` before the first."""
        found = None
        for v in self.versions:
            if v.effective_from <= dos:
                found = v
            else:
                break
        if found is None:
            raise NoRulesInForceError(
                f"{self.key}: no rules in force on {dos.isoformat()} "
                f"(first effective_from is {self.versions[0].effective_from.isoformat()})"
            )
        return found


def normalize_payer_name(name: str) -> str:
    """Case-, space- and punctuation-insensitive form: "Self-pay" == "self pay" == "SELFPAY"."""
    return re.sub(r"[^0-9a-z]+", "", name.casefold())


@dataclass(frozen=True)
class RuleBook:
    """All payers, by key."""

    payers: dict[str, Payer]

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for p in self.payers.values():
            for label in (p.key, p.name, *p.aliases):
                norm = normalize_payer_name(label)
                if norm in index and index[norm] != p.key:
                    raise RuleFileError(
                        f"{p.source_file}: aliases: {label!r} also names payer {index[norm]!r}"
                    )
                index[norm] = p.key
        object.__setattr__(self, "_index", index)

    def match_payer(self, name: str | None) -> str | None:
        """Payer key for a census/display name or alias, case-insensitively; None if unknown."""
        if not name:
            return None
        return self._index.get(normalize_payer_name(name))  # type: ignore[attr-defined]

    def payer(self, key: str) -> Payer:
        try:
            return self.payers[key]
        except KeyError:
            raise UnknownPayerError(f"no payer rule file defines key {key!r}") from None

    def rules_for(self, payer_key: str, dos: date) -> RuleVersion:
        """Rule version in force for ``payer_key`` on date of service ``dos``.

        Raises ``UnknownPayerError`` or ``NoRulesInForceError`` (both ``LookupError``)."""
        return self.payer(payer_key).version_for(dos)


# ----------------------------------------------------------------------------------------
# Loading and validation
# ----------------------------------------------------------------------------------------

class _Node:
    """A YAML mapping plus its key path, so every error names file and key."""

    def __init__(self, data: Any, file: str, path: str) -> None:
        self.file, self.path = file, path
        if not isinstance(data, dict):
            self.fail("", "expected a mapping", data)
        self.data = data
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        if not key:
            return self.path or "<top>"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, expected: str, got: Any) -> None:
        raise RuleFileError(f"{self.file}: {self.where(key)}: {expected}, got {got!r}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = ..., ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise RuleFileError(f"{self.file}: {self.where(key)}: required key is missing")
            return default
        return self.data[key]

    def int_(self, key: str, default: Any = ..., minimum: int = 0, nullable: bool = False) -> int | None:
        v = self.raw(key, default)
        if v is None and nullable:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.fail(key, f"expected integer >= {minimum}" + (" or null" if nullable else ""), v)
        return v

    def bool_(self, key: str, default: Any = ...) -> bool:
        v = self.raw(key, default)
        if not isinstance(v, bool):
            self.fail(key, "expected true or false", v)
        return v

    def str_(self, key: str, default: Any = ..., choices: Iterable[str] | None = None,
             nullable: bool = False, pattern: str | None = None) -> str | None:
        v = self.raw(key, default)
        if v is None and nullable:
            return None
        if isinstance(v, int) and not isinstance(v, bool) and pattern:
            v = str(v)  # POS 57 written without quotes
        if not isinstance(v, str) or not v.strip():
            self.fail(key, "expected a non-empty string" + (" or null" if nullable else ""), v)
        if choices is not None and v not in choices:
            self.fail(key, f"expected one of {sorted(choices)}", v)
        if pattern and not re.fullmatch(pattern, v):
            self.fail(key, f"expected a value matching {pattern}", v)
        return v

    def str_list(self, key: str, default: Any = ..., pattern: str | None = None,
                 upper: bool = False) -> tuple[str, ...]:
        v = self.raw(key, default)
        if not isinstance(v, list):
            self.fail(key, "expected a list of strings", v)
        out = []
        for i, item in enumerate(v):
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip() or (pattern and not re.fullmatch(pattern, item)):
                self.fail(f"{key}[{i}]", "expected a string" + (f" matching {pattern}" if pattern else ""), item)
            out.append(item.upper() if upper else item)
        return tuple(out)

    def date_(self, key: str) -> date:
        v = self.raw(key)
        if isinstance(v, datetime):
            self.fail(key, "expected a date (YYYY-MM-DD), not a timestamp", v)
        if isinstance(v, str):
            try:
                v = date.fromisoformat(v)
            except ValueError:
                self.fail(key, "expected a date (YYYY-MM-DD)", v)
        if not isinstance(v, date):
            self.fail(key, "expected a date (YYYY-MM-DD)", v)
        return v

    def child(self, key: str, default: Any = ...) -> "_Node":
        v = self.raw(key, default)
        return _Node(v if v is not None else {}, self.file, self.where(key))

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used, key=str)
        if extra:
            raise RuleFileError(f"{self.file}: {self.where(str(extra[0]))}: unknown key")


_MOD = r"[A-Z0-9]{2}"
_POS = r"[0-9]{2}"


def _credentials(node: _Node, key: str, default: Any = ...) -> frozenset[str]:
    return frozenset(node.str_list(key, default, upper=True))


def _parse_h0015(n: _Node) -> H0015Rules:
    minimum = n.int_("min_daily_minutes", 180)
    r = H0015Rules(
        rate_cents=n.int_("rate_cents"),
        min_daily_minutes=minimum,
        adolescent_min_daily_minutes=n.int_("adolescent_min_daily_minutes", minimum),
        units_per_day=n.int_("units_per_day", 1, minimum=1),
        rendering_credentials=_credentials(n, "rendering_credentials"),
    )
    n.done()
    return r


def _parse_h2019(n: _Node) -> H2019Rules:
    r = H2019Rules(
        rate_cents=n.int_("rate_cents"),
        unit_minutes=n.int_("unit_minutes", 15, minimum=1),
        rounding=n.str_("rounding", "cpt_midpoint", choices=ROUNDING_RULES),
        daily_unit_cap=n.int_("daily_unit_cap", None, minimum=1, nullable=True),
        rendering_credentials=_credentials(n, "rendering_credentials"),
        code=n.str_("code", "H2019", choices=PER_15_CODES),
    )
    n.done()
    return r


def _parse_version(n: _Node) -> RuleVersion:
    tele = n.child("telehealth", {})
    telehealth = TelehealthRules(
        video_allowed=tele.bool_("video_allowed", True),
        audio_only_allowed=tele.bool_("audio_only_allowed", False),
        video_modifier=tele.str_("video_modifier", "95", nullable=True, pattern=_MOD),
        audio_only_modifier=tele.str_("audio_only_modifier", "93", nullable=True, pattern=_MOD),
        pos_home=tele.str_("pos_home", "10", pattern=_POS),
        pos_other=tele.str_("pos_other", "02", pattern=_POS),
    )
    tele.done()
    wk = n.child("weekly", {})
    weekly = WeeklyRules(
        adult_floor_minutes=wk.int_("adult_floor_minutes", 540),
        adolescent_floor_minutes=wk.int_("adolescent_floor_minutes", 360),
        cap_minutes=wk.int_("cap_minutes", 1140, nullable=True),
        min_service_days=wk.int_("min_service_days", 3),
        blocking=wk.bool_("blocking", False),
        allowed_under_floor_weeks=wk.int_("allowed_under_floor_weeks", 0),
    )
    wk.done()
    sup = n.child("supervision", {})
    supervision = SupervisionRules(
        supervised_credentials=_credentials(sup, "supervised_credentials", []),
        supervisor_credentials=_credentials(sup, "supervisor_credentials", []),
    )
    sup.done()
    ns = n.child("note_signing", {})
    note_signing = NoteSigningRules(
        days=ns.int_("days", 3, minimum=1), day_kind=ns.str_("day_kind", "business", choices=DAY_KINDS)
    )
    ns.done()
    tp = n.child("treatment_plan", {})
    plan = PlanRules(
        review_days=tp.int_("review_days", 30, minimum=1, nullable=True),
        review_sessions=tp.int_("review_sessions", None, minimum=1, nullable=True),
        review_combine=tp.str_("review_combine", "less_frequent", choices=REVIEW_COMBINE),
        supervisor_signature=tp.bool_("supervisor_signature", False),
    )
    if plan.review_days is None and plan.review_sessions is None:
        tp.fail("review_days", "expected review_days or review_sessions (or both)", None)
    tp.done()
    h0015 = _parse_h0015(n.child("h0015")) if n.has("h0015") else None
    h2019 = _parse_h2019(n.child("h2019")) if n.has("h2019") else None
    bill_codes = n.str_list("bill_codes", upper=True)
    if not bill_codes:
        n.fail("bill_codes", "expected at least one code", bill_codes)
    for i, code in enumerate(bill_codes):
        if code not in SUPPORTED_CODES:
            n.fail(f"bill_codes[{i}]", f"expected one of {list(SUPPORTED_CODES)}", code)
        if code == PER_DIEM_CODE and h0015 is None:
            n.fail(f"bill_codes[{i}]", "code needs a 'h0015' section", code)
        if code in PER_15_CODES and (h2019 is None or h2019.code != code):
            n.fail(f"bill_codes[{i}]", f"code needs an 'h2019' section with code: {code}", code)
    v = RuleVersion(
        effective_from=n.date_("effective_from"),
        bill_codes=bill_codes,
        program_modifiers=n.str_list("program_modifiers", [], pattern=_MOD),
        group_modifier=n.str_("group_modifier", None, nullable=True, pattern=_MOD),
        in_person_pos=n.str_("in_person_pos", "57", pattern=_POS),
        group_size_limit=n.int_("group_size_limit", None, minimum=1, nullable=True),
        authorization_required=n.bool_("authorization_required", False),
        exclusive_levels=frozenset(x.lower() for x in n.str_list("exclusive_levels", ["php", "residential"])),
        telehealth=telehealth,
        weekly=weekly,
        supervision=supervision,
        note_signing=note_signing,
        h0015=h0015,
        h2019=h2019,
        group_size_min=n.int_("group_size_min", 2, minimum=1),
        group_under_min=n.str_("group_under_min", "block", choices=UNDER_MIN_GROUP),
        rendering_provider=n.str_("rendering_provider", "facilitator", choices=RENDERING_PROVIDERS),
        send_taxonomy=n.bool_("send_taxonomy", False),
        plan=plan,
    )
    if v.group_size_limit is not None and v.group_size_limit < v.group_size_min:
        n.fail("group_size_limit", f"expected at least group_size_min ({v.group_size_min})",
               v.group_size_limit)
    n.done()
    return v


def load_payer_file(path: str | Path) -> Payer:
    """Parse and validate one payer file. Raises ``RuleFileError`` naming file and key."""
    path = Path(path)
    label = _display_path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{label}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RuleFileError(f"{label}: not valid YAML: {exc}") from exc
    top = _Node(data, label, "")
    key = top.str_("key", pattern=r"[a-z0-9_]+")
    if key != path.stem:
        top.fail("key", f"expected the file name stem {path.stem!r}", key)
    kind = top.str_("kind", choices=PAYER_KINDS)
    raw_versions = top.raw("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        top.fail("versions", "expected a non-empty list", raw_versions)
    versions = tuple(
        _parse_version(_Node(v, label, f"versions[{i}]")) for i, v in enumerate(raw_versions)
    )
    for i in range(1, len(versions)):
        if versions[i].effective_from <= versions[i - 1].effective_from:
            raise RuleFileError(
                f"{label}: versions[{i}].effective_from: expected a date after "
                f"{versions[i - 1].effective_from.isoformat()}, got "
                f"{versions[i].effective_from.isoformat()!r}"
            )
    payer = Payer(
        key=key,
        name=top.str_("name"),
        kind=kind,
        aliases=top.str_list("aliases", []),
        payer_id=top.str_("payer_id", key.upper()[:20]),
        claim_filing_indicator=top.str_(
            "claim_filing_indicator", DEFAULT_FILING_INDICATOR[kind], pattern=r"[0-9A-Z]{2}"
        ),
        versions=versions,
        source_file=label,
        no_show_fee=top.str_("no_show_fee", None, choices=("allowed", "forbidden"), nullable=True),
        no_show_fee_cap_cents=top.int_("no_show_fee_cap_cents", None, nullable=True),
    )
    top.done()
    return payer


def _display_path(path: Path) -> str:
    """Repo-relative path when the file is inside the repo (what the error should name)."""
    repo = PAYERS_DIR.parent.parent.parent
    try:
        return path.resolve().relative_to(repo).as_posix()
    except ValueError:
        return str(path)


def load_all(directory: str | Path | None = None) -> RuleBook:
    """Load every ``*.yaml`` in ``directory`` (default ``portal/rules/payers``).

    Raises ``RuleFileError`` on the first invalid file or on a name/alias claimed by two payers.
    """
    directory = Path(directory) if directory is not None else PAYERS_DIR
    payers: dict[str, Payer] = {}
    for path in sorted(directory.glob("*.yaml")):
        p = load_payer_file(path)
        payers[p.key] = p
    return RuleBook(payers)


def note_signing_deadline(dos: date, rules: RuleVersion, closures=frozenset()) -> date:
    """Last date a progress note for ``dos`` may be signed: ``days`` business days (Mon-Fri,
    program closures skipped) or calendar days, the DOS being day 1 (CA BHIN 22-019 [S37];
    or program policy). See ``portal.rules.deadlines.signing_deadline``."""
    return signing_deadline(dos, rules.note_signing.days, rules.note_signing.day_kind, closures)
