"""Billing pages (billing and admin roles only; auditors and floor staff get 403).

- ``GET  /billing/``                      the daily reconciliation board (``billing.board``);
                                          htmx filter requests get the ``_board.html`` partial.
- ``POST /billing/days/<date>/reconcile`` mark the day reconciled (archived, chained PDF).
- ``GET  /billing/rules``                 payer rule versions (read-only).
- ``GET  /billing/exports``               the export forms.
- ``POST /billing/exports``               start a claim-line CSV export job.
- ``GET  /billing/exports/<job>``         job progress (polled every 600 ms) / download link.
- ``GET  /billing/exports/<job>/download`` the CSV (one disclosure row in the access log).
- ``POST /billing/837p``                  X12 837P for one payer's ready lines (a disclosure).

Views parse input, call the service or the pure rules, and pick page or partial.
"""
from __future__ import annotations

import csv
import io
from datetime import date

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from sqlalchemy import func, select, text

from portal.access_control import allow
from portal.billing import jobs
from portal.billing.inputs import parse_day, parse_flag, parse_payer, parse_range
from portal.billing.trend import HEIGHT, WIDTH, bars
from portal.clock import fmt_local, local_today, now_utc
from portal.errors import is_partial_request
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import AccessLogEntry, Cohort, Program
from portal.no_shows.facts import day_counts
from portal.program import current_program
from portal.rules.admin_view import rulebook_view
from portal.rules.claim_csv import claim_csv_rows
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import STATUS_BLOCKED, STATUS_READY
from portal.rules.x12_837p import ControlNumbers, Receiver, Submitter, build_837p
from portal.services.errors import ServiceError
from portal.services.reconciliation import build_day, reconcile_day, usd

bp = Blueprint("billing", __name__, url_prefix="/billing")

BILLING = ("billing", "admin")
#: Rows written between two progress updates of a CSV export.
PROGRESS_EVERY = 500
X12_ENDPOINT = "billing.x12_837p"


@bp.app_template_filter("usd")
def _usd_filter(cents: int) -> str:
    return usd(cents)


def _rulebook():
    return current_app.extensions["rulebook"]


# ----------------------------------------------------------------------------------------
# Board
# ----------------------------------------------------------------------------------------

def _filters(values, program: Program) -> dict:
    cohorts = list(db.session.scalars(select(Cohort.name).where(Cohort.program_id == program.id)
                                      .order_by(Cohort.start_local)))
    cohort = (values.get("cohort") or "").strip() or None
    if cohort and cohort not in cohorts:
        abort(400, description=f"There is no cohort \u201c{cohort[:60]}\u201d.")
    return {"cohort": cohort, "payer": parse_payer(values.get("payer"), _rulebook(), required=False),
            "only_blocked": parse_flag(values.get("blocked")), "cohorts": cohorts}


def _render_board(day: date, values, status: int = 200):
    program = current_program()
    f = _filters(values, program)
    board = build_day(program, day, _rulebook())
    sessions, lines = board.filtered(cohort=f["cohort"], payer=f["payer"],
                                     only_blocked=f["only_blocked"])
    ctx = dict(
        board=board, sessions=sessions, lines=lines, filters=f,
        payers=sorted(_rulebook().payers.values(), key=lambda p: p.name.casefold()),
        at_risk_cents=sum(r.line.charge_cents for r in lines if r.line.status == STATUS_BLOCKED),
        ready_cents=sum(r.line.charge_cents for r in lines if r.line.status == STATUS_READY),
        blocked_count=sum(1 for r in lines if r.line.status == STATUS_BLOCKED),
        ready_count=sum(1 for r in lines if r.line.status == STATUS_READY),
        bars=bars(board.trend), chart_w=WIDTH, chart_h=HEIGHT,
        absence_counts=day_counts(program, day),
        today=local_today(program.tz), fmt_local=fmt_local,
        query={k: v for k, v in (("cohort", f["cohort"]), ("payer", f["payer"]),
                                 ("blocked", "1" if f["only_blocked"] else None)) if v},
    )
    template = "billing/_board.html" if is_partial_request() else "billing/board.html"
    return render_template(template, **ctx), status


@bp.route("/")
@allow(*BILLING)
def board():
    """The day's sessions and claim lines. ``?date=YYYY-MM-DD`` (program-local, default today),
    ``cohort`` (name), ``payer`` (rule key), ``blocked=1``."""
    program = current_program()
    day = parse_day(request.args.get("date"), local_today(program.tz))
    return _render_board(day, request.args)


