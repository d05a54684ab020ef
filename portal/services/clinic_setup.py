"""Make the database match a clinic file (docs/setup.md), and create the first program + admin.

Declarative and idempotent: applying the same file twice changes nothing and says so; a changed
file updates records in place and lists each change. Nothing is ever deleted: a cohort missing
from the file gets an end date, a staff member missing from it is deactivated, payers and
closures missing from it are kept, and history (sessions, closed rosters) is never touched.
Every change goes to the admin log in the same transaction; a dry run rolls all of it back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select

from portal.clock import local_today
from portal.extensions import db
from portal.models import Closure, Cohort, Payer, Program, User
from portal.models.people import ROLES
from portal.rules.clinic_file import Checks, ClinicSpec, ProgramSpec
from portal.rules.npi import npi_problem
from portal.services import accounts, admin_log
from portal.services.errors import Conflict, Invalid
from portal.services.schedule import cancel_for_closure

APPLY_ACTOR = "setup apply (command line)"


@dataclass
class ApplyResult:
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    # Users deactivated or given another role: signed out everywhere once the apply commits.
    sign_out: list = field(default_factory=list)


def checks_for(rulebook) -> Checks:
    """What a clinic file is checked against: the roles and the payer rule files in use."""
    supervised: set[str] = set()
    kinds = {}
    for payer in rulebook.payers.values():
        kinds[payer.key] = payer.kind
        for version in payer.versions:
            supervised |= {c.upper() for c in version.supervision.supervised_credentials}
    return Checks(roles=ROLES, payer_rules=kinds, supervised_credentials=frozenset(supervised))


def _show(value) -> str:
    if value is None or value == "":
        return "(empty)"
    if hasattr(value, "strftime") and not isinstance(value, date):
        return value.strftime("%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Changes:
    def __init__(self, result: ApplyResult, actor):
        self.result, self.actor = result, actor

    def update(self, kind: str, obj, label: str, wanted: dict) -> None:
        """Set each attribute to its wanted value; log what differed."""
        diffs = {}
        for attr, value in wanted.items():
            old = getattr(obj, attr)
            if old != value:
                diffs[attr] = (old, value)
                setattr(obj, attr, value)
        if diffs:
            text = ", ".join(f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in diffs.items())
            self.result.changes.append(f"~ {kind} {label}: {text}")
            before = "; ".join(f"{k}: {_show(a)}" for k, (a, _b) in diffs.items())
            after = "; ".join(f"{k}: {_show(b)}" for k, (_a, b) in diffs.items())
            admin_log.record(self.actor, kind, getattr(obj, "id", None), label, "updated",
                             before, after)

    def created(self, kind: str, obj, label: str, summary: str) -> None:
        self.result.changes.append(f"+ {kind} {label}: created ({summary})")
        admin_log.record(self.actor, kind, obj.id, label, "created", after=summary)

    def note(self, kind: str, obj, label: str, action: str, before: str, after: str) -> None:
        self.result.changes.append(f"- {kind} {label}: {action}")
        admin_log.record(self.actor, kind, obj.id, label, action, before, after)


def _program_fields(p: ProgramSpec) -> dict:
    s, t = p.service_address, p.pay_to_address
    return {
        "name": p.legal_name, "billing_npi": p.billing_npi, "taxonomy_code": p.taxonomy_code,
        "tax_id": p.tax_id, "time_zone": p.time_zone, "default_pos": p.default_pos,
        # The one-line address the older readers (fact loader, PDFs) split on commas.
        "address": f"{s.line1}{' ' + s.line2 if s.line2 else ''}, {s.city}, {s.state} {s.zip}",
        "service_line1": s.line1, "service_line2": s.line2, "service_city": s.city,
        "service_state": s.state, "service_zip": s.zip,
        "pay_to_line1": t.line1 if t else None, "pay_to_line2": t.line2 if t else None,
        "pay_to_city": t.city if t else None, "pay_to_state": t.state if t else None,
        "pay_to_zip": t.zip if t else None,
        "contact_name": p.contact_name, "contact_phone": p.contact_phone,
    }


def apply_clinic(spec: ClinicSpec, rulebook, *, dry_run: bool = False, actor=APPLY_ACTOR,
                 today: date | None = None) -> ApplyResult:
    """Make the database match ``spec``. Commits unless ``dry_run``; writes nothing on error
    (``Conflict``/``Invalid`` name the record)."""
    result = ApplyResult(warnings=list(spec.warnings), dry_run=dry_run)
    log = _Changes(result, actor)
    try:
        could_sign_in = _admins_who_can_sign_in()
        program = _apply_program(spec, log)
        payers = _apply_payers(spec, rulebook, log)
        users = _apply_staff(spec, payers, log)
        _apply_cohorts(spec, program, users, log, today or local_today(program.tz))
        _apply_closures(spec, program, log)
        db.session.flush()
        if could_sign_in and not _admins_who_can_sign_in():
            raise Conflict("the file would leave no active admin who can sign in; add your own "
                           "admin account (same email) to staff")
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if not dry_run:
        for user in result.sign_out:
            accounts.end_user_sessions(user)
    return result


def _admins_who_can_sign_in() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.is_active_user.is_(True),
        User.password_hash != accounts.NO_PASSWORD))


def _apply_program(spec: ClinicSpec, log: _Changes) -> Program:
    programs = db.session.scalars(select(Program).order_by(Program.id).limit(2)).all()
    if len(programs) > 1:
        raise Conflict("this database has more than one program; a clinic file describes one")
    wanted = _program_fields(spec.program)
    if not programs:
        program = Program(**wanted)
        db.session.add(program)
        db.session.flush()
        log.created("program", program, program.name, f"NPI {program.billing_npi}, {program.time_zone}")
        return program
    program = programs[0]
    log.update("program", program, spec.program.legal_name, wanted)
    return program


def _apply_payers(spec: ClinicSpec, rulebook, log: _Changes) -> dict[str, Payer]:
    existing = {p.rule_key: p for p in db.session.scalars(select(Payer))}
    for ps in spec.payers:
        wanted = {"name": ps.name, "kind": rulebook.payers[ps.rules].kind,
                  "x12_payer_id": ps.payer_id, "census_aliases": "\n".join(ps.census_names),
                  "contact": ps.contact}
        payer = existing.get(ps.rules)
        if payer is None:
            payer = Payer(rule_key=ps.rules, **wanted)
            db.session.add(payer)
            db.session.flush()
            existing[ps.rules] = payer
            log.created("payer", payer, ps.name, f"rules {ps.rules}, payer id {ps.payer_id}")
        else:
            log.update("payer", payer, ps.name, wanted)
    return existing


def _apply_staff(spec: ClinicSpec, payers: dict[str, Payer], log: _Changes) -> dict[str, User]:
    users = {u.email.lower(): u for u in db.session.scalars(select(User))}
    listed = set()
    for s in spec.staff:
        listed.add(s.email)
        wanted = {"name": s.name, "role": s.role, "credential": s.credentials, "npi": s.npi,
                  "is_active_user": s.active}
        user = users.get(s.email)
        if user is None:
            user = User(email=s.email, password_hash=accounts.NO_PASSWORD, **wanted)
            db.session.add(user)
            db.session.flush()
            users[s.email] = user
            log.created("staff", user, s.email,
                        f"{s.name}, {s.role}" + (f", {s.credentials}" if s.credentials else ""))
        else:
            was_active, was_role = user.is_active_user, user.role
            log.update("staff", user, s.email, wanted)
            if (was_active and not user.is_active_user) or was_role != user.role:
                log.result.sign_out.append(user)
    for s in spec.staff:  # supervisors once everyone exists
        user = users[s.email]
        log.update("staff", user, s.email,
                   {"supervisor_id": users[s.supervisor].id if s.supervisor else None})
    for email, user in users.items():
        if email not in listed and user.is_active_user:
            user.is_active_user = False
            log.result.sign_out.append(user)
            log.note("staff", user, email, "deactivated (not in the file)", "active: True",
                     "active: False")
    return users


def _apply_cohorts(spec: ClinicSpec, program: Program, users: dict[str, User], log: _Changes,
                   today: date) -> None:
    existing = {c.name.casefold(): c for c in db.session.scalars(
        select(Cohort).where(Cohort.program_id == program.id))}
    listed = set()
    for c in spec.cohorts:
        key = c.name.casefold()
        listed.add(key)
        wanted = {"name": c.name, "weekdays": ",".join(map(str, c.weekdays)),
                  "start_local": c.start, "duration_minutes": c.duration_minutes,
                  "modality": c.modality, "place_of_service": c.place_of_service,
                  "facilitator_id": users[c.facilitator].id if c.facilitator else None,
                  "capacity": c.capacity, "effective_from": c.effective_from,
                  "effective_to": c.effective_to}
        cohort = existing.get(key)
        if cohort is None:
            cohort = Cohort(program_id=program.id, **wanted)
            db.session.add(cohort)
            db.session.flush()
            log.created("cohort", cohort, c.name,
                        f"weekdays {wanted['weekdays']}, {c.start:%H:%M}-{c.end:%H:%M}")
        else:
            log.update("cohort", cohort, c.name, wanted)
    for key, cohort in existing.items():
        if key not in listed and (cohort.effective_to is None or cohort.effective_to >= today):
            old = cohort.effective_to
            cohort.effective_to = today - timedelta(days=1)
            log.note("cohort", cohort, cohort.name,
                     f"ended on {cohort.effective_to.isoformat()} (not in the file)",
                     f"effective_to: {_show(old)}", f"effective_to: {cohort.effective_to.isoformat()}")


def _apply_closures(spec: ClinicSpec, program: Program, log: _Changes) -> None:
    existing = {c.date: c for c in db.session.scalars(
        select(Closure).where(Closure.program_id == program.id))}
    for c in spec.closures:
        closure = existing.get(c.date)
        if closure is None:
            closure = Closure(program_id=program.id, date=c.date, reason=c.reason)
            db.session.add(closure)
            db.session.flush()
            log.created("closure", closure, c.date.isoformat(), c.reason or "closed")
            cancel_for_closure(program, c.date, c.reason)
        else:
            log.update("closure", closure, c.date.isoformat(), {"reason": c.reason})


def init_program(*, name: str, billing_npi: str, time_zone: str, admin_name: str,
                 admin_email: str, password: str, again: str) -> tuple[Program, User]:
    """``setup init``: the program and its first admin. Refuses when a program exists."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if db.session.scalar(select(Program).limit(1)) is not None:
        raise Conflict("a program already exists; change it with `flask --app portal setup apply "
                       "FILE.yaml` or on the admin page Program settings")
    problems = []
    name, admin_name = " ".join(name.split()), " ".join(admin_name.split())
    admin_email = admin_email.strip().lower()
    if not name:
        problems.append("program name: missing")
    if (p := npi_problem(billing_npi.strip())):
        problems.append(f"billing NPI: {p}")
    try:
        if "/" not in time_zone:
            raise ZoneInfoNotFoundError(time_zone)
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f'time zone: unknown time zone "{time_zone}" (use an IANA name such as '
                        "America/Chicago)")
    if not admin_name:
        problems.append("admin name: missing")
    if "@" not in admin_email or " " in admin_email:
        problems.append(f'admin email: "{admin_email}" is not an email address')
    if problems:
        raise Invalid(problems[0], details=problems)
    try:
        program = Program(name=name, billing_npi=billing_npi.strip(), time_zone=time_zone)
        admin = User(name=admin_name, email=admin_email, role="admin",
                     password_hash=accounts.NO_PASSWORD)
        accounts.set_password_directly(admin, password, again, by=None)
        db.session.add_all([program, admin])
        db.session.flush()
        admin_log.record("setup init (command line)", "program", program.id, name, "created",
                         after=f"NPI {program.billing_npi}, {time_zone}")
        admin_log.record("setup init (command line)", "staff", admin.id, admin_email, "created",
                         after=f"{admin_name}, admin")
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return program, admin
