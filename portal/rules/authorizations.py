"""Authorization rules as data and pure functions: the request/decision state machine, payer
decision clocks, unit buckets, ICD-10-CM format, overlap and alert checks.

No Flask, no database: services and views pass plain values in. Sources are DOMAIN.md §4
(ASAM levels, step-down, CMS-0057-F decision times, peer-to-peer and appeal windows) and §9
checks 16, 26, 27; the per-payer numbers live in ``authorization_policies.yaml``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable
from zoneinfo import ZoneInfo

import yaml

from portal.wording import count_noun

POLICIES_FILE = Path(__file__).with_name("authorization_policies.yaml")

# ----------------------------------------------------------------------------------------
# State machine
# ----------------------------------------------------------------------------------------

#: Every state, in the order a request usually travels, with its label for people.
STATE_LABELS = {
    "draft": "Draft request",
    "submitted": "Submitted",
    "pending": "Pending payer decision",
    "approved": "Approved",
    "partially_approved": "Partially approved",
    "denied": "Denied",
    "p2p_requested": "Peer-to-peer requested",
    "p2p_held": "Peer-to-peer held",
    "upheld": "Denial upheld",
    "overturned": "Overturned at peer-to-peer",
    "appeal_filed": "Appeal filed",
    "appeal_approved": "Appeal decided: approved",
    "appeal_denied": "Appeal decided: denied",
}
STATES = tuple(STATE_LABELS)

#: from-state -> the states it may move to. Anything else is illegal (HTTP 409).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted",),
    "submitted": ("pending",),
    "pending": ("approved", "partially_approved", "denied"),
    "denied": ("p2p_requested", "appeal_filed"),
    "p2p_requested": ("p2p_held",),
    "p2p_held": ("upheld", "overturned"),
    "upheld": ("appeal_filed",),
    "appeal_filed": ("appeal_approved", "appeal_denied"),
}

#: States whose dates of service may be billed.
APPROVED_STATES = frozenset({"approved", "partially_approved", "overturned", "appeal_approved"})
#: States that hold their dates of service: a decision is awaited (lines "held", not blocked).
HOLDING_STATES = frozenset({"submitted", "pending", "p2p_requested", "p2p_held", "appeal_filed"})
#: Final refusals: the dates are blocked.
DENIED_STATES = frozenset({"denied", "upheld", "appeal_denied"})
#: Transitions that are a payer decision (need a decision time not before the request).
DECISION_STATES = frozenset({"approved", "partially_approved", "denied", "upheld", "overturned",
                             "appeal_approved", "appeal_denied"})
#: Transitions that approve units and dates (need authorization number, dates, units).
APPROVING_STATES = APPROVED_STATES
#: Denials must carry a specific reason (CMS-0057-F [S46]).
NEEDS_REASON = frozenset({"denied", "upheld", "appeal_denied"})
#: The PDF each transition renders: the request packet or the decision.
DOCUMENT_TITLES = {
    "submitted": "Authorization request packet",
    "pending": "Payer acknowledgement",
    "p2p_requested": "Peer-to-peer request",
    "p2p_held": "Peer-to-peer record",
    "appeal_filed": "Appeal",
}


class IllegalTransition(Exception):
    """The state machine forbids this move (views answer 409)."""


def check_transition(current: str, target: str) -> None:
    if current not in STATE_LABELS:
        raise IllegalTransition(f"Unknown authorization state \u201c{current}\u201d.")
    if target not in STATE_LABELS:
        raise IllegalTransition(f"Unknown authorization state \u201c{target}\u201d.")
    if target not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(STATE_LABELS[s] for s in TRANSITIONS.get(current, ())) or "nothing"
        raise IllegalTransition(
            f"An authorization that is {STATE_LABELS[current].lower()} cannot become "
            f"{STATE_LABELS[target].lower()}; from here it can become: {allowed}.")


def document_title(target: str) -> str:
    return DOCUMENT_TITLES.get(target, "Payer decision: " + STATE_LABELS[target].lower())


# ----------------------------------------------------------------------------------------
# Levels of care and ASAM dimensions
# ----------------------------------------------------------------------------------------

#: ASAM level -> (kind used by the payer's ``exclusive_levels``, label) [DOMAIN §4.1].
LEVELS = {
    "1": ("op", "Outpatient (1)"),
    "2.1": ("iop", "Intensive outpatient (2.1)"),
    "2.5": ("php", "Partial hospitalization (2.5)"),
    "3.1": ("residential", "Residential, low intensity (3.1)"),
    "3.3": ("residential", "Residential, population-specific (3.3)"),
    "3.5": ("residential", "Residential, high intensity (3.5)"),
    "3.7": ("residential", "Medically monitored inpatient (3.7)"),
    "4": ("inpatient", "Medically managed inpatient (4)"),
}
#: Levels above IOP from which a step-down into 2.1 starts.
STEP_DOWN_FROM = frozenset({"2.5", "3.1", "3.3", "3.5", "3.7", "4"})


def level_kind(level: str | None) -> str | None:
    return LEVELS.get((level or "").strip(), (None, ""))[0]


def level_rank(level: str | None) -> float:
    try:
        return float(level or 0)
    except ValueError:
        return 0.0


#: The six dimensions per ASAM edition [S40]; the edition is recorded with every request.
ASAM_DIMENSIONS = {
    "3": ("Acute intoxication and/or withdrawal potential", "Biomedical conditions and complications",
          "Emotional, behavioral or cognitive conditions", "Readiness to change",
          "Relapse, continued use or continued problem potential", "Recovery/living environment"),
    "4": ("Intoxication, withdrawal and addiction medications", "Biomedical conditions",
          "Psychiatric and cognitive conditions", "Substance use-related risks",
          "Recovery environment interactions", "Person-centered considerations"),
}
ASAM_RATINGS = range(0, 5)  # risk rating 0 (none) .. 4 (severe)


@dataclass(frozen=True)
class DimensionRating:
    number: int
    name: str
    rating: int
    rationale: str


def check_dimensions(edition: str, ratings: dict[int, str], rationales: dict[int, str]
                     ) -> tuple[list[DimensionRating], list[str]]:
    """Read six dimension ratings (0-4) with a rationale each; returns (ratings, problems)."""
    names = ASAM_DIMENSIONS.get(edition)
    if names is None:
        return [], [f"ASAM edition must be one of {', '.join(sorted(ASAM_DIMENSIONS))}."]
    out, problems = [], []
    for i, name in enumerate(names, start=1):
        raw = (ratings.get(i) or "").strip()
        why = " ".join((rationales.get(i) or "").split())
        if not raw.isdigit() or int(raw) not in ASAM_RATINGS:
            problems.append(f"Dimension {i} ({name}): choose a risk rating from 0 to 4.")
            continue
        if not why:
            problems.append(f"Dimension {i} ({name}): write the rationale for the rating.")
            continue
        out.append(DimensionRating(i, name, int(raw), why[:2000]))
    return out, problems


# ----------------------------------------------------------------------------------------
# ICD-10-CM
# ----------------------------------------------------------------------------------------

# ICD-10-CM: a letter, a digit, a digit or letter, then optionally a dot and 1-4 characters
# (CMS ICD-10-CM Official Guidelines, code structure). The dot may be omitted on input.
_ICD10CM = re.compile(r"^([A-Z][0-9][0-9A-Z])(?:\.?([0-9A-Z]{1,4}))?$")
_SUD = re.compile(r"^F1[0-9]")


class DiagnosisFormatError(ValueError):
    pass


def normalize_icd10cm(code: str) -> str:
    """"f1020" -> "F10.20". Raises ``DiagnosisFormatError`` for text outside the format."""
    raw = (code or "").strip().upper()
    m = _ICD10CM.match(raw)
    if not m or raw.endswith("."):
        raise DiagnosisFormatError(
            f"\u201c{(code or '').strip()}\u201d is not an ICD-10-CM code (like F10.20: a letter, "
            "two characters, then optionally a dot and up to four more).")
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else "")


def parse_diagnoses(text: str) -> tuple[list[str], list[str]]:
    """Comma/space separated codes, principal first -> (codes, problems). The principal of an
    IOP request must be a substance use disorder, F10-F19 [S112]."""
    codes, problems = [], []
    for part in re.split(r"[,\s;]+", text or ""):
        if not part:
            continue
        try:
            code = normalize_icd10cm(part)
        except DiagnosisFormatError as exc:
            problems.append(str(exc))
            continue
        if code not in codes:
            codes.append(code)
    if not codes and not problems:
        problems.append("Enter at least one ICD-10-CM diagnosis, principal first (e.g. F10.20).")
    elif codes and not _SUD.match(codes[0]):
        problems.append(f"The principal diagnosis {codes[0]} is outside F10\u2013F19 (substance "
                        "use disorders); list the SUD diagnosis first.")
    return codes, problems


# ----------------------------------------------------------------------------------------
# Payer policies: clocks, windows, weeks, alerts
# ----------------------------------------------------------------------------------------

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DURATION_KINDS = ("hours", "calendar_days", "business_days")


@dataclass(frozen=True)
class Duration:
    kind: str  # hours | calendar_days | business_days
    amount: int

    def label(self) -> str:
        unit = {"hours": "hour", "calendar_days": "calendar day", "business_days": "business day"}
        return f"{self.amount} {unit[self.kind]}{'s' if self.amount != 1 else ''}"


@dataclass(frozen=True)
class Alerts:
    units_left: int
    days_to_expiry: int
    review_before_end_days: int


@dataclass(frozen=True)
class PayerPolicy:
    """One payer's clocks as of a request date. ``regime`` names where the clock comes from."""

    regime: str
    source: str
    expedited: Duration
    standard: Duration
    p2p_window: Duration
    appeal_window: Duration
    week_start: int  # 0 = Monday .. 6 = Sunday
    alerts: Alerts


