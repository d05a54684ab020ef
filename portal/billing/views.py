"""Billing pages (billing and admin roles only; auditors and floor staff get 403).

- ``GET  /billing/``                      the daily reconciliation board (``billing.board``);
                                          htmx filter requests get the ``_board.html`` partial.
- ``POST /billing/days/<date>/reconcile`` mark the day reconciled (archived, chained PDF).
- ``GET  /billing/rules``                 payer rule versions (read-only).
- ``GET  /billing/exports``               the export forms.
- ``POST /billing/exports``               start a claim-line CSV export job (portal/jobs;
                                          progress and download at ``jobs.progress``/``download``).
- ``POST /billing/837p``                  X12 837P for one payer's ready lines (a disclosure),
                                          or a replacement/void of an earlier export: checks
                                          the form, then a background job builds it (303 to
                                          its progress page, ``jobs.progress``).
- ``GET  /billing/837p/<id>``             one export: control numbers, SHA-256, claims, 999.
- ``GET  /billing/837p/<id>/download``    the file again, byte for byte.
- ``POST /billing/837p/<id>/999``         import a 999 acknowledgment for it.

Views parse input, call the service or the pure rules, and pick page or partial.
"""
from __future__ import annotations

import json
from datetime import date

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from sqlalchemy import select

from portal.access_control import allow
from portal.billing.export_jobs import CSV_KIND, X12_KIND
from portal.billing.inputs import parse_day, parse_flag, parse_payer, parse_range
from portal.billing.trend import HEIGHT, WIDTH, bars
from portal.clock import fmt_local, local_today
from portal.errors import is_partial_request
from portal.extensions import db
from portal.jobs import JobLimit, progress_partial, start as start_job
from portal.input_dates import DateInputError, read_date, read_whole_number
from portal.models import AccessLogEntry, Cohort, Program
from portal.no_shows.facts import day_counts
from portal.program import current_program
from portal.rules.admin_view import rulebook_view
from portal.billing.inputs import MAX_RANGE_DAYS
from portal.models import ClaimExport
from portal.rules.x12_837p import FREQUENCIES
from portal.services.claim_exports import (ACK_LABELS, X12_ENDPOINT,  # noqa: F401  (tests)
                                           exports_of, import_999,
                                           next_interchange_number as _next_interchange_number)
from portal.services.errors import ServiceError
from portal.services.reconciliation import board_totals, build_day, reconcile_day, usd

bp = Blueprint("billing", __name__, url_prefix="/billing")

