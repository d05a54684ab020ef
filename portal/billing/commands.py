"""``flask --app portal billing 837p``: the same 837P the billing page builds, from the shell."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db
from portal.models import Program, User
from portal.services.claim_exports import X12Settings, export_837p
from portal.services.errors import ServiceError

billing_cli = AppGroup("billing", help="Claim files.")


@billing_cli.command("837p")
@click.option("--payer", "payer_key", required=True, help="Payer rule key, e.g. sunrise_medicaid_mco.")
@click.option("--from", "first", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="First date of service (program-local).")
@click.option("--to", "last", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Last date of service (program-local).")
@click.option("--frequency", type=click.Choice(["1", "7", "8"]), default="1", show_default=True,
              help="1 original, 7 replacement, 8 void (7/8 need --replaces).")
@click.option("--replaces", type=int, default=None, help="The export number a 7 or 8 corrects.")
@click.option("--user", "email", default=None, help="Billing user's e-mail recorded as the exporter.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def x12_837p(payer_key, first, last, frequency, replaces, email, out: Path):
    """Build the 837P for PAYER's ready lines from --from to --to into OUT (never overwrites),
    record it in the export history and archive it, then print a summary."""
    rulebook = current_app.extensions["rulebook"]
    if payer_key not in rulebook.payers:
        raise click.UsageError(f"There is no payer {payer_key!r}; choose one of "
                               f"{', '.join(sorted(rulebook.payers))}.")
    first, last = first.date(), last.date()
    if first > last:
        raise click.UsageError("--to is before --from.")
    if out.exists():
        raise click.UsageError(f"{out} exists; choose a new file name (exports never overwrite).")
    if frequency != "1" and replaces is None:
        raise click.UsageError("--frequency 7 or 8 needs --replaces EXPORT_NUMBER.")
    program = db.session.scalar(select(Program).order_by(Program.id).limit(1))
    if program is None:
        raise click.ClickException("No program is set up.")
    user = None
    if email:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None or user.role not in ("billing", "admin"):
            raise click.UsageError(f"{email} is not a billing or admin user.")
    cfg = current_app.config
    try:
        export = export_837p(
            program, payer_key, first, last, user=user,
            actor_name=user.name if user else "command line", rulebook=rulebook,
            settings=X12Settings(cfg.get("PORTAL_X12_SUBMITTER_ID"), cfg.get("PORTAL_X12_RECEIVER_ID"),
                                 cfg.get("PORTAL_X12_USAGE", "T")),
            frequency=frequency, replaces_id=replaces)
    except ServiceError as exc:
        db.session.rollback()
        detail = "".join(f"\n  {d}" for d in exc.details)
        raise click.ClickException(exc.message + detail) from None
    content = export.content
    with open(out, "xb") as fh:
        fh.write(content)
    click.echo(f"Wrote {out} ({len(content)} bytes, SHA-256 {export.sha256})")
    click.echo(f"Export #{export.id}: {export.claims} claims, {export.lines} lines, total "
               f"${export.total_cents / 100:,.2f}")
    click.echo(f"Control numbers: ISA13 {export.interchange:09d}, GS06 {export.group_number}, "
               f"ST02 {export.transaction_number:04d}")