class PolicyError(ValueError):
    pass


def _duration(spec, where: str) -> Duration:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise PolicyError(f"{where}: a duration is one of {{hours|calendar_days|business_days: N}}")
    (kind, amount), = spec.items()
    if kind not in DURATION_KINDS or not isinstance(amount, int) or amount <= 0:
        raise PolicyError(f"{where}: {spec!r} is not a positive duration")
    return Duration(kind, amount)


@lru_cache(maxsize=4)
def load_policies(path: str = str(POLICIES_FILE)) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    # Fail at start-up on a malformed file rather than misjudge a deadline later.
    for key in data.get("payers", {}):
        for kind in ("medicaid", "commercial"):
            policy_for(key, kind, date(2026, 1, 1), data=data)
    return data


def policy_for(payer_key: str | None, payer_kind: str, on: date, *, data: dict | None = None
               ) -> PayerPolicy:
    """The payer's policy for a request made on ``on`` (program-local date).

    Payers naming ``regime: cms_0057_f`` (or with no entry, of a kind CMS-0057-F binds) use its
    72 h / 7 day clock from its effective date and the legacy 14 day clock before it; ``contract``
    payers give their own ``expedited``/``standard``."""
    data = data or load_policies()
    regimes, defaults = data["regimes"], data["defaults"]
    entry = data.get("payers", {}).get(payer_key or "", {})
    regime = entry.get("regime")
    cms = regimes["cms_0057_f"]
    if regime is None:
        regime = "cms_0057_f" if payer_kind in cms["payer_kinds"] else "legacy"
    where = f"{POLICIES_FILE.name}: {payer_key}"
    if regime == "cms_0057_f" and on < cms["effective_from"]:
        regime = "legacy"
    if regime in regimes:
        r = regimes[regime]
        expedited, standard, source = r["expedited"], r["standard"], r["source"]
    elif regime == "contract":
        expedited, standard = entry.get("expedited"), entry.get("standard")
        source = "payer contract"
    else:
        raise PolicyError(f"{where}: unknown regime {regime!r}")
    week = entry.get("week_start", defaults["week_start"])
    if week not in WEEKDAYS:
        raise PolicyError(f"{where}: week_start must be a weekday name, not {week!r}")
    alerts = {**defaults["alerts"], **entry.get("alerts", {})}
    return PayerPolicy(
        regime=regime, source=source,
        expedited=_duration(expedited, f"{where} expedited"),
        standard=_duration(standard, f"{where} standard"),
        p2p_window=_duration(entry.get("p2p_window", defaults["p2p_window"]), f"{where} p2p_window"),
        appeal_window=_duration(entry.get("appeal_window", defaults["appeal_window"]),
                                f"{where} appeal_window"),
        week_start=WEEKDAYS.index(week),
        alerts=Alerts(int(alerts["units_left"]), int(alerts["days_to_expiry"]),
                      int(alerts["review_before_end_days"])))


