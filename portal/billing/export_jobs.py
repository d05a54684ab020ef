"""The claim-line CSV and the 837P file as background jobs (portal/jobs): a year of claim lines
takes over a second to load and derive, so the exports page starts a job and polls its progress."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.fact_loader import load_facts
from portal.jobs import JobContext, JobFailed, register
from portal.models import BackgroundJob, ClaimExport, Program, User
from portal.rules.claim_csv import claim_csv_rows
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import STATUS_BLOCKED, STATUS_READY
from portal.services.claim_exports import X12Settings, export_837p
from portal.services.errors import ServiceError
from portal.services.reconciliation import usd

CSV_KIND = "billing_csv"
#: Rows written between two progress updates of a CSV export.
PROGRESS_EVERY = 500


def csv_filename(params: dict) -> str:
    return (f"claim-lines-{params['payer'] or 'all-payers'}-{params['from']}-{params['to']}"
            f"{'-incl-blocked' if params['all'] else ''}.csv")


def describe_csv(job: BackgroundJob) -> str:
    """The access-log line of a download: what was disclosed, without any patient's name."""
    p = json.loads(job.params)
    info = json.loads(job.result_info or "{}")
    return (f"EXPORT claim-lines CSV payer={p['payer'] or 'all'} dos={p['from']}..{p['to']} "
            f"{'ready+blocked' if p['all'] else 'ready only'} lines={info.get('rows', '?')} "
            f"patients={info.get('patients', '?')}")


@register(CSV_KIND, title="Claim-line export", describe=describe_csv,
          back=("billing.exports", "Back to exports"))
def claim_lines_csv(ctx: JobContext) -> None:
    """Load, derive and write the CSV, reporting progress."""
    p = ctx.params
    first, last = date.fromisoformat(p["from"]), date.fromisoformat(p["to"])
    program = db.session.get(Program, p["program_id"])
    ctx.report(5, "Reading attendance records")
    facts = load_facts(program, first, last)
    db.session.rollback()  # release the read transaction (SQLite: the write lock) early
    ctx.report(40, "Applying payer rules")
    wanted = {STATUS_READY, STATUS_BLOCKED} if p["all"] else {STATUS_READY}
    lines = [ln for ln in derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                                             documentation=facts.documentation)
             if first <= ln.dos <= last and ln.status in wanted
             and (p["payer"] is None or ln.payer_key == p["payer"])]
    ctx.report(70, "Writing the file")
    headers, rows = claim_csv_rows(lines, facts.patients)
    buf = io.StringIO(newline="")
    out = csv.writer(buf)
    out.writerow(headers)
    for i, row in enumerate(rows, start=1):
        out.writerow(row)
        if i % PROGRESS_EVERY == 0:
            ctx.report(70 + 30 * i // max(len(rows), 1),
                       f"Writing the file ({i:,} of {len(rows):,} lines)")
    patients = len({ln.patient_id for ln in lines})
    ctx.save_result(buf.getvalue().encode("utf-8"), filename=csv_filename(p), mimetype="text/csv",
                    summary=(f"{len(rows)} line{'' if len(rows) == 1 else 's'} for {patients} "
                             f"patient{'' if patients == 1 else 's'}."),
                    info={"rows": len(rows), "patients": patients})


# ----------------------------------------------------------------------------------------
# 837P
# ----------------------------------------------------------------------------------------

X12_KIND = "billing_837p"


def x12_settings() -> X12Settings:
    cfg = current_app.config
    return X12Settings(submitter_id=cfg.get("PORTAL_X12_SUBMITTER_ID"),
                       receiver_id=cfg.get("PORTAL_X12_RECEIVER_ID"),
                       usage=cfg.get("PORTAL_X12_USAGE", "T"))


def describe_837p(job: BackgroundJob) -> str:
    info = json.loads(job.result_info or "{}")
    return (f"EXPORT 837P file export={info.get('export_id', '?')} "
            f"ISA13={info.get('isa13', '?')} sha256={str(info.get('sha256', ''))[:16]}")


@register(X12_KIND, title="837P claim file", describe=describe_837p,
          back=("billing.exports", "Back to exports"))
def claim_file_837p(ctx: JobContext) -> None:
    """Build, record and archive the 837P (the service writes its disclosure row); a refusal
    (nothing ready, lines already sent, self-pay) fails the job with the service's message."""
    p = ctx.params
    program = db.session.get(Program, p["program_id"])
    user = db.session.get(User, ctx.user_id)
    ctx.report(10, "Deriving ready claim lines, building and archiving the 837P")
    try:
        export = export_837p(program, p["payer"], date.fromisoformat(p["from"]),
                             date.fromisoformat(p["to"]), user=user, actor_name=user.name,
                             rulebook=current_app.extensions["rulebook"], settings=x12_settings(),
                             frequency=p["frequency"], replaces_id=p["replaces"])
    except ServiceError as exc:
        raise JobFailed(exc.message, details=exc.details) from None
    content = db.session.scalar(select(ClaimExport.content).where(ClaimExport.id == export.id))
    ctx.save_result(content, filename=export.filename, mimetype="application/edi-x12",
                    summary=(f"Export #{export.id}: {export.claims} claim"
                             f"{'' if export.claims == 1 else 's'}, {export.lines} line"
                             f"{'' if export.lines == 1 else 's'}, {usd(export.total_cents)}, "
                             f"ISA13 {export.interchange:09d}. It is listed on the exports page."),
                    info={"export_id": export.id, "isa13": f"{export.interchange:09d}",
                          "sha256": export.sha256})