@bp.route("/days/<day>/reconcile", methods=["POST"])
@allow(*BILLING)
def reconcile(day: str):
    """Archive the day's reconciliation. Form: ``supersedes`` = the entry number of the day's
    latest reconciliation when reconciling again (409 otherwise); filter fields are echoed
    back so the swapped board keeps the user's view."""
    program = current_program()
    d = parse_day(day, local_today(program.tz))
    raw = (request.form.get("supersedes") or "").strip()
    if raw and not raw.isdigit():
        abort(400, description="The earlier reconciliation's entry number must be a number.")
    try:
        reconcile_day(program, d, current_user._get_current_object(), _rulebook(),
                      supersedes_seq=int(raw) if raw else None)
    except ServiceError as exc:
        abort(exc.status, description=exc.message)
    if is_partial_request():
        return _render_board(d, request.form)
    return redirect(url_for(".board", date=d.isoformat()), code=303)


# ----------------------------------------------------------------------------------------
# Rules
# ----------------------------------------------------------------------------------------

@bp.route("/rules")
@allow(*BILLING)
def rules():
    """Each payer's rule versions with the DOS each took effect and its key parameters."""
    program = current_program()
    today = local_today(program.tz)
    return render_template("billing/rules.html", payers=rulebook_view(_rulebook(), today),
                           today=today)


# ----------------------------------------------------------------------------------------
# Exports
# ----------------------------------------------------------------------------------------

def _log_disclosure(description: str, endpoint: str) -> None:
    """One access-log row naming the export (method ``EXPORT``): every export is a disclosure.
    Committed here because the after-request hook rolls back whatever a view left pending."""
    db.session.add(AccessLogEntry(
        user_id=current_user.id, role=current_user.role, method="EXPORT",
        path=description[:500], endpoint=endpoint, patient_id=None, status_code=200,
        remote_addr=(request.remote_addr or "")[:64]))
    db.session.commit()


@bp.route("/exports")
@allow(*BILLING)
def exports():
    program = current_program()
    today = local_today(program.tz)
    return render_template("billing/exports.html", payers=_payer_choices(), first=today.replace(day=1),
                           last=today)


def _payer_choices():
    return sorted(_rulebook().payers.values(), key=lambda p: p.name.casefold())


def _csv_work(app, job: jobs.Job) -> None:
    """Load, derive and write the CSV inside the job's thread, reporting progress."""
    p = job.params
    first, last = date.fromisoformat(p["from"]), date.fromisoformat(p["to"])
    with app.app_context():
        program = db.session.get(Program, p["program_id"])
        job.report(5, "Reading attendance records")
        facts = load_facts(program, first, last)
        db.session.rollback()  # release the read transaction (SQLite: the write lock) early
        job.report(40, "Applying payer rules")
        wanted = {STATUS_READY, STATUS_BLOCKED} if p["all"] else {STATUS_READY}
        lines = [ln for ln in derive_claim_lines(*facts.args(), app.extensions["rulebook"])
                 if first <= ln.dos <= last and ln.status in wanted
                 and (p["payer"] is None or ln.payer_key == p["payer"])]
        job.report(70, "Writing the file")
        headers, rows = claim_csv_rows(lines, facts.patients)
        buf = io.StringIO(newline="")
        out = csv.writer(buf)
        out.writerow(headers)
        for i, row in enumerate(rows, start=1):
            out.writerow(row)
            if i % PROGRESS_EVERY == 0:
                job.report(70 + 30 * i // max(len(rows), 1), f"Writing the file ({i:,} of {len(rows):,} lines)")
        job.rows = len(rows)
        job.patients = len({ln.patient_id for ln in lines})
        job.result = buf.getvalue().encode("utf-8")


@bp.route("/exports", methods=["POST"])
@allow(*BILLING)
def export_start():
    """Start a CSV export. Form: ``from``, ``to`` (inclusive DOS), ``payer`` (rule key or empty
    for all), ``all=1`` to include blocked lines with their reasons."""
    program = current_program()
    values = request.form
    first, last = parse_range(values, local_today(program.tz))
    payer = parse_payer(values.get("payer"), _rulebook(), required=False)
    include_all = parse_flag(values.get("all") or request.args.get("all"))
    params = {"program_id": program.id, "from": first.isoformat(), "to": last.isoformat(),
              "payer": payer, "all": include_all}
    try:
        job = jobs.start(current_app._get_current_object(), user_id=current_user.id, kind="csv",
                         params=params, work=_csv_work)
    except jobs.JobLimit as exc:
        abort(429, description=str(exc))
    job.filename = (f"claim-lines-{payer or 'all-payers'}-{first.isoformat()}-{last.isoformat()}"
                    f"{'-incl-blocked' if include_all else ''}.csv")
    if is_partial_request():
        return render_template("billing/_export_job.html", job=job), 202
    return redirect(url_for(".export_status", job_id=job.id), code=303)


def _job_or_404(job_id: str) -> jobs.Job:
    job = jobs.get(current_app._get_current_object(), job_id, current_user.id)
    if job is None:
        abort(404, description="There is no export with that number for you; exports last an "
                               "hour and belong to the person who started them.")
    return job


@bp.route("/exports/<job_id>")
@allow(*BILLING)
def export_status(job_id: str):
    job = _job_or_404(job_id)
    if is_partial_request():
        return render_template("billing/_export_job.html", job=job)
    return render_template("billing/export_job.html", job=job)


@bp.route("/exports/<job_id>/download")
@allow(*BILLING)
def export_download(job_id: str):
    job = _job_or_404(job_id)
    if job.state != "done" or job.result is None:
        abort(409, description="This export is not finished yet.")
    p = job.params
    _log_disclosure(f"EXPORT claim-lines CSV payer={p['payer'] or 'all'} dos={p['from']}..{p['to']} "
                    f"{'ready+blocked' if p['all'] else 'ready only'} lines={job.rows} "
                    f"patients={job.patients} job={job.id}", "billing.export_download")
    return Response(job.result, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{job.filename}"',
                             "Cache-Control": "no-store"})


