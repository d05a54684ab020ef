"""Authorization requests and decisions, step-down, payer letters, level-of-care episodes.

Each writing function either completes and commits or raises a ``ServiceError`` having written
nothing. A transition renders its PDF outside any transaction, then in one transaction re-reads
the authorization under its lock, checks nothing moved meanwhile, archives the stamped PDF and
records the move (as ``close_roster`` does).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from portal.clock import local_today, now_utc
from portal.documents.authorization import (patient_line, render_authorization_pdf,
                                            transition_record)
from portal.extensions import db
from portal.models import (ArchivedDocument, ArchivedDocumentPatient, Authorization,
                           AuthorizationTransition, CareEpisode, Patient, PayerLetter, Program,
                           User)
from portal.rules import authorizations as ar
from portal.services.archiving import PatientLine, archive_document
from portal.services.checkpoints import checkpoint_if_due
from portal.services.errors import Conflict, Invalid, NotFound

MAX_UNITS = 1000
MAX_TEXT = 4000
CODES = ("H0015", "H2019")
REQUEST_KINDS = ("standard", "expedited")


def _program() -> Program:
    from portal.program import current_program
    return current_program()


def get(auth_id: int, *, for_update: bool = False) -> Authorization:
    stmt = select(Authorization).where(Authorization.id == auth_id)
    if for_update:
        stmt = stmt.with_for_update()
    auth = db.session.scalar(stmt)
    if auth is None:
        raise NotFound(f"There is no authorization {auth_id}.")
    return auth


def _date(text, label: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        problems.append(f"{label}: enter a date like 2026-12-01.")
        return None


def _int(text, label: str, problems: list[str], *, optional: bool = False) -> int | None:
    raw = str(text if text is not None else "").strip()
    if optional and not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_UNITS:
        problems.append(f"{label}: enter a whole number from 1 to {MAX_UNITS}.")
        return None
    return int(raw)


def _overlaps(patient_id: int, payer_id: int, code: str, start: date, end: date,
              ident: int | None, extends: int | None) -> list[str]:
    others = [ar.Window(a.id, a.number or "", a.hcpcs_code, a.start_date, a.end_date, a.status)
              for a in db.session.scalars(select(Authorization).where(
                  Authorization.patient_id == patient_id, Authorization.payer_id == payer_id))]
    return ar.overlap_problems(ar.Window(ident, "", code, start, end, "draft"), others, extends)


# ----------------------------------------------------------------------------------------
# Requests
# ----------------------------------------------------------------------------------------

@dataclass
class RequestForm:
    """What a new request (or a step-down's IOP request) carries, as typed."""

    level: str = "2.1"
    edition: str = "3"
    code: str = "H0015"
    start: str = ""
    end: str = ""
    units: str = ""
    units_per_week: str = ""
    request_kind: str = "standard"
    diagnoses: str = ""
    history: str = ""
    ratings: dict = field(default_factory=dict)
    rationales: dict = field(default_factory=dict)
    extends_id: int | None = None
    extension_reason: str = ""
    attachments: list = field(default_factory=list)  # archived document ids


def create_request(patient_id: int, form: RequestForm, *, actor: User,
                   prior_authorization_id: int | None = None) -> Authorization:
    """A draft request. Raises NotFound, Invalid (every problem listed, nothing written)."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("There is no such patient.")
    problems: list[str] = []
    if form.level not in ar.LEVELS:
        problems.append("Choose a level of care.")
    if form.code not in CODES:
        problems.append(f"Code must be one of {', '.join(CODES)}.")
    if form.request_kind not in REQUEST_KINDS:
        problems.append("Choose a standard or an expedited request.")
    start = _date(form.start, "First day", problems)
    end = _date(form.end, "Last day", problems)
    units = _int(form.units, "Units requested", problems)
    per_week = _int(form.units_per_week, "Units per week", problems, optional=True)
    if start and end and end < start:
        problems.append("The last day is before the first day.")
    if units and per_week and per_week > units:
        problems.append("Units per week cannot exceed the units requested.")
    dims, dim_problems = ar.check_dimensions(form.edition, form.ratings, form.rationales)
    problems += dim_problems
    codes, dx_problems = ar.parse_diagnoses(form.diagnoses)
    problems += dx_problems
    history = " ".join((form.history or "").split())
    if len(history) > MAX_TEXT:
        problems.append(f"History: at most {MAX_TEXT} characters.")
    prior = None
    if prior_authorization_id is not None:
        prior = get(prior_authorization_id)
        if prior.patient_id != patient.id:
            raise NotFound("That authorization belongs to another patient.")
        if prior.level_of_care not in ar.STEP_DOWN_FROM:
            problems.append(f"A step-down starts from a higher level of care, not "
                            f"{prior.level_of_care}.")
    extends = None
    if form.extends_id:
        extends = get(form.extends_id)
        if extends.patient_id != patient.id:
            raise NotFound("That authorization belongs to another patient.")
        if not form.extension_reason.strip():
            problems.append("An extension needs its documented reason.")
    if start and end and form.code in CODES:
        problems += _overlaps(patient.id, patient.payer_id, form.code, start, end, None,
                              extends.id if extends else None)
    attachments = []
    for doc_id in form.attachments:
        doc = db.session.get(ArchivedDocument, doc_id)
        linked = doc is not None and db.session.get(ArchivedDocumentPatient, (doc.id, patient.id))
        if not linked:
            problems.append("An attached document is not one of this patient's archived documents.")
            continue
        attachments.append({"document_id": str(doc.id), "title": doc.title,
                            "entry_seq": str(doc.entry_seq), "sha256": doc.doc_sha256})
    if problems:
        raise Invalid(" ".join(problems), details=problems)
    auth = Authorization(
        patient_id=patient.id, payer_id=patient.payer_id, number=None, hcpcs_code=form.code,
        level_of_care=form.level, asam_edition=form.edition, start_date=start, end_date=end,
        units=units, units_per_week=per_week, status="draft", request_kind=form.request_kind,
        prior_authorization_id=prior.id if prior else None,
        extends_id=extends.id if extends else None,
        extension_reason=form.extension_reason.strip() or None,
        request_json=json.dumps({
            "dimensions": [{"number": d.number, "name": d.name, "rating": d.rating,
                            "rationale": d.rationale} for d in dims],
            "diagnoses": codes, "history": history, "attachments": attachments,
        }, sort_keys=True))
    db.session.add(auth)
    db.session.commit()
    return auth


def step_down_prefill(prior_id: int) -> tuple[Authorization, RequestForm, list]:
    """The IOP request a step-down from ``prior_id`` starts with: the next day after the higher
    level ends, the patient's diagnoses, a history naming the prior level, the six dimensions
    of the prior request's edition (its ratings when it had any), and the patient's archived
    documents offered as attachments."""
    prior = get(prior_id)
    if prior.level_of_care not in ar.STEP_DOWN_FROM:
        raise Conflict(f"Step-down starts from a residential or PHP authorization; this one is "
                       f"level {prior.level_of_care}.")
    patient = prior.patient
    start = prior.end_date + timedelta(days=1)
    old = {d["number"]: d for d in prior.request.get("dimensions", [])}
    form = RequestForm(
        level="2.1", edition=prior.asam_edition, code="H0015", start=start.isoformat(),
        end=(start + timedelta(days=29)).isoformat(), units="20", units_per_week="5",
        diagnoses=", ".join(prior.request.get("diagnoses") or
                            [d.strip() for d in (patient.diagnoses or "").split(",") if d.strip()]),
        history=(f"Stepping down from ASAM {prior.level_of_care} "
                 f"({ar.LEVELS.get(prior.level_of_care, ('', ''))[1]}), authorization "
                 f"{prior.label}, {prior.start_date.isoformat()} to {prior.end_date.isoformat()}."),
        ratings={n: str(d["rating"]) for n, d in old.items()},
        rationales={n: d["rationale"] for n, d in old.items()})
    docs = db.session.execute(
        select(ArchivedDocument.id, ArchivedDocument.title, ArchivedDocument.entry_seq)
        .join(ArchivedDocumentPatient).where(ArchivedDocumentPatient.patient_id == patient.id)
        .order_by(ArchivedDocument.entry_seq.desc()).limit(30)).all()
    return prior, form, docs


# ----------------------------------------------------------------------------------------
# Transitions
# ----------------------------------------------------------------------------------------

def units_used(auth: Authorization, *, program: Program | None = None) -> int:
    """Units of ``auth`` on billable (ready) claim lines, derived from the archive's facts."""
    from portal.fact_loader import load_facts
    from portal.rules.claim_lines import derive_claim_lines

    if auth.status not in ar.APPROVED_STATES:
        return 0
    program = program or _program()
    last = min(auth.end_date, local_today(program.tz))
    if last < auth.start_date:
        return 0
    facts = load_facts(program, auth.start_date, last, patient_ids=[auth.patient_id],
                       lookback_days=0)
    number = auth.number or f"R-{auth.id}"
    return sum(ln.units for ln in derive_claim_lines(*facts.args(),
                                                     current_app.extensions["rulebook"],
                                                     documentation=facts.documentation)
               if ln.authorization_number == number and ln.status == "ready")


def policy(auth: Authorization, on: date) -> ar.PayerPolicy:
    return ar.policy_for(auth.payer.rule_key, auth.payer.kind, on)


@dataclass
class Decision:
    """Fields a transition may set, as typed (empty = unchanged)."""

    at: str = ""  # local "YYYY-MM-DDTHH:MM"; empty = now
    note: str = ""
    number: str = ""
    start: str = ""
    end: str = ""
    units: str = ""
    units_per_week: str = ""


def _event_time(text: str, tz, now: datetime) -> datetime:
    if not (text or "").strip():
        return now
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise Invalid("When: enter a date and time like 2026-12-01T14:30.", field="at") from exc
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(now.tzinfo)


def _plan(auth: Authorization, target: str, d: Decision, actor: User, now: datetime,
          program: Program, amend: bool) -> tuple[datetime, dict, dict]:
    """Validate a move; returns (event time, attribute changes, record changes as strings)."""
    if amend:
        if auth.status not in ar.APPROVED_STATES or target != auth.status:
            raise Conflict("Only an approved authorization's number, dates and units can be "
                           "amended.")
    else:
        try:
            ar.check_transition(auth.status, target)
        except ar.IllegalTransition as exc:
            raise Conflict(str(exc)) from exc
    tz = program.tz
    at = _event_time(d.at, tz, now)
    problems: list[str] = []
    if at > now + timedelta(minutes=5):
        problems.append("When: that time is in the future.")
    last = auth.transitions[-1].at if auth.transitions else None
    if target in ar.DECISION_STATES and auth.submitted_at and at < auth.submitted_at:
        problems.append(f"A decision cannot be dated before its request (submitted "
                        f"{auth.submitted_at.astimezone(tz):%b %-d, %Y %-I:%M %p}).")
    elif last and at < last:
        problems.append(f"This cannot be dated before the previous step "
                        f"({last.astimezone(tz):%b %-d, %Y %-I:%M %p}).")
    note = " ".join((d.note or "").split())
    if len(note) > MAX_TEXT:
        problems.append(f"Note: at most {MAX_TEXT} characters.")
    if target in ar.NEEDS_REASON and not note:
        problems.append("A denial needs the payer's specific reason.")
    attrs: dict = {"status": target}
    rec: dict = {}
    pol = policy(auth, (auth.submitted_at or at).astimezone(tz).date())
    if target == "submitted":
        attrs["submitted_at"] = at
        attrs["decision_due_at"] = ar.decision_due(at, auth.request_kind == "expedited", pol, tz)
        rec["decision_due"] = (f"{attrs['decision_due_at'].astimezone(tz):%b %-d, %Y %-I:%M %p %Z}"
                               f" ({(pol.expedited if auth.request_kind == 'expedited' else pol.standard).label()},"
                               f" {pol.regime})")
    if target in ar.DECISION_STATES and not amend:
        attrs["decided_at"] = at
    if target in ("denied", "upheld", "appeal_denied"):
        attrs["denial_reason"] = note
    if target == "denied":
        attrs["p2p_due_at"] = ar.add_duration(at, pol.p2p_window, tz)
        attrs["appeal_due_at"] = ar.add_duration(at, pol.appeal_window, tz)
    if target == "upheld":
        attrs["appeal_due_at"] = ar.add_duration(at, pol.appeal_window, tz)
    for key in ("p2p_due_at", "appeal_due_at"):
        if key in attrs:
            rec[key[:-3]] = f"{attrs[key].astimezone(tz):%b %-d, %Y %-I:%M %p %Z}"
    if target == "p2p_requested" and auth.p2p_due_at and at > auth.p2p_due_at:
        problems.append(f"The peer-to-peer window closed "
                        f"{auth.p2p_due_at.astimezone(tz):%b %-d, %Y %-I:%M %p %Z}; file an "
                        "appeal instead.")
    if target == "appeal_filed" and auth.appeal_due_at and at > auth.appeal_due_at:
        problems.append(f"The appeal window closed "
                        f"{auth.appeal_due_at.astimezone(tz):%b %-d, %Y %-I:%M %p %Z}.")
    if target in ar.APPROVING_STATES:
        number = " ".join((d.number or auth.number or "").split())
        if not number:
            problems.append("Enter the payer's authorization number.")
        elif len(number) > 60:
            problems.append("The authorization number is too long.")
        start = _date(d.start, "First day", problems) if d.start else auth.start_date
        end = _date(d.end, "Last day", problems) if d.end else auth.end_date
        units = _int(d.units, "Units approved", problems) if d.units else auth.units
        per_week = (_int(d.units_per_week, "Units per week", problems)
                    if d.units_per_week else auth.units_per_week)
        if start and end and end < start:
            problems.append("The last day is before the first day.")
        if units and per_week and per_week > units:
            problems.append("Units per week cannot exceed the units approved.")
        if target == "approved" and not amend and units and (units < auth.units or (
                start and end and (start > auth.start_date or end < auth.end_date))):
            problems.append("Fewer units or days than requested is a partial approval.")
        if number and number != auth.number and db.session.scalar(select(Authorization.id).where(
                Authorization.payer_id == auth.payer_id, Authorization.number == number,
                Authorization.id != auth.id)):
            problems.append(f"Authorization number {number} is already recorded for this payer.")
        if start and end:
            problems += _overlaps(auth.patient_id, auth.payer_id, auth.hcpcs_code, start, end,
                                  auth.id, auth.extends_id)
        if not problems:
            attrs.update(number=number, start_date=start, end_date=end, units=units,
                         units_per_week=per_week)
            rec.update(number=number, start=start.isoformat(), end=end.isoformat(),
                       units=str(units), units_per_week="" if per_week is None else str(per_week))
            # units below units already used (billable lines of an approval being amended)
            used = units_used(auth, program=program)
            if units < used:
                problems.append(f"{used} units are already used on billable lines; the "
                                f"approval cannot be for fewer ({units}).")
    if problems:
        raise Invalid(" ".join(problems), details=problems)
    return at, attrs, rec


def transition(auth_id: int, target: str, decision: Decision, *, actor: User,
               now: datetime | None = None, amend: bool = False) -> Authorization:
    """Move ``auth_id`` to ``target``: validate, render the PDF outside any transaction,
    archive it and record the move in one transaction.

    Raises NotFound; Conflict (illegal move, or the authorization moved meanwhile); Invalid
    (decision before request, units below units used, overlap, missing reason, closed window).
    ``amend`` changes an approved authorization's number, dates or units (the payer revised
    it) without changing its state; it is archived like a move.
    """
    now = now or now_utc()
    program = _program()
    auth = get(auth_id)
    at, attrs, rec = _plan(auth, target, decision, actor, now, program, amend)
    note = " ".join((decision.note or "").split())
    record = transition_record(auth, program=program, from_state=auth.status, to_state=target,
                               at=at, actor=actor, note=note, changes=rec)
    if amend:
        record["title"] = "Authorization amended"
    from_state = auth.status
    db.session.rollback()  # no transaction is held while WeasyPrint lays out pages
    pdf = render_authorization_pdf(record)

    auth = get(auth_id, for_update=True)
    if auth.status != from_state:
        db.session.rollback()
        raise Conflict("This authorization changed while its document was being made. "
                       "Review it and try again.")
    try:
        doc = archive_document(
            kind="authorization", title=f"{record['title']} {auth.patient.mrn} {auth.label}",
            dos=attrs.get("start_date") or auth.start_date,
            subject={"authorization_id": str(auth.id), "to_state": target,
                     "patient_id": str(auth.patient_id)},
            actor=f"user:{actor.id}", record=record, pdf=pdf, occurred_at=at,
            patient_lines=[PatientLine(auth.patient_id, patient_line(record))])
        for k, v in attrs.items():
            setattr(auth, k, v)
        db.session.add(AuthorizationTransition(
            authorization_id=auth.id, from_state=from_state, to_state=target, at=at,
            recorded_at=now, actor_id=actor.id, note=note or None, document_id=doc.id))
        if target in ar.APPROVED_STATES:
            _record_episode(auth)
            for ep in db.session.scalars(select(CareEpisode).where(
                    CareEpisode.authorization_id == auth.id)):
                ep.start_date, ep.end_date, ep.auth_number = (auth.start_date, auth.end_date,
                                                              auth.number)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    checkpoint_if_due()
    return auth


def _record_episode(auth: Authorization) -> None:
    """An approved level-of-care authorization opens its episode; an approved step-down closes
    the higher level's episode the day before (prior -> new)."""
    prior_ep = None
    if auth.prior is not None:
        prior_ep = db.session.scalar(select(CareEpisode).where(
            CareEpisode.patient_id == auth.patient_id,
            CareEpisode.level == auth.prior.level_of_care).order_by(CareEpisode.id.desc()))
        if prior_ep is None:
            prior_ep = CareEpisode(patient_id=auth.patient_id, level=auth.prior.level_of_care,
                                   asam_edition=auth.prior.asam_edition,
                                   start_date=auth.prior.start_date,
                                   authorization_id=auth.prior.id, auth_number=auth.prior.number,
                                   source="step_down")
            db.session.add(prior_ep)
        last_day = auth.start_date - timedelta(days=1)
        if prior_ep.end_date is None or prior_ep.end_date > last_day:
            prior_ep.end_date = last_day
        db.session.flush()
    existing = db.session.scalar(select(CareEpisode).where(CareEpisode.authorization_id == auth.id))
    if existing is None:
        db.session.add(CareEpisode(
            patient_id=auth.patient_id, level=auth.level_of_care, asam_edition=auth.asam_edition,
            start_date=auth.start_date, end_date=auth.end_date, authorization_id=auth.id,
            auth_number=auth.number, prior_episode_id=prior_ep.id if prior_ep else None,
            source="step_down" if prior_ep else "manual"))


def episodes_from_census(patient: Patient, *, auth_number: str | None) -> None:
    """The census's prior level and prior authorization number start the patient's episodes:
    the prior level up to the day before admission, then the census level from admission.
    Called inside the import's transaction; writes nothing when episodes exist."""
    if patient.id is not None and db.session.scalar(
            select(CareEpisode.id).where(CareEpisode.patient_id == patient.id).limit(1)):
        return
    prior = None
    if patient.prior_level_of_care in ar.LEVELS:
        prior = CareEpisode(patient=patient, level=patient.prior_level_of_care,
                            asam_edition=patient.asam_edition or "3", start_date=None,
                            end_date=patient.admit_date - timedelta(days=1),
                            auth_number=patient.prior_auth_number, source="census")
        db.session.add(prior)
        db.session.flush()
    db.session.add(CareEpisode(patient=patient, level=patient.level_of_care or "2.1",
                               asam_edition=patient.asam_edition or "3",
                               start_date=patient.admit_date, auth_number=auth_number,
                               prior_episode_id=prior.id if prior else None, source="census"))


# ----------------------------------------------------------------------------------------
# Payer letters
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckedLetter:
    pages: int
    decrypted: bytes | None


def check_letter(data: bytes, max_bytes: int) -> CheckedLetter:
    """Read an uploaded payer letter with pypdf. Raises ``Invalid`` with a clear message for a
    file over the limit, not a PDF (e.g. an HTML page saved as .pdf), truncated, damaged, or
    password protected; an empty-user-password encryption is removed (decrypted bytes kept)."""
    from pypdf import PasswordType, PdfReader, PdfWriter

    if not data:
        raise Invalid("The file is empty.", field="letter")
    if len(data) > max_bytes:
        raise Invalid(f"The file is {len(data) // 1024} KB; the limit is {max_bytes // 1024} KB.",
                      field="letter")
    head = data[:1024]
    if b"%PDF-" not in head:
        looks_html = b"<html" in head.lower() or b"<!doctype" in head.lower()
        raise Invalid("This file is not a PDF" + (" (it is a web page saved with a .pdf name)"
                                                  if looks_html else "") +
                      ". Ask the payer for the letter as a PDF, or print it to PDF.",
                      field="letter")
    if b"%%EOF" not in data[-2048:]:
        raise Invalid("This PDF is incomplete (the download was cut off). Download it again.",
                      field="letter")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        decrypted = None
        if reader.is_encrypted:
            if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise Invalid("This PDF is password protected. Save an unprotected copy (or ask "
                              "the payer for one) and upload that.", field="letter")
            writer = PdfWriter(clone_from=reader)
            out = io.BytesIO()
            writer.write(out)
            decrypted = out.getvalue()
        pages = len(reader.pages)
        for page in reader.pages:
            page.extract_text()  # forces every content stream to parse
        if pages == 0:
            raise Invalid("This PDF has no pages.", field="letter")
    except Invalid:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files; none may escape
        raise Invalid("This PDF is damaged and cannot be read. Download it again or ask the "
                      "payer for a new copy.", field="letter") from exc
    return CheckedLetter(pages, decrypted)


def upload_letter(auth_id: int, filename: str, data: bytes, *, actor: User,
                  max_bytes: int) -> PayerLetter:
    auth = get(auth_id)
    name = " ".join((filename or "letter.pdf").replace("/", "_").replace("\\", "_").split())[:200]
    checked = check_letter(data, max_bytes)
    letter = PayerLetter(
        authorization_id=auth.id, filename=name or "letter.pdf", size=len(data),
        pages=checked.pages, original=data, original_sha256=hashlib.sha256(data).hexdigest(),
        decrypted=checked.decrypted,
        decrypted_sha256=hashlib.sha256(checked.decrypted).hexdigest() if checked.decrypted else None,
        uploaded_by_id=actor.id)
    try:
        db.session.add(letter)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return letter