def add_duration(start: datetime, duration: Duration, tz: ZoneInfo) -> datetime:
    """``start`` (aware) plus ``duration`` as a UTC instant.

    Hours are elapsed time. Calendar and business days keep the local wall-clock time, so a
    deadline across a DST change is still "same time of day" (167 or 169 real hours for 7
    days). Business days skip Saturday and Sunday; a start on a weekend counts from Monday.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if duration.kind == "hours":
        return (start.astimezone(timezone.utc) + timedelta(hours=duration.amount))
    local = start.astimezone(tz)
    day, clock = local.date(), local.time().replace(tzinfo=None)
    if duration.kind == "calendar_days":
        day += timedelta(days=duration.amount)
    else:
        if day.weekday() >= 5:  # received on a weekend: the clock starts Monday morning
            while day.weekday() >= 5:
                day += timedelta(days=1)
            clock = time(0, 0)
        left = duration.amount
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
    return datetime.combine(day, clock, tzinfo=tz).astimezone(timezone.utc)


def decision_due(submitted_at: datetime, expedited: bool, policy: PayerPolicy, tz: ZoneInfo
                 ) -> datetime:
    return add_duration(submitted_at, policy.expedited if expedited else policy.standard, tz)


def week_of(dos: date, week_start: int) -> date:
    """First day of the payer's week containing ``dos`` (``week_start`` 0=Monday..6=Sunday)."""
    return dos - timedelta(days=(dos.weekday() - week_start) % 7)


