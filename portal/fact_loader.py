"""Read the records the rules need as plain facts, in a fixed number of SQL queries.

``portal.rules`` takes frozen dataclasses and never touches the database; this module is the
one bridge. The query count does not grow with the number of patients or days (asserted in
tests/web/test_fact_loader.py): one query each for patients, sessions, attendance rows and
authorizations (each attendance row with its encounter note), plus two for the archive
binding step and one each for addenda, treatment plans and closures (``load_documentation``;
when the window has addenda, two more check them against their own chain entries; when it has
archived rosters, one reads the chain's addenda so a deleted addendum row is noticed, and one
more finds the notes such an addendum corrects), selecting columns rather than ORM objects
because a program-year is ~90,000 attendance rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import aliased

from portal.gc_pause import with_collection_paused
from portal.clock import local_today, local_to_utc
from portal.archive_binding import (AddendumRecord, addenda_differing, addenda_missing_rows,
                                    addendum_entries, bind_facts)
from portal.extensions import db
from portal.models import (Addendum, ArchivedDocument, AttendanceEntry, Authorization,
                           CareEpisode, Closure, Cohort, EncounterNote, GroupSession, Patient,
                           Payer, Program, TreatmentPlan, User)
from portal.rules.authorizations import APPROVED_STATES, level_kind as asam_kind, policy_for
from portal.rules.facts import (AttendanceFact, AuthorizationFact, PatientFact, ProgramFact,
                                SessionFact, check_fields, frozen_new_unchecked)
from portal.rules.notes import DocumentationFacts, NoteFact, PlanFact

ADOLESCENT_UNDER_YEARS = 18
# Weekly checks look at the whole ISO week and authorization units are consumed from the
# authorization's first day, so a range is widened backwards by this much.
DEFAULT_LOOKBACK_DAYS = 62


@dataclass(frozen=True)
class Facts:
    """Everything ``derive_claim_lines`` takes, for one program and a DOS window."""

    program: ProgramFact
    patients: tuple[PatientFact, ...]
    sessions: tuple[SessionFact, ...]
    attendance: tuple[AttendanceFact, ...]
    authorizations: tuple[AuthorizationFact, ...]
    #: encounter notes, treatment plans and closures (``portal.rules.notes``); pass it to
    #: ``derive_claim_lines(..., documentation=facts.documentation)``
    documentation: DocumentationFacts | None = None

    def args(self):
        """Positional arguments for ``derive_claim_lines`` (without the rule book)."""
        return self.program, self.patients, self.sessions, self.attendance, self.authorizations


def program_fact(program: Program) -> ProgramFact:
    """The setup's service address (2010AA, 9-digit ZIP), taxonomy and billing contact; the
    free-text ``address`` only fills a street/city/state the setup left empty."""
    parts = [p.strip() for p in (program.address or "").split(",")]
    state_zip = parts[2].split() if len(parts) > 2 else []
    return ProgramFact(
        billing_npi=program.billing_npi, time_zone=program.time_zone, name=program.name,
        tax_id=(program.tax_id or "").replace("-", ""),
        address_line=program.service_line1 or (parts[0] if parts else ""),
        address_line2=program.service_line2 or "",
        city=program.service_city or (parts[1] if len(parts) > 1 else ""),
        state=program.service_state or (state_zip[0] if state_zip else ""),
        postal_code=program.service_zip or "",
        taxonomy=program.taxonomy_code or "",
        contact_name=program.contact_name or "", contact_phone=program.contact_phone or "")


#: Levels of care above IOP (ASAM 2.1) that may not share a DOS with it, by the kind the payer
#: files name in ``exclusive_levels``: 2.5 partial hospitalization, 3.x residential, 4 inpatient.
def level_kind(level: str | None) -> str | None:
    try:
        value = float((level or "").strip())
    except ValueError:
        return None
    if value <= 2.1:
        return None
    if value < 3:
        return "php"
    return "residential"


def other_level_days(rows, first: date, last: date) -> dict[int, dict[str, frozenset[date]]]:
    """patient id -> {level kind: dates in [first, last]} from authorizations at a level above
    2.1 (a PHP or residential stay the payer authorized). Level-of-care episodes, when they are
    recorded, are another source for the same map."""
    days: dict[int, dict[str, set[date]]] = {}
    for r in rows:
        kind = level_kind(r.level_of_care)
        if kind is None:
            continue
        d, end = max(r.start_date, first), min(r.end_date, last)
        bucket = days.setdefault(r.patient_id, {}).setdefault(kind, set())
        while d <= end:
            bucket.add(d)
            d += timedelta(days=1)
    return {pid: {k: frozenset(v) for k, v in kinds.items()} for pid, kinds in days.items()}


def _age_group(dob: date, on: date) -> str:
    years = on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
    return "adolescent" if years < ADOLESCENT_UNDER_YEARS else "adult"


@with_collection_paused  # ~100,000 acyclic facts per program-year: see portal/gc_pause.py
def load_facts(program: Program, first_dos: date, last_dos: date, *,
               patient_ids: list[int] | None = None,
               lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> Facts:
    """Facts for sessions with a DOS in ``[first_dos - lookback_days, last_dos]`` (program-local
    dates). With ``patient_ids``, only sessions those patients are on are read, but with every
    row of each such session (group size needs the whole roster). Eight queries."""
    start = first_dos - timedelta(days=lookback_days)
    facilitator = aliased(User)
    supervisor = aliased(User)
    session_q = (select(GroupSession.id, GroupSession.dos, GroupSession.scheduled_start,
                        GroupSession.scheduled_end, GroupSession.actual_start,
                        GroupSession.actual_end, GroupSession.modality,
                        GroupSession.place_of_service, GroupSession.patient_location,
                        GroupSession.status,
                        Cohort.name.label("cohort"), facilitator.id.label("fid"),
                        facilitator.name.label("fname"), facilitator.credential,
                        facilitator.npi, ArchivedDocument.entry_seq, GroupSession.break_minutes,
                        supervisor.name.label("sname"), supervisor.credential.label("scred"),
                        supervisor.npi.label("snpi"))
                 .join(Cohort, Cohort.id == GroupSession.cohort_id)
                 .join(facilitator, facilitator.id == GroupSession.facilitator_id)
                 .outerjoin(supervisor, supervisor.id == facilitator.supervisor_id)
                 .outerjoin(ArchivedDocument, ArchivedDocument.id == GroupSession.document_id)
                 .where(Cohort.program_id == program.id, GroupSession.dos >= start,
                        GroupSession.dos <= last_dos,
                        # An admin-cancelled session held no group: no claim line, no gap.
                        GroupSession.status != "cancelled"))
    if patient_ids is not None:
        session_q = session_q.where(GroupSession.id.in_(
            select(AttendanceEntry.session_id).where(AttendanceEntry.patient_id.in_(patient_ids))))
    # Core rows unpacked by position: the ORM's result wrapping and by-name row access cost more
    # than reading the rows themselves at a program-year's size (bench/claim_lines.py).
    conn = db.session.connection()
    sessions = []
    for (sid, dos, scheduled_start, scheduled_end, actual_start, actual_end, modality, pos,
         patient_location, status, cohort, fid, fname, credential, npi, entry_seq, break_minutes,
         sname, scred, snpi) in conn.execute(session_q).all():
        sessions.append(frozen_new_unchecked(SessionFact, {
            "session_id": sid, "cohort_name": cohort, "dos": dos,
            "scheduled_start": scheduled_start, "scheduled_end": scheduled_end,
            "actual_start": actual_start, "actual_end": actual_end, "facilitator_id": fid,
            "facilitator_name": fname, "facilitator_credential": credential or "",
            "facilitator_npi": npi, "modality": modality, "patient_location": patient_location,
            # In person, a POS the session records is a real choice (None: the payer's rule
            # decides); for telehealth the payer's rules derive POS 10/02 from the location.
            "pos_override": pos if modality == "in_person" else None,
            "supervising_credential": scred, "supervising_npi": snpi,
            "supervising_name": sname or "", "roster_closed": status == "closed",
            "archive_seq": entry_seq, "headcount_present": None, "is_group": True,
            "archive_differs": None, "break_minutes": break_minutes or 0}))
    if sessions:  # one dict literal makes every session: its keys checked once
        check_fields(SessionFact, sessions[0].__dict__)
    session_ids = [s.session_id for s in sessions]

    attendance = []
    notes: dict[tuple, NoteFact] = {}
    note_by_doc: dict[int, tuple] = {}
    patient_set: set[int] = set(patient_ids or ())
    if session_ids:
        # Each row's encounter note comes with it (one outer join, not a second 90,000-row
        # query): see load_documentation.
        # Only whether a patient signed matters to the rules: the database answers that, so the
        # signature time is not parsed for every row.
        rows = conn.execute(
            select(AttendanceEntry.session_id, AttendanceEntry.patient_id, AttendanceEntry.status,
                   AttendanceEntry.arrival, AttendanceEntry.departure,
                   AttendanceEntry.signed_at.is_not(None).label("signed"),
                   EncounterNote.status.label("note_status"),
                   EncounterNote.signed_at.label("note_signed_at"), EncounterNote.objective_key,
                   EncounterNote.plan_id, EncounterNote.clone_flag,
                   EncounterNote.document_id.label("note_doc"))
            .outerjoin(EncounterNote, (EncounterNote.session_id == AttendanceEntry.session_id)
                       & (EncounterNote.patient_id == AttendanceEntry.patient_id))
            .where(AttendanceEntry.session_id.in_(
                select(GroupSession.id).join(Cohort).where(
                    Cohort.program_id == program.id, GroupSession.dos >= start,
                    GroupSession.dos <= last_dos)))).all()
        wanted = set(session_ids)
        # ~90,000 rows: each fact is made from one dict literal, whose keys are checked against
        # the dataclass once (below), not per row (portal.rules.facts.frozen_new).
        for (sid, pid, status, arrival, departure, signed, note_status, note_signed_at,
             objective_key, plan_id, clone_flag, note_doc) in rows:
            if sid not in wanted:
                continue
            attendance.append(frozen_new_unchecked(AttendanceFact, {
                "session_id": sid, "patient_id": pid, "status": status, "arrival": arrival,
                "departure": departure, "signed": bool(signed), "archive_differs": None}))
            if note_status is not None:
                notes[(sid, pid)] = frozen_new_unchecked(NoteFact, {
                    "session_id": sid, "patient_id": pid,
                    "signed_at": note_signed_at if note_status == "signed" else None,
                    "objective_key": objective_key, "plan_version_id": plan_id,
                    "clone_flag": clone_flag, "archive_seq": None})
                if note_doc is not None:
                    note_by_doc[note_doc] = (sid, pid)
        for fact in (next(iter(attendance), None), next(iter(notes.values()), None)):
            if fact is not None:
                check_fields(type(fact), fact.__dict__)
        patient_set |= {a.patient_id for a in attendance}

    auth_q = select(Authorization.id, Authorization.patient_id, Authorization.number,
                    Authorization.start_date, Authorization.end_date, Authorization.units,
                    Authorization.hcpcs_code, Authorization.level_of_care, Authorization.status,
                    Authorization.units_per_week, Payer.rule_key, Payer.kind).join(
        Payer, Payer.id == Authorization.payer_id)
    if patient_ids is not None:
        auth_q = auth_q.where(Authorization.patient_id.in_(patient_set or {-1}))
    auth_rows = db.session.execute(auth_q).all()
    # Only IOP-level authorizations cover an IOP line (pending ones hold it); the payer's week
    # decides a per-week bucket.
    week_starts: dict[tuple, int] = {}  # (payer, kind, start) -> the policy's week start

    def week_start(r) -> int:
        key = (r.rule_key, r.kind, r.start_date)
        if key not in week_starts:
            week_starts[key] = policy_for(r.rule_key, r.kind, r.start_date).week_start
        return week_starts[key]

    authorizations = tuple(AuthorizationFact(
        patient_id=r.patient_id, number=r.number or f"R-{r.id}", start=r.start_date,
        end=r.end_date, units_authorized=r.units, code=r.hcpcs_code, status=r.status,
        units_per_week=r.units_per_week, week_start=week_start(r))
        for r in auth_rows if level_kind(r.level_of_care) is None)
    # Higher-level days: approved PHP/residential authorizations and level-of-care episodes.
    higher = other_level_days([r for r in auth_rows if r.status in APPROVED_STATES], start,
                              last_dos)
    for pid, kinds in _other_level_days(patient_ids and patient_set, start, last_dos).items():
        merged = higher.setdefault(pid, {})
        for kind, days in kinds.items():
            merged[kind] = merged.get(kind, frozenset()) | days

    patient_q = select(Patient.id, Patient.mrn, Patient.legal_first, Patient.legal_last,
                       Patient.dob, Patient.sex, Patient.member_id, Patient.level_of_care,
                       Patient.admit_date, Patient.diagnoses, Payer.rule_key,
                       Patient.address_line1, Patient.address_line2, Patient.city,
                       Patient.state, Patient.zip).join(
        Payer, Payer.id == Patient.payer_id)
    if patient_ids is not None:
        patient_q = patient_q.where(Patient.id.in_(patient_set or {-1}))
    patients = tuple(PatientFact(
        patient_id=r.id, mrn=r.mrn, display_name=f"{r.legal_first} {r.legal_last}",
        payer_key=r.rule_key, member_id=r.member_id, level_of_care=r.level_of_care,
        age_group=_age_group(r.dob, last_dos), admit_date=r.admit_date,
        diagnoses=tuple(d.strip() for d in (r.diagnoses or "").split(",") if d.strip()),
        last_name=r.legal_last, first_name=r.legal_first, dob=r.dob, sex=r.sex,
        other_level_days=higher.get(r.id, {}),
        address_line=r.address_line1 or "", address_line2=r.address_line2 or "",
        city=r.city or "", state=r.state or "", postal_code=r.zip or "")
        for r in db.session.execute(patient_q))
    known = {p.patient_id for p in patients}
    facts = Facts(program_fact(program), patients, tuple(sessions),
                  tuple(attendance) if patient_set <= known
                  else tuple(a for a in attendance if a.patient_id in known), authorizations)
    # The archive decides: closed rosters whose rows differ from their chain entry are marked
    # so the rules block them (two more queries, see portal/archive_binding.py). Addenda are
    # applied after that check: the original rows are what the roster's entry commits to.
    facts = bind_facts(facts)
    attendance, documentation = load_documentation(
        program, start, last_dos, sessions, list(facts.attendance), notes, note_by_doc,
        patient_set if patient_ids is not None else None)
    return replace(facts, attendance=tuple(attendance), documentation=documentation)


def _other_level_days(patient_ids, first: date, last: date) -> dict:
    """patient id -> {level kind: dates} from level-of-care episodes above IOP (residential,
    PHP), for the same-DOS exclusivity check. One query."""
    q = select(CareEpisode.patient_id, CareEpisode.level, CareEpisode.start_date,
               CareEpisode.end_date).where(
        (CareEpisode.end_date.is_(None)) | (CareEpisode.end_date >= first),
        (CareEpisode.start_date.is_(None)) | (CareEpisode.start_date <= last))
    if patient_ids is not None:
        q = q.where(CareEpisode.patient_id.in_(patient_ids or {-1}))
    out: dict = {}
    for r in db.session.execute(q):
        kind = asam_kind(r.level)
        if kind in (None, "iop", "op"):
            continue
        day, end = max(r.start_date or first, first), min(r.end_date or last, last)
        days = out.setdefault(r.patient_id, {}).setdefault(kind, set())
        while day <= end:
            days.add(day)
            day += timedelta(days=1)
    return {pid: {k: frozenset(v) for k, v in kinds.items()} for pid, kinds in out.items()}


def _addenda_without_rows(sessions: list, rows: list, note_by_doc: dict) -> list[tuple]:
    """((session, patient), addendum entry seq) for every addendum to a loaded roster or note
    whose chain entry has no ``addenda`` row. One query for the chain's addenda since the
    window's first archived roster (notes are archived after their roster), and one more only
    when a missing addendum corrects something other than a loaded roster (a note)."""
    roster_seqs = {s.archive_seq: s.session_id for s in sessions if s.archive_seq is not None}
    if not roster_seqs:
        return []
    missing = addenda_missing_rows(addendum_entries(min(roster_seqs) - 1),
                                   [(r.seq, r.patient_id, r.original_seq) for r in rows])
    if not missing:
        return []
    others = {e.original_seq for e in missing
              if e.original_seq is not None and e.original_seq not in roster_seqs}
    note_of_seq = {}
    if others and note_by_doc:
        note_of_seq = {seq: note_by_doc[doc] for doc, seq in db.session.execute(
            select(ArchivedDocument.id, ArchivedDocument.entry_seq)
            .where(ArchivedDocument.entry_seq.in_(others))) if doc in note_by_doc}
    out = []
    for e in missing:
        if e.original_seq in roster_seqs:
            if e.patient_id is not None and e.patient_id.isdigit():
                out.append(((roster_seqs[e.original_seq], int(e.patient_id)), e.seq))
        elif e.original_seq in note_of_seq:
            out.append((note_of_seq[e.original_seq], e.seq))
    return out


def load_documentation(program: Program, start: date, last_dos: date, sessions: list,
                       attendance: list[AttendanceFact], notes: dict, note_by_doc: dict,
                       patient_ids: set | None
                       ) -> tuple[list[AttendanceFact], DocumentationFacts]:
    """Treatment plans, closures and addenda for the window, in three queries; ``notes`` (read
    with the attendance rows) become ``NoteFact``s with their addenda applied.
    Addenda are applied in chain order: roster addenda correct attendance status and times,
    note addenda correct the objective or resolve a similarity flag (the latest wins)."""
    tz = program.tz
    original = aliased(ArchivedDocument)
    own = aliased(ArchivedDocument)
    rows = db.session.execute(
        select(Addendum.id, Addendum.target_kind, Addendum.patient_id, Addendum.fields_json,
               Addendum.position, Addendum.document_id,
               own.entry_seq.label("seq"), original.entry_seq.label("original_seq"),
               GroupSession.id.label("session_id"), Addendum.original_document_id)
        .join(original, original.id == Addendum.original_document_id)
        .outerjoin(own, own.id == Addendum.document_id)
        .outerjoin(GroupSession, GroupSession.document_id == Addendum.original_document_id)
        .where(Addendum.target_kind.in_(("roster", "note")), original.dos >= start,
               original.dos <= last_dos)
        .order_by(Addendum.original_document_id, Addendum.patient_id, Addendum.position)).all()
    # The archive decides for addenda too: an addendum's corrected fields are used only if they
    # are what its own chain entry commits to; otherwise the day is blocked ("record differs
    # from archive entry #N", N = the addendum's entry) and the row's facts stay as archived.
    parsed: dict[int, dict | None] = {}
    for r in rows:
        try:
            fields = json.loads(r.fields_json)
            parsed[r.id] = fields if isinstance(fields, dict) else None
        except (TypeError, ValueError):
            parsed[r.id] = None
    differing = addenda_differing([
        AddendumRecord(r.id, r.document_id, r.seq, r.patient_id, r.position, r.original_seq,
                       parsed[r.id] if parsed[r.id] is not None else {"": "unreadable"})
        for r in rows]) if rows else {}
    blocked: dict[tuple, int] = {}  # (session, patient) -> entry seq the addendum differs from
    # An addendum the chain holds but no row stands for (deleted, or moved away): without this
    # the day would silently be billed on the facts the addendum corrected.
    for target, seq in _addenda_without_rows(sessions, rows, note_by_doc):
        blocked.setdefault(target, seq)
    roster_fix: dict[tuple, dict] = {}
    for r in rows:
        target = None
        if r.target_kind == "roster" and r.session_id is not None:
            target = (r.session_id, r.patient_id)
        elif r.target_kind == "note" and r.original_document_id in note_by_doc:
            target = note_by_doc[r.original_document_id]
        if target is None:
            continue
        if r.id in differing or target in blocked:
            blocked.setdefault(target, differing.get(r.id, (r.seq,))[0] or r.original_seq)
            continue
        fields = parsed[r.id]
        if r.target_kind == "roster":
            roster_fix.setdefault(target, {}).update(fields)
        else:
            note = notes[target]
            if "objective_key" in fields:
                note = replace(note, objective_key=fields["objective_key"])
            if fields.get("clone_review"):
                note = replace(note, clone_flag="resolved")
            notes[target] = note
    if roster_fix:
        dos_of = {s.session_id: s.dos for s in sessions}
        fixed = []
        for a in attendance:
            fix = roster_fix.get((a.session_id, a.patient_id))
            if fix and a.session_id in dos_of:
                def at(key, current):
                    if key not in fix:
                        return current
                    return (local_to_utc(dos_of[a.session_id], time.fromisoformat(fix[key]), tz)
                            if fix[key] else None)
                a = replace(a, status=fix.get("status", a.status),
                            arrival=at("arrival", a.arrival), departure=at("departure", a.departure))
            fixed.append(a)
        attendance = fixed
    if blocked:
        attendance = [replace(a, archive_differs=blocked[(a.session_id, a.patient_id)])
                      if (a.session_id, a.patient_id) in blocked and a.archive_differs is None
                      else a for a in attendance]

    plans, drafts = [], set()
    plan_q = (select(TreatmentPlan.id, TreatmentPlan.patient_id, TreatmentPlan.status,
                     TreatmentPlan.effective_date, TreatmentPlan.content_json,
                     ArchivedDocument.entry_seq)
              .outerjoin(ArchivedDocument, ArchivedDocument.id == TreatmentPlan.document_id))
    if patient_ids is not None:
        plan_q = plan_q.where(TreatmentPlan.patient_id.in_(patient_ids or {-1}))
    for r in db.session.execute(plan_q):
        if r.status == "signed" and r.effective_date is not None:
            keys = frozenset(p["key"] for p in json.loads(r.content_json).get("problems", []))
            plans.append(PlanFact(r.patient_id, r.id, r.effective_date, keys, r.entry_seq))
        else:
            drafts.add(r.patient_id)
    drafts -= {p.patient_id for p in plans}
    closures = frozenset(db.session.scalars(
        select(Closure.date).where(Closure.program_id == program.id)))
    documentation = DocumentationFacts(
        notes=tuple(notes.values()),
        plans=tuple(plans), unsigned_plan_patients=frozenset(drafts), closures=closures,
        time_zone=program.time_zone, today=local_today(tz))
    return attendance, documentation
