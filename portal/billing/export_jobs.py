"""The claim-line CSV export as a background job (portal/jobs): a year of claim lines takes
over a second to load and derive, so the exports page starts it and polls its progress."""
from __future__ import annotations

import csv
import io
from datetime import date

from flask import current_app

from portal.extensions import db
from portal.fact_loader import load_facts
from portal.jobs import JobContext, register
from portal.models import BackgroundJob, Program
from portal.rules.claim_csv import claim_csv_rows
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import STATUS_BLOCKED, STATUS_READY

CSV_KIND = "billing_csv"
#: Rows written between two progress updates of a CSV export.
PROGRESS_EVERY = 500


def csv_filename(params: dict) -> str:
    return (f"claim-lines-{params['payer'] or 'all-payers'}-{params['from']}-{params['to']}"
            f"{'-incl-blocked' if params['all'] else ''}.csv")


def describe_csv(job: BackgroundJob) -> str:
    """The access-log line of a download: what was disclosed, without any patient's name."""
    import json

    p = json.loads(job.params)
    info = json.loads(job.result_info or "{}")
    return (f"EXPORT claim-lines CSV payer={p['payer'] or 'all'} dos={p['from']}..{p['to']} "
            f"{'ready+blocked' if p['all'] else 'ready only'} lines={info.get('rows', '?')} "
            f"patients={info.get('patients', '?')}")


@register(CSV_KIND, title="Claim-line export", describe=describe_csv)
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