# ----------------------------------------------------------------------------------------
# Checks on authorization data
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """An authorization's dates for the overlap check."""

    ident: int | None
    number: str
    code: str
    start: date
    end: date
    state: str


def overlap_problems(new: Window, others: Iterable[Window], extends: int | None) -> list[str]:
    """Overlapping windows for the same code are allowed only as a documented extension of the
    authorization they overlap (``extends`` = its id). Denied, draft and withdrawn requests do
    not count."""
    out = []
    for o in others:
        if o.ident == new.ident or o.code != new.code or o.state in DENIED_STATES | {"draft"}:
            continue
        if o.start <= new.end and new.start <= o.end and o.ident != extends:
            out.append(f"{new.code} {new.start.isoformat()}\u2013{new.end.isoformat()} overlaps "
                       f"authorization {o.number or 'request'} ({o.start.isoformat()}\u2013"
                       f"{o.end.isoformat()}); overlapping dates are allowed only as a documented "
                       "extension of that authorization.")
    return out


@dataclass(frozen=True)
class AlertFact:
    """What the alert check needs about one approved authorization."""

    number: str
    start: date
    end: date
    units_authorized: int
    units_used: int


@dataclass(frozen=True)
class Alert:
    code: str  # units_low | expiring | review_due | expired
    message: str


def alerts_for(a: AlertFact, today: date, thresholds: Alerts) -> list[Alert]:
    out = []
    left = a.units_authorized - a.units_used
    if a.end < today:
        return [Alert("expired", f"authorization {a.number} ended {a.end.isoformat()}")]
    if left <= thresholds.units_left:
        out.append(Alert("units_low", f"{max(left, 0)} of {a.units_authorized} units left on "
                                      f"{a.number}"))
    days = (a.end - today).days
    if days <= thresholds.days_to_expiry:
        out.append(Alert("expiring", f"{a.number} ends {a.end.isoformat()} "
                                     f"({'today' if days == 0 else 'in ' + count_noun(days, 'day')})"))
    review = a.end - timedelta(days=thresholds.review_before_end_days)
    if review <= today:
        out.append(Alert("review_due", f"continued-stay review for {a.number} due "
                                       f"{review.isoformat()}"))
    return out