BILLING = ("billing", "admin")


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
    shown = board_totals(lines)  # the same totals a reconciliation archives (unfiltered)
    ctx = dict(
        board=board, sessions=sessions, lines=lines, filters=f,
        payers=sorted(_rulebook().payers.values(), key=lambda p: p.name.casefold()),
        at_risk_cents=shown.at_risk_cents, ready_cents=shown.ready_cents,
        blocked_count=shown.blocked, addendum_count=shown.addendum,
        upcoming_count=shown.upcoming, ready_count=shown.ready,
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
    try:
        supersedes = read_whole_number(raw) if raw else None
    except ValueError:
        abort(400, description="The earlier reconciliation's entry number must be a number.")
    try:
        reconcile_day(program, d, current_user._get_current_object(), _rulebook(),
                      supersedes_seq=supersedes)
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
    return _exports_page()


def _payer_choices():
    return sorted(_rulebook().payers.values(), key=lambda p: p.name.casefold())


@bp.route("/exports", methods=["POST"])
@allow(*BILLING)
def export_start():
    """Start a CSV export. Form: ``from``, ``to`` (inclusive DOS), ``payer`` (rule key or empty
    for all), ``all=1`` to include blocked lines with their reasons."""
    program = current_program()
    values = request.form
    first, last = parse_range(values, local_today(program.tz), required=True)
    payer = parse_payer(values.get("payer"), _rulebook(), required=False)
    include_all = parse_flag(values.get("all") or request.args.get("all"))
    params = {"program_id": program.id, "from": first.isoformat(), "to": last.isoformat(),
              "payer": payer, "all": include_all}
    try:
        job = start_job(CSV_KIND, user_id=current_user.id, params=params)
    except JobLimit as exc:
        abort(429, description=str(exc))
    if is_partial_request():
        return progress_partial(job), 202
    return redirect(url_for("jobs.progress", job_id=job.id), code=303)


def _exports_page(status: int = 200, *, values=None, errors=None, error_details=None):
    """The exports page; after a refused 837P it keeps what was typed and shows the errors
    beside their fields (``errors``: field -> message)."""
    program = current_program()
    today = local_today(program.tz)
    values = values or {}
    payers = _payer_choices()
    return render_template(
        "billing/exports.html", payers=payers, payer_names={p.key: p.name for p in payers},
        first=today.replace(day=1), last=today,
        x12_values=values, x12_errors=errors or {}, x12_details=error_details or [],
        history=exports_of(program), ack_labels=ACK_LABELS, fmt_local=fmt_local,
        tz=program.tz), status


def _range_or_errors(values, program) -> tuple[date | None, date | None, dict]:
    errors: dict[str, str] = {}
    parsed = {}
    for key, label in (("from", "start date"), ("to", "end date")):
        raw = (values.get(key) or "").strip()
        if not raw:
            errors[key] = f"Enter the {label}."
            continue
        try:
            parsed[key] = read_date(raw, label)
        except DateInputError as exc:
            errors[key] = str(exc)
    first, last = parsed.get("from"), parsed.get("to")
    if first and last and first > last:
        errors["to"] = f"The start date {first:%b %-d, %Y} is after the end date {last:%b %-d, %Y}."
    elif first and last and (last - first).days >= MAX_RANGE_DAYS:
        errors["to"] = "Choose a range of at most one year."
    return first, last, errors


@bp.route("/837p", methods=["POST"])
@allow(*BILLING)
def x12_837p():
    """837P (005010X222A1) for ready lines of one payer, DOS ``from``..``to``; with
    ``frequency`` 7 or 8 and ``replaces`` (an export id) a replacement or void of that export.
    Errors in the form re-render it with the values typed and the message beside its field;
    a good form starts the job (portal.billing.export_jobs) and redirects to its progress page,
    where a refusal (nothing ready, lines already sent) is shown with its details."""
    program = current_program()
    values = request.form
    first, last, errors = _range_or_errors(values, program)
    key = (values.get("payer") or "").strip()
    if not key:
        errors["payer"] = "Choose a payer: an 837P file goes to one payer."
    elif key not in _rulebook().payers:
        errors["payer"] = f"There is no payer \u201c{key[:60]}\u201d in the payer rules."
    frequency = (values.get("frequency") or "1").strip()
    replaces = (values.get("replaces") or "").strip()
    if frequency not in FREQUENCIES:
        errors["frequency"] = "Choose original (1), replacement (7) or void (8)."
    elif frequency != "1" and not replaces.isdigit():
        errors["replaces"] = "A replacement or void names the export number it corrects."
    if errors:
        return _exports_page(400, values=values, errors=errors)
    params = {"program_id": program.id, "payer": key, "from": first.isoformat(),
              "to": last.isoformat(), "frequency": frequency,
              "replaces": int(replaces) if frequency != "1" else None}
    try:
        job = start_job(X12_KIND, user_id=current_user.id, params=params)
    except JobLimit as exc:
        return _exports_page(429, values=values, errors={"form": str(exc)})
    return redirect(url_for("jobs.progress", job_id=job.id), code=303)


def _send_export(export: ClaimExport) -> Response:
    content = db.session.scalar(select(ClaimExport.content).where(ClaimExport.id == export.id))
    return Response(content, mimetype="application/edi-x12",
                    headers={"Content-Disposition": f'attachment; filename="{export.filename}"',
                             "Cache-Control": "no-store"})


def _export_or_404(export_id: int) -> ClaimExport:
    export = db.session.get(ClaimExport, export_id)
    if export is None or export.program_id != current_program().id:
        abort(404, description=f"There is no 837P export #{export_id}.")
    return export


@bp.route("/837p/<int:export_id>")
@allow(*BILLING)
def x12_export(export_id: int):
    """One export: control numbers, SHA-256, its chain entry, claims and 999 result."""
    export = _export_or_404(export_id)
    return _export_page(export)


def _export_page(export: ClaimExport, status: int = 200, error: str | None = None):
    program = current_program()
    detail = json.loads(export.ack_detail) if export.ack_detail else None
    claims: dict[str, list] = {}
    for ln in export.export_lines:
        claims.setdefault(ln.claim_ref, []).append(ln)
    return render_template("billing/x12_export.html", export=export, claims=claims,
                           payer=_rulebook().payers.get(export.payer_key), ack=detail,
                           ack_labels=ACK_LABELS, error=error, fmt_local=fmt_local,
                           tz=program.tz), status


@bp.route("/837p/<int:export_id>/download")
@allow(*BILLING)
def x12_download(export_id: int):
    """The file byte for byte as it was sent (a disclosure: one access-log row)."""
    export = _export_or_404(export_id)
    _log_disclosure(f"EXPORT 837P again export={export.id} ISA13={export.interchange:09d} "
                    f"sha256={export.sha256[:16]}", "billing.x12_download")
    return _send_export(export)


@bp.route("/837p/<int:export_id>/999", methods=["POST"])
@allow(*BILLING)
def x12_ack(export_id: int):
    """Import the payer's or clearinghouse's 999 for this export (form file ``file``)."""
    export = _export_or_404(export_id)
    upload = request.files.get("file")
    raw = upload.read(2_000_001) if upload else b""
    if not raw:
        return _export_page(export, 400, "Choose the 999 file to import.")
    if len(raw) > 2_000_000:
        return _export_page(export, 400, "That file is over 2 MB; a 999 is much smaller.")
    try:
        import_999(export.id, raw.decode("ascii"))
    except UnicodeDecodeError:
        return _export_page(export, 400, "That file is not X12 text (it holds non-ASCII bytes).")
    except ServiceError as exc:
        db.session.rollback()
        return _export_page(db.session.get(ClaimExport, export_id), exc.status, exc.message)
    return redirect(url_for(".x12_export", export_id=export.id), code=303)
