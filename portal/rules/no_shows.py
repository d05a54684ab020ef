"""Classify absences under the program's written no-show policy, and find the patterns that
call for outreach, a letter or a clinical review. Pure: plain values in, plain values out.

Sources (DOMAIN.md §5): a written definition of "no-show" (not arrived within N minutes) and a
cancellation threshold (e.g. 24 h) [S65]; notice in writing, exceptions for events outside the
patient's control [S64]; payers look for outreach after no-shows in IOP reviews [S56].

Time conventions: instants are aware; the notice period is measured on the program's wall
clock (a call at 9:00 AM Saturday for a 9:00 AM Sunday group is 24 hours' notice even on the
night the clocks spring forward, which is what the written policy means to a patient); the
grace period is real elapsed minutes from the scheduled start.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Hashable, Iterable
from zoneinfo import ZoneInfo

NO_SHOW = "no_show"
LATE_CANCELLATION = "late_cancellation"
TIMELY_CANCELLATION = "timely_cancellation"
EXCUSED = "excused"
#: On the roster as cancelled (or not marked after the group ended) but nothing says when
#: notice came in: a person must classify it.
UNCLASSIFIED = "unclassified"

CLASSIFICATIONS = (NO_SHOW, LATE_CANCELLATION, TIMELY_CANCELLATION, EXCUSED, UNCLASSIFIED)
LABELS = {NO_SHOW: "No-show", LATE_CANCELLATION: "Late cancellation",
          TIMELY_CANCELLATION: "Timely cancellation", EXCUSED: "Excused",
          UNCLASSIFIED: "Not yet classified"}
#: Absences that count towards letters and clinical review (the patient gave no usable notice).
COUNTED = frozenset({NO_SHOW, LATE_CANCELLATION})
#: Absences that may carry a fee under a policy (never timely cancellations or excused ones).
FEE_CLASSES = COUNTED


@dataclass(frozen=True)
class PolicyTerms:
    """One version of the written policy. ``effective_to`` None = open-ended."""

    version: int
    effective_from: date
    effective_to: date | None
    grace_minutes: int
    notice_hours: int
    fee_cents: int
    uniform: bool = False
    letter_consecutive: int = 2
    letter_count: int = 3
    window_days: int = 30
    policy_id: Hashable = None

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


@dataclass(frozen=True)
class Notice:
    """A cancellation (``kind`` "cancellation", with when it came in) or documented excuse."""

    kind: str
    notice_at: datetime
    recorded_at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Classification:
    code: str  # one of CLASSIFICATIONS
    detail: str
    policy_version: int | None

    @property
    def label(self) -> str:
        return LABELS[self.code]


def policy_in_force(policies: Iterable[PolicyTerms], day: date) -> PolicyTerms | None:
    """The version covering ``day`` (versions never overlap: ``overlap`` refuses it)."""
    for p in policies:
        if p.covers(day):
            return p
    return None


def overlap(policies: Iterable[PolicyTerms], start: date, end: date | None) -> PolicyTerms | None:
    """The first existing version whose dates share a day with ``start``..``end`` (None = open)."""
    for p in policies:
        p_end = p.effective_to or date.max
        new_end = end or date.max
        if p.effective_from <= new_end and start <= p_end:
            return p
    return None


def wall_clock_minutes(earlier: datetime, later: datetime, tz: ZoneInfo) -> int:
    """Minutes between two instants as read on the program's wall clock (DST-insensitive)."""
    a = earlier.astimezone(tz).replace(tzinfo=None)
    b = later.astimezone(tz).replace(tzinfo=None)
    return int((b - a) / timedelta(minutes=1))


def _hm(minutes: int) -> str:
    sign = "-" if minutes < 0 else ""
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h} h {m:02d} min"


def classify(status: str, *, scheduled_start: datetime, scheduled_end: datetime,
             arrival: datetime | None, notice: Notice | None, excuse: Notice | None,
             policy: PolicyTerms | None, tz: ZoneInfo, now: datetime) -> Classification | None:
    """Classify one roster row. None = not an absence (attended within grace, or the group has
    not ended and nothing was recorded yet).

    - A documented excuse wins: ``excused``.
    - A cancellation notice: hours before the scheduled start on the wall clock >= the policy's
      notice hours -> timely, else late. A notice recorded after the group ended is never
      timely (the service refuses it; this guards old rows).
    - Attended (present, late, left early): None; partial minutes stay partial minutes.
    - ``absent``: ``no_show``. Still ``expected`` (not arrived, no contact) more than
      ``grace_minutes`` whole minutes after the scheduled start: ``no_show`` (the policy's
      definition [S65]); within the grace period: None (they may still come).
    - ``cancelled`` without a notice time: ``unclassified``.
    - Without a policy in force: ``unclassified`` for anything that would need one.
    """
    version = policy.version if policy else None
    if status in ("present", "late", "left_early"):
        # Attended: a late arrival or early departure keeps its partial minutes and is not an
        # absence, and a notice given earlier no longer matters.
        return None
    if excuse is not None:
        return Classification(EXCUSED, excuse.reason or "Documented excuse", version)
    if notice is not None and notice.kind == "cancellation":
        if policy is None:
            return Classification(UNCLASSIFIED, "No policy in force on this date", None)
        minutes = wall_clock_minutes(notice.notice_at, scheduled_start, tz)
        when = notice.notice_at.astimezone(tz).strftime("%b %-d %-I:%M %p")
        detail = f"Notice {when}, {_hm(minutes)} before the start (policy: {policy.notice_hours} h)"
        if minutes >= policy.notice_hours * 60 and notice.recorded_at < scheduled_end:
            return Classification(TIMELY_CANCELLATION, detail, version)
        return Classification(LATE_CANCELLATION, detail, version)
    if status == "absent":
        if policy is None:
            return Classification(UNCLASSIFIED, "No policy in force on this date", None)
        return Classification(NO_SHOW, "Marked no-show; no notice recorded", version)
    if status == "expected":
        if policy is None:
            return (Classification(UNCLASSIFIED, "No policy in force on this date", None)
                    if now >= scheduled_end else None)
        waited = int((now - scheduled_start) / timedelta(minutes=1))
        if waited > policy.grace_minutes:
            return Classification(NO_SHOW, f"Not arrived within the {policy.grace_minutes}-minute "
                                  "grace period; no contact", version)
        return None
    if status == "cancelled":
        return Classification(UNCLASSIFIED, "Marked cancelled on the roster; record when the "
                              "notice came in", version)
    return None


