"""``flask audit ...``: verify the archive, sign a checkpoint, print the public key, export a
patient's audit file. Thin wrappers: the work is in ``audit_archive`` and the services."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

from audit_archive.checkpoint import CheckpointError
from audit_archive.export import ExportError
from audit_archive.note import NoteError, parse_verifier
from audit_archive.verify import verify_ledger
from portal.extensions import db
from portal.services.archiving import archive_store
from portal.services.checkpoints import (SigningKeyMissing, checkpoint_now, existing_public_key,
                                         public_key)

audit_cli = AppGroup("audit", help="Audit archive: verify, checkpoint, export.")


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def _fail(message: str, prefix: str = "ERROR") -> NoReturn:
    click.echo(f"{prefix}: {message}", err=True)
    sys.exit(1)


def _key_option(value: str) -> str:
    """``--key``: verifier key text, or the path of a file holding it."""
    text = value.strip()
    path = Path(value).expanduser()
    if path.is_file():
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"--key: cannot read {path}: {exc}")
    try:
        parse_verifier(text)
    except (NoteError, ValueError) as exc:
        _fail(f"--key: not a verifier key (name+keyid+base64) nor a file holding one: {exc}")
    return text


@audit_cli.command("verify")
@click.option("--since", "since", type=click.Path(exists=True, dir_okay=False),
              help="An older signed checkpoint file kept outside the database.")
@click.option("--key", "key", metavar="KEY_OR_FILE",
              help="Verifier key (name+keyid+base64, as `audit pubkey` prints it) or a file "
                   "holding it: check signatures against a key held independently of this "
                   "server instead of the one derived from its signing key file.")
@click.option("--skip-documents", is_flag=True, help="Check the chain only, not the stored PDFs.")
def verify_command(since, key, skip_documents):
    """Recompute every entry, link, stored file and checkpoint (the table's and the signed
    files in PORTAL_CHECKPOINT_DIR). Exit 0 when intact, 1 naming the first bad entry otherwise."""
    if key:
        key_text = _key_option(key)
    else:
        try:
            key_text = existing_public_key()  # never creates a key: verification is read-only
        except SigningKeyMissing as exc:
            click.echo(f"WARNING: {exc}. Checkpoint signatures are NOT checked; pass "
                       f"--key with the verifier key auditors hold to check them.", err=True)
            key_text = None
    report = verify_ledger(db.session.connection(), archive_store(), key_text,
                           Path(since).read_text() if since else None,
                           check_documents=not skip_documents,
                           checkpoint_dir=current_app.config["PORTAL_CHECKPOINT_DIR"])
    db.session.rollback()
    click.echo(report.summary())
    if not report.ok:
        if report.first_bad_seq is not None:
            click.echo(f"First bad entry: {report.first_bad_seq}", err=True)
        sys.exit(1)


@audit_cli.command("checkpoint")
def checkpoint_command():
    """Sign the current tree head (refuses a head inconsistent with the last signed one)."""
    try:
        signed = checkpoint_now()
    except CheckpointError as exc:
        _fail(str(exc), "REFUSED")
    except SigningKeyMissing as exc:
        _fail(str(exc))
    click.echo(("Signed new checkpoint" if signed.created else "Head unchanged; latest checkpoint")
               + f": size {signed.size}, root {signed.root_hash}")
    click.echo(signed.note, nl=False)


@audit_cli.command("pubkey")
def pubkey_command():
    """Print the verifier key auditors use with `python -m audit_archive verify --key`."""
    try:
        key = public_key()
    except SigningKeyMissing as exc:
        _fail(str(exc))
    click.echo(key)


@audit_cli.command("export")
@click.option("--patient", "mrn", required=True, help="Patient MRN.")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--recipient", default="payer auditor", show_default=True,
              help="Who receives the export (recorded in the access log as a disclosure).")
@click.argument("out", type=click.Path(dir_okay=True, file_okay=True))
def export_command(mrn, first, last, recipient, out):
    """Write a verifiable export of one patient's archived documents for a DOS range to OUT
    (a new directory, or a .zip file); OUT must not exist yet."""
    from portal.services.exports import export_patient

    out = Path(out)
    if out.exists() or out.is_symlink():
        _fail(f"{out} already exists; choose a new directory or .zip name (nothing was written)")
    try:
        result = export_patient(mrn, first.date(), last.date(), out, recipient=recipient)
    except CheckpointError as exc:
        _fail(f"cannot sign a checkpoint to export against: {exc}. Run `flask --app portal "
              f"audit verify`.")
    except (ExportError, SigningKeyMissing, FileNotFoundError) as exc:  # the portal's ExportError is one too
        _fail(str(exc))
    click.echo(f"Exported {_plural(result.entries, 'entry', 'entries')} "
               f"({_plural(result.documents, 'document')} in full, {result.withheld} withheld "
               f"because {'it names' if result.withheld == 1 else 'they name'} other patients) "
               f"to {result.path}")
    click.echo("Verify it anywhere with Python and `cryptography` (the export carries its verifier):")
    key = f"--key '{result.public_key}'"
    if result.path.suffix == ".zip":  # as the export's README.txt says: the zip works unopened
        click.echo(f"  PYTHONPATH={shlex.quote(str(result.path / 'verifier'))} python3 -m "
                   f"audit_archive verify {shlex.quote(str(result.path))} {key}")
    else:
        click.echo(f"  cd {shlex.quote(str(result.path))} && PYTHONPATH=verifier python3 -m "
                   f"audit_archive verify . {key}")
