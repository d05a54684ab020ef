"""Read the records the rules need as plain facts, in a fixed number of SQL queries.

``portal.rules`` takes frozen dataclasses and never touches the database; this module is the
one bridge. The query count does not grow with the number of patients or days (asserted in
tests/web/test_fact_loader.py): one query each for patients, sessions, attendance rows and
authorizations (plus two for the archive binding step), selecting columns rather than ORM objects because a program-year is ~90,000
attendance rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import aliased

from portal.archive_binding import bind_facts
from portal.extensions import db
from portal.models import (ArchivedDocument, AttendanceEntry, Authorization, Cohort,
                           GroupSession, Patient, Payer, Program, User)
from portal.rules.facts import (AttendanceFact, AuthorizationFact, PatientFact, ProgramFact,
                                SessionFact)

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


def load_facts(program: Program, first_dos: date, last_dos: date, *,
               patient_ids: list[int] | None = None,
               lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> Facts:
    """Facts for sessions with a DOS in ``[first_dos - lookback_days, last_dos]`` (program-local
    dates). With ``patient_ids``, only sessions those patients are on are read, but with every
    row of each such session (group size needs the whole roster). Four queries."""
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
    sessions = []
    session_ids = []
    for r in db.session.execute(session_q):
        session_ids.append(r.id)
        sessions.append(SessionFact(
            session_id=r.id, cohort_name=r.cohort, dos=r.dos, scheduled_start=r.scheduled_start,
            scheduled_end=r.scheduled_end, actual_start=r.actual_start, actual_end=r.actual_end,
            facilitator_id=r.fid, facilitator_name=r.fname,
            facilitator_credential=r.credential or "", facilitator_npi=r.npi,
            modality=r.modality, patient_location=r.patient_location,
            # In person, a POS the session records is a real choice (None: the payer's rule
            # decides); for telehealth the payer's rules derive POS 10/02 from the location.
            pos_override=r.place_of_service if r.modality == "in_person" else None,
            supervising_name=r.sname or "", supervising_credential=r.scred,
            supervising_npi=r.snpi, break_minutes=r.break_minutes or 0,
            roster_closed=r.status == "closed", archive_seq=r.entry_seq))

    attendance = []
    patient_set: set[int] = set(patient_ids or ())
    if session_ids:
        rows = db.session.execute(
            select(AttendanceEntry.session_id, AttendanceEntry.patient_id, AttendanceEntry.status,
                   AttendanceEntry.arrival, AttendanceEntry.departure, AttendanceEntry.signed_at)
            .where(AttendanceEntry.session_id.in_(
                select(GroupSession.id).join(Cohort).where(
                    Cohort.program_id == program.id, GroupSession.dos >= start,
                    GroupSession.dos <= last_dos))))
        wanted = set(session_ids)
        for r in rows:
            if r.session_id not in wanted:
                continue
            patient_set.add(r.patient_id)
            attendance.append(AttendanceFact(
                session_id=r.session_id, patient_id=r.patient_id, status=r.status,
                arrival=r.arrival, departure=r.departure, signed=r.signed_at is not None))

    auth_q = select(Authorization.patient_id, Authorization.number, Authorization.start_date,
                    Authorization.end_date, Authorization.units, Authorization.hcpcs_code,
                    Authorization.level_of_care)
    if patient_ids is not None:
        auth_q = auth_q.where(Authorization.patient_id.in_(patient_set or {-1}))
    auth_rows = db.session.execute(auth_q).all()
    authorizations = tuple(AuthorizationFact(
        patient_id=r.patient_id, number=r.number, start=r.start_date, end=r.end_date,
        units_authorized=r.units, code=r.hcpcs_code)
        for r in auth_rows if level_kind(r.level_of_care) is None)
    higher = other_level_days(auth_rows, start, last_dos)

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
                  tuple(a for a in attendance if a.patient_id in known), authorizations)
    # The archive decides: closed rosters whose rows differ from their chain entry are marked
    # so the rules block them (two more queries, see portal/archive_binding.py).
    return bind_facts(facts)
