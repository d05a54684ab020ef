"""``flask audit ...``: verify the archive, sign a checkpoint, print the public key, export a
patient's audit file. Thin wrappers: the work is in ``audit_archive`` and the services."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from audit_archive.checkpoint import CheckpointError
from audit_archive.verify import verify_ledger
from portal.extensions import db
from portal.services.archiving import archive_store
from portal.services.checkpoints import checkpoint_now, public_key

audit_cli = AppGroup("audit", help="Audit archive: verify, checkpoint, export.")


@audit_cli.command("verify")
@click.option("--since", "since", type=click.Path(exists=True, dir_okay=False),
              help="An older signed checkpoint file kept outside the database.")
@click.option("--skip-documents", is_flag=True, help="Check the chain only, not the stored PDFs.")
def verify_command(since, skip_documents):
    """Recompute every entry, link, stored file and checkpoint. Exit 0 when intact, 1 naming
    the first bad entry otherwise."""
    report = verify_ledger(db.session.connection(), archive_store(), public_key(),
                           Path(since).read_text() if since else None,
                           check_documents=not skip_documents)
    db.session.rollback()
    click.echo(report.summary())
    if not report.ok:
        click.echo(f"First bad entry: {report.first_bad_seq}", err=True)
        sys.exit(1)


@audit_cli.command("checkpoint")
def checkpoint_command():
    """Sign the current tree head (refuses a head inconsistent with the last signed one)."""
    try:
        signed = checkpoint_now()
    except CheckpointError as exc:
        click.echo(f"REFUSED: {exc}", err=True)
        sys.exit(1)
    click.echo(("Signed new checkpoint" if signed.created else "Head unchanged; latest checkpoint")
               + f": size {signed.size}, root {signed.root_hash}")
    click.echo(signed.note, nl=False)


@audit_cli.command("pubkey")
def pubkey_command():
    """Print the verifier key auditors use with `python -m audit_archive verify --key`."""
    click.echo(public_key())


@audit_cli.command("export")
@click.option("--patient", "mrn", required=True, help="Patient MRN.")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--recipient", default="payer auditor", show_default=True,
              help="Who receives the export (recorded in the access log as a disclosure).")
@click.argument("out", type=click.Path(dir_okay=True, file_okay=True))
def export_command(mrn, first, last, recipient, out):
    """Write a verifiable export of one patient's archived documents for a DOS range."""
    from portal.services.exports import ExportError, export_patient

    try:
        result = export_patient(mrn, first.date(), last.date(), Path(out), recipient=recipient)
    except ExportError as exc:
        click.echo(f"ERROR: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Exported {result.entries} entries ({result.documents} documents in full, "
               f"{result.withheld} withheld because they name other patients) to {result.path}")
    click.echo("Verify it anywhere with Python and `cryptography` (the export carries its verifier):")
    click.echo(f"  cd {result.path} && PYTHONPATH=verifier python3 -m audit_archive verify . "
               f"--key '{result.public_key}'")
