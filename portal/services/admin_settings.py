"""The admin pages' writes: program settings, cohorts and their weekly schedule, payers,
closures. Checks are the clinic file's (``portal.rules.clinic_file``), so a value the file
refuses is refused here too; each change is logged (before -> after) in the same transaction.
"""
from __future__ import annotations

import re
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from portal.extensions import db
from portal.input_dates import DateInputError, read_date
from portal.models import Closure, Cohort, Payer, Program, User
from portal.rules.clinic_file import (MODALITIES, STATES, CohortSpec, facilitator_overlaps,
                                      normalize_name, read_phone, read_zip)
from portal.rules.npi import npi_problem
from portal.services import admin_log
from portal.services.errors import Conflict, Invalid

_TAXONOMY = re.compile(r"[0-9]{3}[0-9A-Z]{6}X")
_EIN = re.compile(r"([0-9]{2})-?([0-9]{7})")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
FACILITATING_ROLES = ("facilitator", "clinician", "admin")


def _clean(form, key: str) -> str:
    return " ".join((form.get(key) or "").split())


def too_long(model, values: dict) -> list[str]:
    """Text longer than its column: a clear message here instead of a database error (PostgreSQL
    refuses it; SQLite would store it silently)."""
    out = []
    for key, value in values.items():
        column = model.__table__.c.get(key)
        limit = getattr(getattr(column, "type", None), "length", None)
        if isinstance(value, str) and limit and len(value) > limit:
            out.append(f"{key.replace('_', ' ').capitalize()}: at most {limit} characters "
                       f"({len(value)} given).")
    return out


def _log_update(by, kind: str, obj, label: str, wanted: dict) -> list[str]:
    if problems := too_long(type(obj), wanted):
        raise Invalid(problems[0], details=problems)
    diffs = {k: (getattr(obj, k), v) for k, v in wanted.items() if getattr(obj, k) != v}
    if diffs:
        before, after = admin_log.diff_text(diffs)
        admin_log.record(by, kind, obj.id, label, "updated", before, after)
        for k, (_old, new) in diffs.items():
            setattr(obj, k, new)
    return list(diffs)


def _address(form, prefix: str, label: str, problems: list[str], *, nine: bool,
             required: bool) -> dict:
    vals = {k: _clean(form, f"{prefix}_{k}") for k in ("line1", "line2", "city", "state", "zip")}
    if not required and not any(vals.values()):
        return {f"{prefix}_{k}": None for k in vals}
    for k in ("line1", "city", "state", "zip"):
        if not vals[k]:
            problems.append(f"{label} {k.replace('line1', 'street')}: missing.")
    state = vals["state"].upper()
    if state and state not in STATES:
        problems.append(f'{label} state: "{state}" is not a US state code.')
    zip_code = None
    if vals["zip"]:
        zip_code, why = read_zip(vals["zip"], nine_digits=nine)
        if why:
            problems.append(f"{label} ZIP: {why}.")
    return {f"{prefix}_line1": vals["line1"] or None, f"{prefix}_line2": vals["line2"] or None,
            f"{prefix}_city": vals["city"] or None, f"{prefix}_state": state or None,
            f"{prefix}_zip": zip_code}


def update_program(program: Program, form, *, by) -> list[str]:
    """Save the program settings form. Returns the names of the fields that changed."""
    problems: list[str] = []
    name = _clean(form, "name")
    if not name:
        problems.append("Legal name: missing.")
    npi = _clean(form, "billing_npi")
    if (p := npi_problem(npi)):
        problems.append(f"Billing NPI: {p}.")
    taxonomy = _clean(form, "taxonomy_code").upper() or None
    if taxonomy and not _TAXONOMY.fullmatch(taxonomy):
        problems.append(f'Taxonomy code: "{taxonomy}" is not a provider taxonomy code '
                        "(10 characters ending in X).")
    tax_id = _clean(form, "tax_id")
    found = _EIN.fullmatch(tax_id)
    if not found:
        problems.append(f'Tax id: "{tax_id}" is not an EIN (12-3456789).')
    zone = _clean(form, "time_zone")
    try:
        if "/" not in zone:
            raise ZoneInfoNotFoundError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f'Time zone: unknown time zone "{zone}" (use an IANA name such as '
                        "America/Chicago).")
    pos = _clean(form, "default_pos") or "57"
    if not re.fullmatch(r"[0-9]{2}", pos):
        problems.append(f'Default place of service: "{pos}" is not a 2-digit POS code.')
    service = _address(form, "service", "Service address", problems, nine=True, required=True)
    pay_to = _address(form, "pay_to", "Pay-to address", problems, nine=False, required=False)
    contact_name = _clean(form, "contact_name") or None
    phone = None
    if _clean(form, "contact_phone"):
        phone, why = read_phone(_clean(form, "contact_phone"))
        if why:
            problems.append(f"Contact phone: {why}.")
    if problems:
        raise Invalid(problems[0], details=problems)
    s = service
    wanted = {"name": name, "billing_npi": npi, "taxonomy_code": taxonomy,
              "tax_id": found.group(1) + found.group(2), "time_zone": zone, "default_pos": pos,
              "address": f"{s['service_line1']}{' ' + s['service_line2'] if s['service_line2'] else ''}"
                         f", {s['service_city']}, {s['service_state']} {s['service_zip']}",
              **service, **pay_to, "contact_name": contact_name, "contact_phone": phone}
    changed = _log_update(by, "program", program, name, wanted)
    db.session.commit()
    return changed