X12_CONTROL_LOCK = 0x837  # pg_advisory_xact_lock key serializing 837P control numbers


def _next_interchange_number() -> int:
    """ISA13/GS06/ST02 for the next 837P: prior 837P disclosures in the access log + 1.

    Counting the log (rather than a timestamp) gives the strictly increasing, gap-free numbers
    clearinghouses use to spot duplicate interchanges, and needs no extra table. The count and
    the new log row (``_log_disclosure`` commits) are one transaction, serialized so two
    exports cannot get the same number: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
    advisory lock on PostgreSQL (READ COMMITTED: the count after the lock sees the other
    export's committed row)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": X12_CONTROL_LOCK})
    prior = db.session.scalar(select(func.count()).select_from(AccessLogEntry).where(
        AccessLogEntry.endpoint == X12_ENDPOINT, AccessLogEntry.method == "EXPORT")) or 0
    return prior % 999_999_999 + 1


@bp.route("/837p", methods=["POST"])
@allow(*BILLING)
def x12_837p():
    """837P (005010X222A1) for ready lines of one payer, DOS ``from``..``to``. Self-pay: 422."""
    program = current_program()
    first, last = parse_range(request.form, local_today(program.tz))
    key = parse_payer(request.form.get("payer"), _rulebook(), required=True)
    payer = _rulebook().payer(key)
    if payer.kind == "self_pay":
        abort(422, description="Self-pay days are not billed to a payer, so there is no 837P "
                               "for them. Use the CSV export instead.")
    facts = load_facts(program, first, last)
    lines = [ln for ln in derive_claim_lines(*facts.args(), _rulebook())
             if first <= ln.dos <= last and ln.payer_key == key and ln.status == STATUS_READY]
    if not lines:
        abort(422, description=f"No ready lines for {payer.name} from {first:%b %-d} to "
                               f"{last:%b %-d, %Y}; there is nothing to send.")
    cfg = current_app.config
    number = _next_interchange_number()
    tz = program.tz
    try:
        text = build_837p(
            lines, facts.patients, facts.program, payer,
            Submitter(id=cfg.get("PORTAL_X12_SUBMITTER_ID") or program.billing_npi,
                      name=program.name, contact_name=current_user.name,
                      contact_phone=cfg.get("PORTAL_X12_CONTACT_PHONE", "0000000000")),
            Receiver(id=cfg.get("PORTAL_X12_RECEIVER_ID") or payer.payer_id, name=payer.name),
            ControlNumbers(interchange=number, group=number, transaction=number,
                           usage=cfg.get("PORTAL_X12_USAGE", "T")),
            now=now_utc().astimezone(tz))
    except ValueError as exc:
        abort(422, description=f"The 837P could not be built: {exc}.")
    _log_disclosure(f"EXPORT 837P payer={key} dos={first}..{last} ISA13={number:09d} "
                    f"lines={len(lines)} patients={len({ln.patient_id for ln in lines})}",
                    X12_ENDPOINT)
    filename = f"837p-{key}-{first.isoformat()}-{last.isoformat()}-{number:09d}.x12"
    return Response(text, mimetype="application/edi-x12",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})