# ------------------------------------------------------------------------------------------
# Thresholds and patterns
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Occurrence:
    """One scheduled group for one patient, in date order; ``code`` None = attended."""

    dos: date
    code: str | None


@dataclass(frozen=True)
class Trigger:
    """A threshold crossed on ``dos``: a letter and a clinical-review task are due."""

    dos: date
    kind: str  # consecutive | window
    reason: str
    dates: tuple[date, ...]


def _fmt(days: Iterable[date]) -> str:
    return ", ".join(f"{d:%b %-d}" for d in days)


def triggers(history: Iterable[Occurrence], policy_for) -> list[Trigger]:
    """Where the letter thresholds were crossed. ``history``: the patient's scheduled groups;
    ``policy_for(dos)`` the PolicyTerms in force (or None: no thresholds then).

    Consecutive counts scheduled groups in order, skipping excused and timely-cancelled ones
    (they neither count nor break a run); the window counts counted absences in the
    ``window_days`` days ending on the absence (day 1 .. day N inclusive). A new trigger needs
    ``window_days`` since the last one, so one episode makes one letter.
    """
    occ = sorted(history, key=lambda o: o.dos)
    out: list[Trigger] = []
    run: list[date] = []
    counted: list[date] = []
    for o in occ:
        if o.code in (EXCUSED, TIMELY_CANCELLATION, UNCLASSIFIED):
            continue
        if o.code not in COUNTED:
            run = []
            continue
        run.append(o.dos)
        counted.append(o.dos)
        policy = policy_for(o.dos)
        if policy is None:
            continue
        if out and (o.dos - out[-1].dos).days < policy.window_days:
            continue
        in_window = [d for d in counted if (o.dos - d).days < policy.window_days]
        if len(run) >= policy.letter_consecutive:
            days = tuple(run[-policy.letter_consecutive:])
            out.append(Trigger(o.dos, "consecutive",
                               f"{len(run)} consecutive missed groups ({_fmt(days)})", days))
        elif len(in_window) >= policy.letter_count:
            days = tuple(in_window)
            out.append(Trigger(o.dos, "window", f"{len(in_window)} missed groups within "
                               f"{policy.window_days} days ({_fmt(days)})", days))
    return out


STEP_DOWN = "step_down"
CLINICAL_CONCERN = "clinical_concern"


@dataclass(frozen=True)
class Pattern:
    kind: str  # step_down | clinical_concern
    reason: str


def pattern(history: Iterable[Occurrence], today: date, window_days: int = 30) -> Pattern | None:
    """What the last ``window_days`` suggest for the clinician, with the reason.

    - clinical concern: two or more no-shows / late cancellations in the window;
    - step-down readiness: two or more timely cancellations with no unexcused absence (planned
      absences with notice often mean work or school is returning: a lower level may fit).
    """
    recent = [o for o in history if 0 <= (today - o.dos).days < window_days]
    missed = [o.dos for o in recent if o.code in COUNTED]
    planned = [o.dos for o in recent if o.code == TIMELY_CANCELLATION]
    if len(missed) >= 2:
        return Pattern(CLINICAL_CONCERN, f"{len(missed)} missed groups without usable notice in "
                       f"{window_days} days ({_fmt(sorted(missed))})")
    if len(planned) >= 2 and not missed:
        return Pattern(STEP_DOWN, f"{len(planned)} cancellations with timely notice and no "
                       f"missed groups in {window_days} days ({_fmt(sorted(planned))}): "
                       "discuss step-down readiness")
    return None


@dataclass(frozen=True)
class WeekCount:
    week_start: date
    counts: dict  # classification -> n


def weekly_counts(absences: Iterable[tuple[date, str]], last_day: date, weeks: int = 8
                  ) -> list[WeekCount]:
    """Absences per ISO week (Monday start) for the ``weeks`` weeks ending with ``last_day``'s."""
    end_monday = last_day - timedelta(days=last_day.weekday())
    starts = [end_monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    buckets = {s: {} for s in starts}
    for day, code in absences:
        monday = day - timedelta(days=day.weekday())
        if monday in buckets:
            buckets[monday][code] = buckets[monday].get(code, 0) + 1
    return [WeekCount(s, buckets[s]) for s in starts]


def payer_on(spans: Iterable[tuple[date, str]], day: date) -> str | None:
    """The payer key in force on ``day`` from ``(effective_from, payer_key)`` spans: a payer
    change mid-month applies from its date, so each absence is judged under its own payer."""
    found = None
    for start, key in sorted(spans):
        if start <= day:
            found = key
    return found