def _read_cohort(form, program: Program) -> tuple[dict, list[str], CohortSpec | None]:
    problems: list[str] = []
    name = _clean(form, "name")
    if not name:
        problems.append("Name: missing.")
    if len(name) > 100:
        problems.append("Name: longer than 100 characters.")
    days = []
    for d in form.getlist("weekdays"):
        if not d.isdigit() or not 1 <= int(d) <= 7:
            problems.append(f'Weekdays: "{d}" is outside 1..7 (Monday=1, Sunday=7).')
        else:
            days.append(int(d))
    days = sorted(set(days))
    if not days and not problems:
        problems.append("Weekdays: choose at least one day.")
    clocks = {}
    for key, label in (("start", "Start"), ("end", "End")):
        m = _CLOCK.fullmatch(_clean(form, key))
        if not m:
            problems.append(f'{label}: "{_clean(form, key)}" is not a time (HH:MM, 24-hour).')
        else:
            clocks[key] = time(int(m.group(1)), int(m.group(2)))
    if len(clocks) == 2 and clocks["end"] <= clocks["start"]:
        problems.append(f"End: {clocks['end']:%H:%M} is not after the start "
                        f"({clocks['start']:%H:%M}).")
    modality = _clean(form, "modality") or "in_person"
    if modality not in MODALITIES:
        problems.append(f'Modality: "{modality}" is not one of {", ".join(MODALITIES)}.')
    facilitator = None
    if _clean(form, "facilitator_id"):
        facilitator = db.session.get(User, int(_clean(form, "facilitator_id"))) \
            if _clean(form, "facilitator_id").isdigit() else None
        if facilitator is None or facilitator.role not in FACILITATING_ROLES \
                or not facilitator.is_active_user:
            problems.append("Facilitator: choose an active facilitator, clinician or admin.")
    capacity = _clean(form, "capacity") or "12"
    if not capacity.isdigit() or not 1 <= int(capacity) <= 100:
        problems.append(f'Capacity: "{capacity}" is not a whole number 1..100.')
    # Only a location the group really has elsewhere: otherwise each payer's rule decides.
    pos = _clean(form, "place_of_service") or None
    if pos is not None and not re.fullmatch(r"[0-9]{2}", pos):
        problems.append(f'Place of service: "{pos}" is not a 2-digit POS code.')
    dates = {}
    for key, label in (("effective_from", "Effective from"), ("effective_to", "Effective to")):
        raw = _clean(form, key)
        try:
            dates[key] = read_date(raw, label.lower()) if raw else None
        except DateInputError as exc:
            problems.append(f"{label}: {exc}")
            dates[key] = None
    if dates["effective_from"] and dates["effective_to"] and \
            dates["effective_to"] < dates["effective_from"]:
        problems.append("Effective to: before effective from.")
    if problems:
        return {}, problems, None
    start, end = clocks["start"], clocks["end"]
    spec = CohortSpec(0, name, tuple(days), start, end, modality,
                      facilitator.email.lower() if facilitator else None, int(capacity), pos,
                      dates["effective_from"], dates["effective_to"])
    wanted = {"name": name, "weekdays": ",".join(map(str, days)), "start_local": start,
              "duration_minutes": spec.duration_minutes, "modality": modality,
              "place_of_service": pos, "facilitator_id": facilitator.id if facilitator else None,
              "capacity": int(capacity), **dates}
    return wanted, [], spec


