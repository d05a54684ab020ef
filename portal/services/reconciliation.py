"""The daily reconciliation board (read side) and "mark day reconciled" (the one write).

Everything on the board is derived: ``portal.fact_loader.load_facts`` +
``portal.rules.claim_lines.derive_claim_lines`` (the same pair the readiness pages use), plus
the audit chain for who reconciled a day. Nothing about a reconciliation is stored outside the
chain and the portal's index of archived documents (``ArchivedDocument`` of kind
``reconciliation`` with ``dos`` = the day): who and when are read back from the chain entry's
``actor`` and ``occurred_at`` (docs/audit-format.md, entry format v1).

A second reconciliation of the same day is refused (409) unless it names the entry it
supersedes (``supersedes_seq``), which must be that day's latest. That makes a double tap or two
billers clicking at once produce exactly one entry, while a deliberate re-reconciliation after
gaps were fixed is still possible and points back at the earlier entry.

Units and zones: money is integer cents; times are UTC instants, shown in the program's zone;
the day's gaps are due a configurable time (``PORTAL_GAPS_DUE_AFTER_LAST_SESSION_MINUTES``,
default 60) after the day's last session is scheduled to end, and never before 5:00 PM
program-local: an evening group's rosters are not overdue before the group has met.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Hashable

from sqlalchemy import select

from audit_archive.entry import EntryFormatError, parse_entry
from audit_archive.ledger import entry_bytes
from portal.clock import fmt_local, local_to_utc, local_today, now_utc
from portal.documents.render import render_pdf
from portal.extensions import db
from portal.fact_loader import Facts, load_facts
from portal.models import ArchivedDocument, Program, User
from portal.rules.claim_lines import DaySummary, derive_claim_lines, summarize_day
from portal.rules.facts import (ATTENDED_STATUSES, STATUS_BLOCKED, STATUS_NO_SERVICE,
                                STATUS_READY, ClaimLine, PatientFact, Reason, SessionFact)
from portal.rules.addenda import IN_SESSION, UPCOMING, addendum_reasons, session_state
from portal.rules.payer_rules import RuleBook
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid

#: End of business for the day's gaps: never before 5:00 PM program-local on the date of service.
DEADLINE_LOCAL = time(17, 0)
#: ... and this long after the day's last session is scheduled to end (configurable).
DUE_AFTER_LAST_SESSION_MINUTES = 60
#: Days of trend shown on the board (the date itself and the 13 before it).
TREND_DAYS = 14
KIND = "reconciliation"
WHO_ORDER = ("facilitator", "clinician", "billing")

ATTENDANCE_LABEL = {
    "expected": "Not marked", "present": "Present", "late": "Late", "left_early": "Left early",
    "absent": "Absent", "cancelled": "Cancelled", "no_show": "No-show",
}


def usd(cents: int) -> str:
    """12345678 -> "$123,456.78" (integer arithmetic; negative as "-$1.00")."""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def deadline_utc(day: date, tz, last_end: datetime | None = None,
                 after_minutes: int = DUE_AFTER_LAST_SESSION_MINUTES) -> datetime:
    """When the day's gaps are due, as an aware UTC instant (DST-correct): ``after_minutes``
    after ``last_end`` (the day's last scheduled session end), but never before 5:00 PM
    program-local on ``day``."""
    eod = local_to_utc(day, DEADLINE_LOCAL, tz)
    if last_end is None:
        return eod
    return max(eod, last_end + timedelta(minutes=after_minutes))


def _due_after_minutes() -> int:
    from flask import current_app

    return int(current_app.config.get("PORTAL_GAPS_DUE_AFTER_LAST_SESSION_MINUTES",
                                      DUE_AFTER_LAST_SESSION_MINUTES))


def day_deadline(program: Program, day: date) -> datetime:
    """``deadline_utc`` for ``day`` from the sessions stored for it (one query)."""
    from sqlalchemy import func

    from portal.models import Cohort, GroupSession

    last_end = db.session.scalar(
        select(func.max(GroupSession.scheduled_end)).join(Cohort)
        .where(Cohort.program_id == program.id, GroupSession.dos == day))
    if last_end is not None and last_end.tzinfo is None:
        from datetime import timezone

        last_end = last_end.replace(tzinfo=timezone.utc)
    return deadline_utc(day, program.tz, last_end, _due_after_minutes())


# ----------------------------------------------------------------------------------------
# Read side: the board
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionRow:
    """One session of the day: roster counts (patients on the roster, attended, attended and
    signed), its summary from ``summarize_day`` and the archived roster's document id."""

    session: SessionFact
    summary: object  # portal.rules.claim_lines.SessionSummary
    scheduled: int
    attended: int
    signed: int
    document_id: int | None
    state: str | None = None  # "upcoming" / "in_session" (portal.rules.addenda.session_state)


@dataclass(frozen=True)
class LineRow:
    """One patient's claim line for the day, with the roster facts behind it.

    ``attendance``: (cohort name, attendance status label, signed) per session the patient is
    on that day. ``who`` lists the roles that must act on blocking reasons, in a fixed order.
    ``overdue``: blocked by something fixable today and the day's deadline has passed.
    ``addendum``: blocking reasons only an addendum to a closed roster can fix (no same-day
    deadline). ``state``: "upcoming"/"in_session" when every group of the line has not ended
    yet (its gaps are not gaps yet)."""

    line: ClaimLine
    patient: PatientFact
    cohorts: tuple[str, ...]
    attendance: tuple[tuple[str, str, bool], ...]
    who: tuple[str, ...]
    overdue: bool
    addendum: tuple[Reason, ...] = ()
    state: str | None = None

    @property
    def verdict(self) -> str:
        """What the board shows: the session state while the groups have not ended, else the
        rules' status (ready / blocked / no_service)."""
        if self.state and self.line.status != STATUS_READY:
            return self.state
        return self.line.status

    @property
    def only_addendum(self) -> bool:
        """Every blocking reason needs an addendum: nothing here is billing's to fix today."""
        return bool(self.addendum) and len(self.addendum) == len(self.line.blocking_reasons)

    @property
    def due_today(self) -> tuple[Reason, ...]:
        """Blocking reasons that can still be fixed on the open record today."""
        return tuple(r for r in self.line.blocking_reasons if r not in self.addendum)

    @property
    def blocking(self) -> tuple[Reason, ...]:
        return self.line.blocking_reasons

    @property
    def warnings(self) -> tuple[Reason, ...]:
        return self.line.warnings


@dataclass(frozen=True)
class BoardTotals:
    """The board's totals over some lines, by each line's verdict: what the board shows and
    what a reconciliation archives are computed here, so the two can never differ."""

    ready: int
    ready_cents: int
    blocked: int
    addendum: int
    upcoming: int
    no_service: int
    at_risk_cents: int


def board_totals(lines: list[LineRow]) -> BoardTotals:
    return BoardTotals(
        ready=sum(1 for r in lines if r.line.status == STATUS_READY),
        ready_cents=sum(r.line.charge_cents for r in lines if r.line.status == STATUS_READY),
        blocked=sum(1 for r in lines if r.verdict == STATUS_BLOCKED),
        addendum=sum(1 for r in lines if r.verdict == STATUS_BLOCKED and r.only_addendum),
        upcoming=sum(1 for r in lines if r.verdict in (UPCOMING, IN_SESSION)),
        no_service=sum(1 for r in lines if r.verdict == STATUS_NO_SERVICE),
        at_risk_cents=sum(r.line.charge_cents for r in lines if r.verdict == STATUS_BLOCKED))


@dataclass(frozen=True)
class TrendDay:
    """Lines per DOS by verdict, for the trend chart (no-service lines are not counted)."""

    day: date
    ready: int
    blocked: int


@dataclass(frozen=True)
class Reconciliation:
    """One reconciliation entry of a day, read back from the chain."""

    document_id: int
    entry_seq: int
    user_name: str
    user_id: int | None
    at_utc: datetime
    late: bool
    supersedes_seq: int | None


@dataclass
class DayBoard:
    """Everything the board shows for one program-local ``day``.

    ``lines`` and ``sessions`` are unfiltered; ``filtered(...)`` narrows them. ``now`` and
    ``deadline`` are aware UTC instants; ``tz`` is the program's ZoneInfo."""

    program: Program
    day: date
    tz: object
    now: datetime
    deadline: datetime
    sessions: list[SessionRow]
    lines: list[LineRow]
    summary: DaySummary
    trend: list[TrendDay]
    reconciliations: list[Reconciliation] = field(default_factory=list)

    @property
    def totals(self) -> BoardTotals:
        return board_totals(self.lines)

    @property
    def not_ended(self) -> list[SessionRow]:
        """Sessions whose group has not ended yet (upcoming or in session): the day cannot be
        reconciled before they end, because their gaps are not gaps yet."""
        return [s for s in self.sessions if s.state in (UPCOMING, IN_SESSION)]

    @property
    def past_deadline(self) -> bool:
        return self.now > self.deadline

    @property
    def latest_reconciliation(self) -> Reconciliation | None:
        return self.reconciliations[-1] if self.reconciliations else None

    @property
    def deadline_label(self) -> str:
        return fmt_local(self.deadline, self.tz, "%-I:%M %p %Z")

    def filtered(self, *, cohort: str | None = None, payer: str | None = None,
                 only_blocked: bool = False) -> tuple[list[SessionRow], list[LineRow]]:
        """Sessions (by cohort name) and lines (by cohort, payer key, blocked) to show."""
        sessions = [s for s in self.sessions if not cohort or s.session.cohort_name == cohort]
        lines = [r for r in self.lines
                 if (not cohort or cohort in r.cohorts)
                 and (not payer or r.line.payer_key == payer)
                 and (not only_blocked or r.line.status == STATUS_BLOCKED)]
        return sessions, lines


def _who(line: ClaimLine, addendum: tuple[Reason, ...] = ()) -> tuple[str, ...]:
    """Roles that must act on the line's blocking reasons; a reason only an addendum can fix
    belongs to the facilitator who closed the roster, whoever the rule names."""
    roles = {r.who_must_act for r in line.blocking_reasons if r not in addendum}
    if addendum:
        roles.add("facilitator")
    return tuple(w for w in WHO_ORDER if w in roles) + tuple(sorted(roles - set(WHO_ORDER)))


def board_from_facts(program: Program, day: date, facts: Facts, rulebook: RuleBook, *,
                     now: datetime, document_ids: dict[int, int] | None = None,
                     due_after_minutes: int = DUE_AFTER_LAST_SESSION_MINUTES) -> DayBoard:
    """Build the board from already-loaded facts (pure apart from ``program.tz``).

    ``facts`` must cover ``[day - 13, day]`` (plus the loader's look-back); ``document_ids``
    maps an archive seq to its ``ArchivedDocument.id`` for roster download links."""
    tz = program.tz
    lines = derive_claim_lines(*facts.args(), rulebook, documentation=facts.documentation)
    first = day - timedelta(days=TREND_DAYS - 1)
    day_sessions = sorted((s for s in facts.sessions if s.dos == day),
                          key=lambda s: (s.scheduled_start or now, s.cohort_name))
    summary = summarize_day(lines, day_sessions)
    ends = [s.scheduled_end for s in day_sessions if s.scheduled_end is not None]
    deadline = deadline_utc(day, tz, max(ends) if ends else None, due_after_minutes)
    states = {s.session_id: session_state(s, now) for s in day_sessions}
    closed_ids = {s.session_id for s in facts.sessions if s.roster_closed}

    rows_by_session: dict[Hashable, list] = defaultdict(list)
    for a in facts.attendance:
        rows_by_session[a.session_id].append(a)
    by_id = {s.session_id: s for s in day_sessions}
    sessions = []
    for s, ssum in zip(day_sessions, summary.sessions):
        rows = rows_by_session.get(s.session_id, [])
        attended = [a for a in rows if a.status in ATTENDED_STATUSES]
        sessions.append(SessionRow(
            s, ssum, len(rows), len(attended), sum(1 for a in attended if a.signed),
            (document_ids or {}).get(s.archive_seq) if s.archive_seq is not None else None,
            states[s.session_id]))

    patients = {p.patient_id: p for p in facts.patients}
    per_patient: dict[Hashable, list] = defaultdict(list)
    for sid in by_id:
        for a in rows_by_session.get(sid, []):
            per_patient[a.patient_id].append(a)
    past = now > deadline
    line_rows = []
    for ln in lines:
        if ln.dos != day:
            continue
        rows = sorted(per_patient.get(ln.patient_id, []),
                      key=lambda a: by_id[a.session_id].scheduled_start or now)
        row_states = {states.get(a.session_id) for a in rows}
        state = None  # the line's groups have all not ended yet: in session if one has begun
        if row_states and None not in row_states:
            state = "in_session" if "in_session" in row_states else "upcoming"
        addendum = addendum_reasons(ln, closed_ids)
        fixable_today = len(addendum) < len(ln.blocking_reasons)
        line_rows.append(LineRow(
            ln, patients[ln.patient_id],
            tuple(dict.fromkeys(by_id[a.session_id].cohort_name for a in rows)),
            tuple((by_id[a.session_id].cohort_name, ATTENDANCE_LABEL.get(a.status, a.status),
                   a.signed) for a in rows),
            _who(ln, addendum), past and ln.status == STATUS_BLOCKED and fixable_today
            and state is None,
            addendum, state))
    order = {STATUS_BLOCKED: 0, STATUS_READY: 1, STATUS_NO_SERVICE: 2}
    line_rows.sort(key=lambda r: (order.get(r.line.status, 3), r.patient.last_name.casefold(),
                                  r.patient.first_name.casefold(), r.patient.mrn))

    counts: dict[date, list[int]] = {first + timedelta(days=i): [0, 0] for i in range(TREND_DAYS)}
    for ln in lines:
        c = counts.get(ln.dos)
        if c is not None and ln.status in (STATUS_READY, STATUS_BLOCKED):
            c[0 if ln.status == STATUS_READY else 1] += 1
    trend = [TrendDay(d, r, b) for d, (r, b) in sorted(counts.items())]
    return DayBoard(program, day, tz, now, deadline, sessions, line_rows, summary, trend)


def build_day(program: Program, day: date, rulebook: RuleBook, *,
              now: datetime | None = None) -> DayBoard:
    """The board for ``day``: ``load_facts`` (4 queries) for the 14-day trend window, one query
    for roster document ids, and the day's reconciliations from the chain."""
    now = now or now_utc()
    facts = load_facts(program, day - timedelta(days=TREND_DAYS - 1), day)
    seqs = {s.archive_seq for s in facts.sessions if s.dos == day and s.archive_seq is not None}
    document_ids = {}
    if seqs:
        document_ids = dict(db.session.execute(
            select(ArchivedDocument.entry_seq, ArchivedDocument.id)
            .where(ArchivedDocument.entry_seq.in_(seqs))).all())
    board = board_from_facts(program, day, facts, rulebook, now=now, document_ids=document_ids,
                             due_after_minutes=_due_after_minutes())
    board.reconciliations = reconciliations_of(program, day, deadline=board.deadline)
    return board


def reconciliations_of(program: Program, day: date, *,
                       deadline: datetime | None = None) -> list[Reconciliation]:
    """The day's reconciliation entries in chain order, with who and when from each entry.

    One portal installation serves one program (``portal.program``), so the day alone
    identifies the reconciliation."""
    docs = db.session.execute(
        select(ArchivedDocument.id, ArchivedDocument.entry_seq)
        .where(ArchivedDocument.kind == KIND, ArchivedDocument.dos == day)
        .order_by(ArchivedDocument.entry_seq)).all()
    if not docs:
        return []
    conn = db.session.connection()
    parsed = []
    for doc_id, seq in docs:
        raw = entry_bytes(conn, seq)
        try:
            entry = parse_entry(raw) if raw else {}
        except EntryFormatError:  # damaged entry: shown as unknown; `audit verify` names it
            entry = {}
        actor = str(entry.get("actor", ""))
        uid = int(actor.split(":", 1)[1]) if actor.startswith("user:") and actor[5:].isdigit() else None
        at = datetime.fromisoformat(str(entry.get("occurred_at", "")).replace("Z", "+00:00")) \
            if entry.get("occurred_at") else None
        sup = (entry.get("subject") or {}).get("supersedes_seq")
        parsed.append((doc_id, seq, uid, at, int(sup) if sup and str(sup).isdigit() else None))
    names = dict(db.session.execute(
        select(User.id, User.name).where(User.id.in_({p[2] for p in parsed if p[2]} or {-1}))).all())
    deadline = deadline or day_deadline(program, day)
    return [Reconciliation(doc_id, seq, names.get(uid, "unknown user"), uid, at,
                           bool(at and at > deadline), sup)
            for doc_id, seq, uid, at, sup in parsed]


# ----------------------------------------------------------------------------------------
# The record and the write
# ----------------------------------------------------------------------------------------

def _reason_dict(r: Reason) -> dict:
    return {"code": r.code, "message": r.message, "who_must_act": r.who_must_act,
            "severity": r.severity, "scope": r.scope}


def _payer_name(key: str | None) -> str:
    """The payer's display name from its rule file (what billing staff and auditors read)."""
    if not key:
        return "unknown payer"
    from flask import current_app

    book = current_app.extensions["rulebook"]
    return book.payer(key).name if key in book.payers else key


def _line_dict(row: LineRow, day: date) -> dict:
    """One patient's line as JSON-ready strings (what that patient's export can prove)."""
    ln, p = row.line, row.patient
    return {
        "patient_id": str(p.patient_id), "mrn": p.mrn, "name": p.display_name,
        "dos": day.isoformat(), "payer_key": ln.payer_key or "", "payer": _payer_name(ln.payer_key),
        "code": ln.code, "units": str(ln.units), "modifiers": "-".join(ln.modifiers), "pos": ln.pos,
        "charge_cents": str(ln.charge_cents), "charge": usd(ln.charge_cents),
        "minutes_attended": str(ln.minutes_attended), "status": ln.status,
        "cohorts": ", ".join(row.cohorts),
        "attendance": [{"cohort": c, "status": s, "signed": "yes" if signed else "no"}
                       for c, s, signed in row.attendance],
        "who_must_act": ", ".join(row.who),
        "blocking_reasons": [_reason_dict(r) for r in ln.blocking_reasons],
        "warnings": [_reason_dict(r) for r in ln.warnings],
    }


def reconciliation_record(board: DayBoard, user: User, *, supersedes_seq: int | None) -> dict:
    """The reconciliation as plain data: strings only (ids, money and times as strings, times
    in UTC ISO 8601 plus local display strings). Its canonical hash is what the chain entry
    commits to; the PDF is rendered from exactly this dict."""
    tz, day, now = board.tz, board.day, board.now
    late = now > board.deadline
    s = board.totals  # the board's own totals (by verdict), so the archive says what it showed
    return {
        "kind": KIND,
        "program": {"name": board.program.name, "billing_npi": board.program.billing_npi,
                    "time_zone": board.program.time_zone},
        "dos": day.isoformat(),
        "dos_label": day.strftime("%A, %B %-d, %Y"),
        "reconciled_by": {"user_id": str(user.id), "name": user.name, "role": user.role},
        "reconciled_at": now.astimezone(tz).isoformat(),
        "reconciled_at_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reconciled_at_local": fmt_local(now, tz, "%B %-d, %Y %-I:%M %p %Z"),
        "deadline_local": fmt_local(board.deadline, tz, "%-I:%M %p %Z"),
        "late": "yes" if late else "no",
        "supersedes_seq": str(supersedes_seq) if supersedes_seq else "",
        "totals": {"sessions": str(len(board.sessions)), "ready": str(s.ready),
                   "blocked": str(s.blocked), "no_service": str(s.no_service),
                   "upcoming": str(s.upcoming),
                   "ready_cents": str(s.ready_cents),
                   "at_risk_cents": str(s.at_risk_cents), "ready_label": usd(s.ready_cents),
                   "at_risk_label": usd(s.at_risk_cents)},
        "sessions": [{
            "session_id": str(r.session.session_id), "cohort": r.session.cohort_name,
            "scheduled_local": fmt_local(r.session.scheduled_start, tz),
            "scheduled": str(r.scheduled), "attended": str(r.attended), "signed": str(r.signed),
            "roster_closed": "yes" if r.session.roster_closed else "no",
            "archive_seq": str(r.session.archive_seq) if r.session.archive_seq else "",
            "faults": [_reason_dict(f) for f in r.summary.cohort_faults],
        } for r in board.sessions],
        "lines": [_line_dict(r, day) for r in board.lines],
    }


def _conflict_text(rec: Reconciliation, tz) -> str:
    return (f"This day was already reconciled by {rec.user_name} at "
            f"{fmt_local(rec.at_utc, tz, '%-I:%M %p')} (entry #{rec.entry_seq}). Nothing was "
            "saved. To record a new reconciliation, reload the board and use "
            "\u201cReconcile again\u201d.")


def _check_latest(program: Program, day: date, supersedes_seq: int | None,
                  exclude_id: int | None = None) -> None:
    recs = [r for r in reconciliations_of(program, day) if r.document_id != exclude_id]
    latest = recs[-1] if recs else None
    if latest is None and supersedes_seq is not None:
        raise Conflict(f"Entry #{supersedes_seq} is not a reconciliation of "
                       f"{day.isoformat()}; nothing was saved.")
    if latest is not None and latest.entry_seq != supersedes_seq:
        raise Conflict(_conflict_text(latest, program.tz))


def reconcile_day(program: Program, day: date, user: User, rulebook: RuleBook, *,
                  supersedes_seq: int | None = None, now: datetime | None = None
                  ) -> ArchivedDocument:
    """Archive the day's reconciliation: who, when, and every gap that remained.

    Renders ``documents/reconciliation.html`` outside any transaction, then in one transaction
    re-derives the day (refusing if it changed meanwhile), appends the PDF to the chain with one
    salted line per patient listed, re-checks under the chain lock that no one else reconciled
    the day first, and commits. After 5:00 PM local it is allowed and marked late.

    Raises Invalid (a future day, a day without sessions, a group not ended yet) or Conflict (already reconciled and
    ``supersedes_seq`` is not the latest entry; the day changed while rendering).
    """
    now = now or now_utc()
    tz = program.tz
    if day > local_today(tz, now):
        raise Invalid("A day cannot be reconciled before it happens.")
    _check_latest(program, day, supersedes_seq)
    board = build_day(program, day, rulebook, now=now)
    if not board.sessions:
        raise Invalid(f"There were no sessions on {day:%A, %B %-d}; there is nothing to "
                      "reconcile.")
    waiting = board.not_ended
    if waiting:
        names = ", ".join(f"{r.session.cohort_name} (ends "
                          f"{fmt_local(r.session.scheduled_end, tz, '%-I:%M %p')})" for r in waiting)
        raise Invalid(f"{len(waiting)} group{'s have' if len(waiting) != 1 else ' has'} not ended "
                      f"yet: {names}. Reconcile the day after its last group ends; nothing "
                      "was saved.")
    record = reconciliation_record(board, user, supersedes_seq=supersedes_seq)
    user_id, program_id = user.id, program.id
    # End the read transaction (on SQLite it holds the write lock) before the slow render.
    db.session.rollback()
    pdf = render_pdf("documents/reconciliation.html", {"r": record})

    try:
        program = db.session.get(Program, program_id)
        user = db.session.get(User, user_id)
        again = reconciliation_record(build_day(program, day, rulebook, now=now), user,
                                      supersedes_seq=supersedes_seq)
        if again != record:
            raise Conflict("The day's records changed while the reconciliation was being "
                           "prepared. Review the board and reconcile again; nothing was saved.")
        subject = {"dos": day.isoformat(), "program": program.name}
        if supersedes_seq:
            subject["supersedes_seq"] = str(supersedes_seq)
        doc = archive_document(
            kind=KIND, title=f"Reconciliation {day.isoformat()}", dos=day, subject=subject,
            actor=f"user:{user.id}", record=record, pdf=pdf, occurred_at=now,
            patient_lines=[PatientLine(int(line["patient_id"]), line) for line in record["lines"]])
        # The chain lock is held from here on, so this sees any reconciliation committed
        # while we rendered: two billers clicking at once make exactly one entry.
        _check_latest(program, day, supersedes_seq, exclude_id=doc.id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return doc


__all__ = ["BoardTotals", "DayBoard", "board_totals", "LineRow", "Reconciliation", "SessionRow", "TrendDay", "board_from_facts",
           "build_day", "day_deadline", "deadline_utc", "reconcile_day", "reconciliation_record",
           "reconciliations_of", "usd"]
