"""Census import service: compare a parsed census with the database and, on request, write it.

All or nothing: the plan is built and applied inside one transaction, and any error (in the file
or against the database) means nothing is written. Re-importing the same file finds every row
"unchanged", so the import is safe to repeat.

What an import may change, and what it refuses to:
- patients are created, or their demographics/payer updated to match the EHR; a blank Sex or
  Prior Level of Care in the census keeps what the portal has (a blank export cell is more
  often "not exported" than "cleared");
- a patient gets a new enrollment when they have no current one; moving a patient to another
  group is refused (the roster history must say when the move happened, the census cannot);
- authorizations are created but never altered: one with the same payer and number but other
  dates or units is an error, because a decided authorization is a record, not a setting.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from portal.census.parse import CensusRow, RowError, RowNote, parse_census
from portal.clock import local_today
from portal.extensions import db
from portal.models import Authorization, Cohort, Enrollment, Patient, Payer, Program

NEW, UNCHANGED, UPDATED = "new", "unchanged", "updated"


class CensusSetupError(Exception):
    """The portal is not set up for an import (no program, or more than one)."""


@dataclass
class RowPlan:
    """What importing one census row does. ``*_changes`` are readable "field: old -> new"."""

    row: CensusRow
    payer_id: int
    cohort_id: int
    patient_id: int | None = None  # None: the patient is new
    patient: str = NEW
    patient_changes: list[str] = field(default_factory=list)
    enrollment: str = NEW
    enrollment_changes: list[str] = field(default_factory=list)
    authorization: str | None = None  # None: the row carries no authorization


@dataclass
class ImportReport:
    """The outcome of a dry run or a commit. ``committed`` is True only when rows were written."""

    rows: list[RowPlan]
    errors: list[RowError]
    notes: list[RowNote]
    committed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def counts(self) -> dict[str, Counter]:
        """``{"patients": Counter(new=.., unchanged=.., updated=..), "enrollments": ..,
        "authorizations": ..}``."""
        return {
            "patients": Counter(p.patient for p in self.rows),
            "enrollments": Counter(p.enrollment for p in self.rows),
            "authorizations": Counter(p.authorization for p in self.rows if p.authorization),
        }

    @property
    def changes(self) -> bool:
        return any(p.patient != UNCHANGED or p.enrollment != UNCHANGED
                   or p.authorization == NEW for p in self.rows)


def import_census(data: bytes, *, commit: bool = False) -> ImportReport:
    """Check ``data`` (the raw census file) against the database; write it when ``commit``.

    A dry run (the default) writes nothing. With ``commit``, the rows are written in one
    transaction only if there is no error at all; otherwise the session is rolled back.
    Raises ``CensusSetupError`` when there is not exactly one program; database errors
    (e.g. a concurrent import creating the same MRN) propagate after a rollback.
    """
    try:
        report = _plan(data)
        if not commit or not report.ok:
            db.session.rollback()
            return report
        _apply(report.rows)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    report.committed = True
    return report


def _program() -> Program:
    programs = db.session.scalars(select(Program).limit(2)).all()
    if len(programs) != 1:
        raise CensusSetupError("the census import needs exactly one program set up; "
                               f"found {len(programs)}")
    return programs[0]


def _plan(data: bytes) -> ImportReport:
    program = _program()
    payers = {p.name: p for p in db.session.scalars(select(Payer))}
    cohorts = {c.name: c for c in db.session.scalars(
        select(Cohort).where(Cohort.program_id == program.id))}
    aliases = {spelling: p.name for p in payers.values()
               for spelling in (p.census_aliases or "").splitlines() if spelling.strip()}
    parsed = parse_census(data, {name: p.kind for name, p in payers.items()}, cohorts, aliases,
                          today=local_today(program.tz))
    errors = list(parsed.errors)
    plans = []
    for row in parsed.rows:
        plan, row_errors = _plan_row(row, payers[row.payer], cohorts[row.group])
        errors.extend(row_errors)
        plans.append(plan)
    errors.sort(key=lambda e: e.line)
    # A refused row does nothing: it is listed with its problems, never counted or shown as
    # "new" beside them (QA: a row refused as another person previewed as a new patient).
    refused = {e.line for e in errors}
    plans = [p for p in plans if p.row.line not in refused]
    return ImportReport(plans, errors, parsed.notes)


def _fmt(value) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, date):
        return f"{value.month:02d}/{value.day:02d}/{value.year}"
    return str(value)


def _auth_code(row: CensusRow, payer: Payer) -> str:
    """The code the authorization covers: the file's (an ``Auth Code`` column) or the payer's
    default (its first bill code in force on the authorization's first day)."""
    code = (getattr(row.auth, "code", None) or "").strip().upper()
    if code:
        return code
    from flask import current_app

    try:
        return current_app.extensions["rulebook"].rules_for(payer.rule_key, row.auth.start).default_code()
    except LookupError:
        return "H0015"


def _patient_fields(row: CensusRow, payer: Payer) -> dict[str, tuple[str, object]]:
    """Patient attribute -> (census column, value). Blank optional cells are left out on purpose."""
    out = {
        "legal_last": ("Last Name", row.last_name),
        "legal_first": ("First Name", row.first_name),
        "dob": ("DOB", row.dob),
        "payer_id": ("Primary Payer", payer.id),
        "member_id": ("Member ID", row.member_id),
        "level_of_care": ("Level of Care", row.level_of_care),
        "admit_date": ("Admit Date", row.admit_date),
    }
    if row.sex is not None:
        out["sex"] = ("Sex", row.sex)
    if row.prior_level_of_care is not None:
        out["prior_level_of_care"] = ("Prior Level of Care", row.prior_level_of_care)
    if row.prior_auth_number is not None:
        out["prior_auth_number"] = ("Prior Auth #", row.prior_auth_number)
    if row.address_line1 is not None:  # v2 census: the subscriber address, all four together
        out["address_line1"] = ("Address", row.address_line1)
        out["city"] = ("City", row.city)
        out["state"] = ("State", row.state)
        out["zip"] = ("ZIP", row.zip)
    if row.phone is not None:
        out["phone"] = ("Phone", row.phone)
    if row.diagnoses is not None:
        out["diagnoses"] = ("Diagnoses", row.diagnoses)
    if row.qmb is not None:
        out["qmb"] = ("QMB", row.qmb)
    return out


def _plan_row(row: CensusRow, payer: Payer, cohort: Cohort) -> tuple[RowPlan, list[RowError]]:
    plan = RowPlan(row=row, payer_id=payer.id, cohort_id=cohort.id)
    errors: list[RowError] = []
    patient = db.session.scalar(select(Patient).where(Patient.mrn == row.mrn))
    if patient is not None:
        mismatch = _identity_mismatch(row, patient)
        if mismatch:
            return plan, [mismatch]
        plan.patient_id = patient.id
        for attr, (column, value) in _patient_fields(row, payer).items():
            old = getattr(patient, attr)
            if old != value:
                if attr == "payer_id":
                    old, value = patient.payer.name, payer.name
                plan.patient_changes.append(f"{column}: {_fmt(old)} -> {_fmt(value)}")
        plan.patient = UPDATED if plan.patient_changes else UNCHANGED
        errors.extend(_plan_enrollment(plan, patient, cohort))
    if row.auth is not None:
        errors.extend(_plan_authorization(plan, patient, payer))
    return plan, errors


def _identity_mismatch(row: CensusRow, patient: Patient) -> RowError | None:
    """A row whose MRN is on file under another name AND another date of birth is another
    person (a reused or mistyped MRN), not an update: importing it would file one patient's
    records under another's identity. One of the two changing is a correction and shows in the
    preview as an update."""
    same_name = (row.last_name.casefold(), row.first_name.casefold()) == (
        patient.legal_last.casefold(), patient.legal_first.casefold())
    if same_name or row.dob == patient.dob:
        return None
    return RowError(row.line, "MRN", (
        f"MRN {row.mrn} is {patient.legal_last}, {patient.legal_first} (DOB {_fmt(patient.dob)}) "
        f"in the portal, but this row names {row.last_name}, {row.first_name} (DOB {_fmt(row.dob)}): "
        "both the name and the date of birth differ, so this is another person or a mistyped "
        "MRN. Check the MRN in the EHR; a real correction of both goes in as two imports, "
        "one field at a time"))


def _plan_enrollment(plan: RowPlan, patient: Patient, cohort: Cohort) -> list[RowError]:
    row = plan.row
    current = [e for e in patient.enrollments
               if e.end_date is None or e.end_date >= row.admit_date]
    same = [e for e in current if e.cohort_id == cohort.id]
    if same:
        enrollment = same[0]
        if row.counselor is not None and enrollment.primary_counselor != row.counselor:
            plan.enrollment = UPDATED
            plan.enrollment_changes.append(
                f"Primary Counselor: {_fmt(enrollment.primary_counselor)} -> {row.counselor}")
        else:
            plan.enrollment = UNCHANGED
        return []
    if current:
        other = current[0]
        return [RowError(row.line, "Group", (
            f"MRN {row.mrn} is enrolled in {other.cohort.name} since "
            f"{_fmt(other.start_date)}; move patients between groups in the portal, "
            "not by census import"))]
    ended = [e for e in patient.enrollments
             if e.cohort_id == cohort.id and e.start_date == row.admit_date]
    if ended:
        return [RowError(row.line, "Group", (
            f"MRN {row.mrn}'s {cohort.name} enrollment from {_fmt(row.admit_date)} ended on "
            f"{_fmt(ended[0].end_date)}; re-admit the patient in the portal"))]
    plan.enrollment = NEW
    return []


def _plan_authorization(plan: RowPlan, patient: Patient | None, payer: Payer) -> list[RowError]:
    row, auth = plan.row, plan.row.auth
    existing = db.session.scalar(select(Authorization).where(
        Authorization.payer_id == payer.id, Authorization.number == auth.number))
    if existing is None:
        plan.authorization = NEW
        return []
    if patient is None or existing.patient_id != patient.id:
        return [RowError(row.line, "Auth #", (
            f"authorization {auth.number} from {payer.name} is already recorded for "
            f"MRN {existing.patient.mrn}"))]
    wanted = {"Auth Start": (existing.start_date, auth.start), "Auth End": (existing.end_date, auth.end),
              "Auth Units": (existing.units, auth.units),
              "Level of Care": (existing.level_of_care, row.level_of_care)}
    errors = [RowError(row.line, column, (
        f"authorization {auth.number} is recorded with {_fmt(old)}, the census says {_fmt(new)}; "
        "an import never changes an authorization"))
        for column, (old, new) in wanted.items() if old != new]
    plan.authorization = UNCHANGED
    return errors


def _apply(plans: list[RowPlan]) -> None:
    """Write the plan. Only called for an error-free plan, inside the caller's transaction."""
    for plan in plans:
        row = plan.row
        payer = db.session.get(Payer, plan.payer_id)
        cohort = db.session.get(Cohort, plan.cohort_id)
        if plan.patient_id is None:
            patient = Patient(mrn=row.mrn)
            db.session.add(patient)
        else:
            patient = db.session.get(Patient, plan.patient_id)
        for attr, (_column, value) in _patient_fields(row, payer).items():
            setattr(patient, attr, value)
        if plan.enrollment == NEW:
            db.session.add(Enrollment(patient=patient, cohort=cohort, start_date=row.admit_date,
                                      primary_counselor=row.counselor))
        elif plan.enrollment == UPDATED:
            for e in patient.enrollments:
                if e.cohort_id == cohort.id and (e.end_date is None or e.end_date >= row.admit_date):
                    e.primary_counselor = row.counselor
        if plan.authorization == NEW:
            db.session.add(Authorization(
                patient=patient, payer=payer, number=row.auth.number,
                hcpcs_code=_auth_code(row, payer),
                level_of_care=row.level_of_care, start_date=row.auth.start,
                end_date=row.auth.end, units=row.auth.units))
        if plan.patient_id is None:  # a new patient's level-of-care episodes (prior -> census)
            from portal.services.authorizations import episodes_from_census
            episodes_from_census(patient, auth_number=row.auth.number if row.auth else None)