def _cohort_spec(c: Cohort) -> CohortSpec:
    minutes = c.start_local.hour * 60 + c.start_local.minute + c.duration_minutes
    end = time(min(minutes // 60, 23), minutes % 60 if minutes < 24 * 60 else 59)
    return CohortSpec(c.id, c.name, tuple(sorted(c.weekday_set)), c.start_local, end, c.modality,
                      c.facilitator.email.lower() if c.facilitator else None, c.capacity,
                      c.place_of_service, c.effective_from, c.effective_to)


def save_cohort(cohort: Cohort | None, form, program: Program, *, by) -> tuple[Cohort, list[str]]:
    """Create or update a cohort. Returns it and any warnings (a facilitator in two groups at
    overlapping times, naming both)."""
    wanted, problems, spec = _read_cohort(form, program)
    if not problems:
        clash = db.session.scalar(select(Cohort).where(
            Cohort.program_id == program.id, Cohort.name == wanted["name"],
            Cohort.id != (cohort.id if cohort else -1)))
        if clash is not None:
            problems.append(f'Name: a cohort named "{wanted["name"]}" already exists.')
    if problems:
        raise Invalid(problems[0], details=problems)
    others = [_cohort_spec(c) for c in db.session.scalars(select(Cohort).where(
        Cohort.program_id == program.id, Cohort.id != (cohort.id if cohort else -1)))]
    warnings = [w.replace("warning: ", "") for w in facilitator_overlaps(others + [spec])
                if f'"{spec.name}"' in w]
    if cohort is None:
        cohort = Cohort(program_id=program.id, **wanted)
        db.session.add(cohort)
        db.session.flush()
        admin_log.record(by, "cohort", cohort.id, cohort.name, "created",
                         after=f"weekdays {wanted['weekdays']}, {spec.start:%H:%M}-{spec.end:%H:%M}")
    else:
        _log_update(by, "cohort", cohort, wanted["name"], wanted)
    db.session.commit()
    return cohort, warnings


def save_payer(payer: Payer | None, form, rulebook, *, by) -> Payer:
    problems = []
    name = _clean(form, "name")
    if not name:
        problems.append("Name: missing.")
    rule_key = payer.rule_key if payer else _clean(form, "rule_key")
    if rule_key not in rulebook.payers:
        problems.append(f'Rule file: "{rule_key}" is not a payer rules file.')
    elif payer is None and db.session.scalar(select(Payer).where(Payer.rule_key == rule_key)):
        problems.append(f"Rule file: {rule_key} is already used by another payer.")
    payer_id = _clean(form, "x12_payer_id")
    if not re.fullmatch(r"[0-9A-Za-z]{2,80}", payer_id):
        problems.append(f'Payer id: "{payer_id}" is not a payer id (2-80 letters and digits).')
    spellings = [" ".join(s.split()) for s in (form.get("census_aliases") or "").splitlines()
                 if s.strip()]
    mine = {normalize_name(s) for s in spellings + [name] if s}
    for other in db.session.scalars(select(Payer).where(Payer.id != (payer.id if payer else -1))):
        theirs = {normalize_name(s) for s in other.census_aliases.splitlines() + [other.name] if s}
        shared = mine & theirs
        if shared:
            problems.append(f'Census spellings: "{sorted(shared)[0]}" already names {other.name}.')
    contact = _clean(form, "contact") or None
    if problems:
        raise Invalid(problems[0], details=problems)
    wanted = {"name": name, "x12_payer_id": payer_id, "census_aliases": "\n".join(spellings),
              "contact": contact}
    if payer is None:
        payer = Payer(rule_key=rule_key, kind=rulebook.payers[rule_key].kind, **wanted)
        db.session.add(payer)
        db.session.flush()
        admin_log.record(by, "payer", payer.id, name, "created", after=f"rules {rule_key}")
    else:
        _log_update(by, "payer", payer, name, wanted)
    db.session.commit()
    return payer


def add_closure(program: Program, day_text: str, reason: str, *, by) -> Closure:
    try:
        day = read_date(day_text or "", "closure date")
    except DateInputError as exc:
        raise Invalid(str(exc), field="date") from exc
    reason = " ".join((reason or "").split())
    # Refused, not cut: a cut reason prints on the cancelled sessions as something nobody wrote.
    for problem in too_long(Closure, {"reason": reason}):
        raise Invalid(problem, field="reason")
    if db.session.scalar(select(Closure).where(Closure.program_id == program.id,
                                               Closure.date == day)):
        raise Conflict(f"{day.isoformat()} is already a closure.")
    from portal.models import GroupSession

    held = db.session.scalar(select(GroupSession).join(Cohort).where(
        Cohort.program_id == program.id, GroupSession.dos == day,
        GroupSession.status == "closed"))
    if held is not None:
        raise Conflict(f"{held.cohort.name} was held on {day.isoformat()} and its roster is "
                       "closed; that date cannot become a closure.")
    closure = Closure(program_id=program.id, date=day, reason=reason)
    db.session.add(closure)
    db.session.flush()
    admin_log.record(by, "closure", closure.id, day.isoformat(), "created", after=reason or "closed")
    from portal.services.schedule import cancel_for_closure

    cancel_for_closure(program, day, reason)
    db.session.commit()
    return closure
