"""Input facts and result shapes for claim-line derivation.

Everything is a frozen dataclass of plain values so the web layer can build them from ORM rows
(or tests from literals) and the rules never touch a database session.

Time conventions
- ``datetime`` fields are timezone-aware. Elapsed minutes are always computed after converting
  to UTC (see ``portal.rules.units.elapsed_minutes``) so a DST change day is not an hour off.
- ``date`` fields named ``dos`` are the date of service in the program's local time zone
  (``ProgramFact.time_zone``), as DESIGN.md requires ("dates of service ... computed in the
  program's time zone").
- Money is integer cents; durations are integer minutes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Hashable, Mapping, TypeVar

_T = TypeVar("_T")
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def frozen_new(cls: type[_T], values: dict) -> _T:
    """An instance of the frozen dataclass ``cls`` holding ``values`` (field name -> value, every
    field, in declaration order; the dict becomes the instance's).

    The generated ``__init__`` of a frozen dataclass sets each field through
    ``object.__setattr__``, several times the cost of handing over a dict; the fact loader and
    the claim-line derivation make ~100,000 of these per program-year. Equality, hashing and
    ``repr`` are the dataclass's own (they read the fields). Raises ``TypeError`` unless the
    keys are exactly the fields in order, so a field added later cannot be left unset."""
    check_fields(cls, values)
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj


def check_fields(cls: type, values: dict) -> None:
    """Raise ``TypeError`` unless ``values``' keys are exactly the fields of ``cls`` in order.
    A loop building many instances from one dict literal checks its first dict only (the keys
    are the same every time) and makes the rest with ``frozen_new_unchecked``."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    if tuple(values) != names:
        raise TypeError(f"{cls.__name__}: give every field once, in order: {', '.join(names)}")


def frozen_new_unchecked(cls: type[_T], values: dict) -> _T:
    """``frozen_new`` for a dict whose keys ``check_fields`` already accepted (see there)."""
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj

#: Attendance statuses that mean the patient received service in that session.
ATTENDED_STATUSES = frozenset({"present", "late", "left_early"})
#: Statuses that mean no service (``expected`` = on the roster, not yet marked).
NOT_ATTENDED_STATUSES = frozenset({"absent", "cancelled", "no_show", "expected"})
MODALITIES = frozenset({"in_person", "video", "audio_only"})
PATIENT_LOCATIONS = frozenset({"home", "other"})
AGE_GROUPS = frozenset({"adult", "adolescent"})

#: Who must act to clear a reason.
WHO_FACILITATOR = "facilitator"
WHO_CLINICIAN = "clinician"
WHO_BILLING = "billing"
#: A closed roster's rows differ from its archived roster: only an administrator can find out why.
WHO_ADMIN = "admin"

SCOPE_PATIENT = "patient"
SCOPE_COHORT = "cohort"

SEVERITY_BLOCK = "block"
SEVERITY_WARNING = "warning"

STATUS_READY = "ready"
STATUS_BLOCKED = "blocked"
#: Patient was on the roster that DOS but attended no group (absent/no-show/cancelled):
#: nothing to bill and nothing at risk.
STATUS_NO_SERVICE = "no_service"
#: Attended, otherwise billable, but its authorization request awaits the payer's decision:
#: "held, authorization pending" (not blocked); billable once approved.
STATUS_HELD = "held"
SEVERITY_HOLD = "hold"


@dataclass(frozen=True)
class ProgramFact:
    """The billing program. ``billing_npi`` goes in 837P loop 2010AA / CMS-1500 item 33a [S95]."""

    billing_npi: str
    time_zone: str = "America/Chicago"
    name: str = ""
    tax_id: str = ""  # EIN, 9 digits, 2010AA REF*EI
    address_line: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    taxonomy: str = ""  # provider taxonomy code for 2000A PRV*BI (sent where the payer requires)
    address_line2: str = ""
    contact_name: str = ""  # 1000A PER: the program's billing contact (setup)
    contact_phone: str = ""  # 10 digits


@dataclass(frozen=True)
class SessionFact:
    """One group session of a cohort on one date of service.

    ``actual_start``/``actual_end`` are what the facilitator recorded; their absence is a
    cohort fault (start/stop time required: DC 22-A6322, 77 IAC 2060.470, NH He-W 513.10
    [S34][S35][S36]). ``pos_override`` is a location the session itself records; it replaces
    the payer's in-person POS ("11" vs "57"); None lets the payer's rule decide.
    ``break_minutes`` is break time inside the session: not direct service time.
    ``archive_seq`` is the audit chain sequence number of the closed roster, or None.
    """

    session_id: Hashable
    cohort_name: str
    dos: date
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    facilitator_id: Hashable
    facilitator_name: str
    facilitator_credential: str  # may list several: "LPC, LCADC"
    facilitator_npi: str | None
    modality: str = "in_person"  # in_person | video | audio_only
    patient_location: str | None = None  # telehealth only: home | other
    pos_override: str | None = None
    supervising_credential: str | None = None
    supervising_npi: str | None = None
    supervising_name: str = ""
    roster_closed: bool = False
    archive_seq: int | None = None
    headcount_present: int | None = None  # facilitator's count; None = count attendance rows
    is_group: bool = True
    # Seq of the chain entry this closed roster's session row differs from (None = it matches
    # or is not archived); set by portal.archive_binding, every line of the session is blocked.
    archive_differs: int | None = None
    break_minutes: int = 0


@dataclass(frozen=True)
class AttendanceFact:
    """One patient's row on one session's roster.

    ``status``: present | late | left_early | absent | cancelled | no_show | expected.
    ``arrival``/``departure`` (aware) clip the session's actual times; required for
    ``late`` and ``left_early`` respectively.
    """

    session_id: Hashable
    patient_id: Hashable
    status: str
    arrival: datetime | None = None
    departure: datetime | None = None
    signed: bool = False
    # Seq of the chain entry this row differs from (portal.archive_binding); the line is blocked.
    archive_differs: int | None = None


@dataclass(frozen=True)
class PatientFact:
    """A patient as the claim needs them.

    ``payer_key`` is a ``RuleBook`` key (``RuleBook.match_payer`` maps census names) or None
    when the payer is unknown. ``other_level_days`` maps a level kind ("php", "residential")
    to the set of dates the patient was in that level (for same-DOS exclusivity [S110]).
    ``diagnoses`` are ICD-10-CM codes with or without the dot, principal first ("F10.20").
    """

    patient_id: Hashable
    mrn: str
    display_name: str
    payer_key: str | None
    member_id: str | None = None
    level_of_care: str = "2.1"
    age_group: str = "adult"  # adult | adolescent
    admit_date: date | None = None
    diagnoses: tuple[str, ...] = ()
    other_level_days: Mapping[str, frozenset[date]] = field(default_factory=dict)
    last_name: str = ""
    first_name: str = ""
    dob: date | None = None
    sex: str | None = None  # F | M | U for 2010BA DMG
    address_line: str = ""  # 2010BA N3/N4 (required by 837P when the subscriber is the patient)
    city: str = ""
    state: str = ""
    postal_code: str = ""
    address_line2: str = ""


@dataclass(frozen=True)
class AuthorizationFact:
    """A prior authorization: ``units_authorized`` of ``code`` between ``start`` and ``end``
    inclusive (dates of service). ``code`` None means any code billed for the patient."""

    patient_id: Hashable
    number: str
    start: date
    end: date
    units_authorized: int
    code: str | None = "H0015"
    #: ``portal.rules.authorizations`` state; only approved states cover a day, holding states
    #: (a decision awaited) hold it.
    status: str = "approved"
    #: Per-week bucket (units per payer week) on top of the total, or None.
    units_per_week: int | None = None
    week_start: int = 0  # the payer's week: 0 = Monday .. 6 = Sunday


@dataclass(frozen=True)
class Reason:
    """Why a claim line is blocked (severity ``block``) or deserves a look (``warning``).

    ``code`` is a stable machine key (e.g. ``roster_not_closed``); ``message`` is for people;
    ``who_must_act`` is facilitator | clinician | billing; ``scope`` is patient | cohort.
    Cohort-scoped reasons carry the ``session_id`` they come from so a day summary can show
    them once per session.
    """

    code: str
    message: str
    who_must_act: str
    scope: str = SCOPE_PATIENT
    severity: str = SEVERITY_BLOCK
    session_id: Hashable | None = None


@dataclass(frozen=True)
class ClaimLine:
    """One patient, one date of service, one HCPCS line.

    ``units``: 1 for H0015 per diem [S110][S111]; 15-minute units for H2019 [S1][S19].
    ``charge_cents`` = units x payer rate (integer cents). ``minutes_attended`` is the union of
    the patient's attended intervals over every group that DOS, in real elapsed minutes.
    ``status``: ready | blocked | no_service. ``reasons`` lists every reason, blocking and
    warning, in a stable order.
    """

    patient_id: Hashable
    dos: date
    payer_key: str | None
    code: str
    units: int
    modifiers: tuple[str, ...]
    pos: str
    rendering_npi: str | None
    rendering_name: str
    rendering_credential: str
    supervising_npi: str | None
    supervising_name: str
    authorization_number: str | None
    charge_cents: int
    minutes_attended: int
    status: str
    reasons: tuple[Reason, ...]
    session_ids: tuple[Hashable, ...]
    modality: str = "in_person"

    @property
    def blocking_reasons(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.severity == SEVERITY_BLOCK)

    @property
    def warnings(self) -> tuple[Reason, ...]:
        """Everything that does not block: warnings, and the hold of a pending authorization."""
        return tuple(r for r in self.reasons if r.severity != SEVERITY_BLOCK)
