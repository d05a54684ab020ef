"""``flask audit ...``: verify the archive, sign a checkpoint, print the public key, export a
patient's audit file. Thin wrappers: the work is in ``audit_archive`` and the services."""
from __future__ import annotations

import os
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
from audit_archive.schema import audit_checkpoints
from audit_archive.verify import verify_ledger
from sqlalchemy import func, select
from portal.archive_binding import (addenda_missing_rows, addendum_entries,
                                    closed_roster_differences)
from portal.clock import now_utc
from portal.extensions import db
from portal.wording import count_noun
from portal.services.witnesses import check_cosignatures
from portal.services.archive_index import check_index
from portal.services.archiving import archive_store
from portal.services.checkpoints import (SigningKeyMissing, checkpoint_now, existing_public_key,
                                         late_archive_limit, newest_checkpoint_time, public_key)

audit_cli = AppGroup("audit", help="Audit archive: verify, checkpoint, export.")


def _described(d) -> str:
    return d.what if d.patient_id is None else f"patient id {d.patient_id}: {d.what}"


_plural = count_noun


def _fail(message: str, prefix: str = "ERROR") -> NoReturn:
    click.echo(f"{prefix}: {message}", err=True)
    sys.exit(1)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the OS refuses (too long, NUL bytes...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _key_option(value: str) -> str:
    """``--key``: verifier key text, or the path of a file holding it."""
    text = value.strip()
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # "~user" naming no one: then it is not a file either
        path = Path(value)
    if _is_file(path):
        try:
            text = path.read_bytes().decode("utf-8").strip()
        except UnicodeDecodeError:
            _fail(f"--key: {path} is not a text file (not UTF-8); pass the verifier key "
                  f"(name+keyid+base64) or a file holding it")
        except OSError as exc:
            _fail(f"--key: cannot read {path}: {exc.strerror or exc}")
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
    files in PORTAL_CHECKPOINT_DIR), and check the portal's index of archived documents and
    patient lines against the entries. Exit 0 when intact, 1 (naming the first bad entry, and
    each index row that disagrees) otherwise."""
    if key:
        key_text = _key_option(key)
    else:
        try:
            key_text = existing_public_key()  # never creates a key: verification is read-only
        except SigningKeyMissing as exc:
            click.echo(f"WARNING: {exc}. Checkpoint signatures are NOT checked; pass "
                       f"--key with the verifier key auditors hold to check them.", err=True)
            key_text = None
    since_text = None
    if since:
        try:
            since_text = Path(since).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            _fail(f"--since: {since} is not a checkpoint file (not UTF-8 text); pass the signed "
                  f"checkpoint text you kept (checkpoint-N.txt)")
        except OSError as exc:
            _fail(f"--since: cannot read {since}: {exc.strerror or exc}")
    try:
        late_after = late_archive_limit()
    except ValueError as exc:
        _fail(str(exc))
    try:
        warn_hours = float(current_app.config.get("PORTAL_UNCOSIGNED_WARN_HOURS") or 24)
    except ValueError:
        _fail(f"PORTAL_UNCOSIGNED_WARN_HOURS must be a number of hours, got "
              f"{current_app.config.get('PORTAL_UNCOSIGNED_WARN_HOURS')!r}")
    conn = db.session.connection()
    newest_size = conn.execute(select(func.max(audit_checkpoints.c.tree_size))).scalar()
    cosigs = check_cosignatures(conn, newest_size if isinstance(newest_size, int) else None,
                                warn_hours, now_utc())
    report = verify_ledger(conn, archive_store(), key_text, since_text,
                           check_documents=not skip_documents,
                           checkpoint_dir=current_app.config["PORTAL_CHECKPOINT_DIR"],
                           late_after=late_after, extra_heads=cosigs.heads)
    for problem in cosigs.failures:
        report.fail(f"witnesses: {problem}")
    report.warnings.extend(f"witnesses: {w}" for w in cosigs.warnings)
    newest = newest_checkpoint_time(conn, report.newest_checkpoint_size)
    if newest:
        report.extra_summary.append(f"signed {newest}")
    if cosigs.newest_line and report.newest_checkpoint_size == newest_size:
        report.extra_summary.append(cosigs.newest_line)
    # The portal's own index must agree with the entries it names (downloads rely on it).
    for problem in check_index(conn):
        report.fail(f"portal index: {problem}")
    # Billing reads the rosters' rows: each closed roster must still say what its entry says.
    for roster in closed_roster_differences():
        report.fail(f"closed roster {roster.title} (session {roster.session_id}): record differs "
                    f"from archive entry #{roster.seq}: "
                    + "; ".join(_described(d) for d in roster.differences))
    # Billing applies the latest addendum: an archived addendum whose row is gone (or moved to
    # another patient or original) would let the facts it corrected be billed again.
    for missing in addenda_missing_rows(addendum_entries()):
        report.fail(f"addendum {missing.position or '?'} to entry #{missing.original_seq} "
                    f"(patient id {missing.patient_id}): record differs from archive entry "
                    f"#{missing.seq}: no addendum row in the database stands for it")
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

    from portal.input_dates import DATE_MAX, DATE_MIN

    for label, value in (("--from", first), ("--to", last)):
        if not DATE_MIN <= value.date() <= DATE_MAX:
            _fail(f"{label} {value.date()} is outside {DATE_MIN.year}-{DATE_MAX.year}; check the year.")
    out = Path(out)
    _check_out(out)
    try:
        result = export_patient(mrn, first.date(), last.date(), out, recipient=recipient)
    except CheckpointError as exc:
        _fail(f"cannot sign a checkpoint to export against: {exc}. Run `flask --app portal "
              f"audit verify`.")
    except (ExportError, SigningKeyMissing, FileNotFoundError) as exc:  # the portal's ExportError is one too
        _fail(str(exc))
    except OSError as exc:  # e.g. OUT became unwritable meanwhile
        _fail(f"cannot write the export to {out}: {exc.strerror or exc}")
    click.echo(f"Exported {_plural(result.entries, 'entry', 'entries')} "
               f"({_plural(result.documents, 'document')} in full, {result.withheld} withheld "
               f"because {'it names' if result.withheld == 1 else 'they name'} other patients) "
               f"to {result.path}")
    from portal.services.witnesses import WitnessConfigError, configured

    try:
        witness_keys = tuple(w.key.text() for w in configured()[0])
    except WitnessConfigError:
        witness_keys = ()
    for line in verify_hint(result.path, result.public_key, witness_keys):
        click.echo(line)


def _check_out(out: Path) -> None:
    """Refuse an OUT that exists or cannot be created (a name too long, a parent that is a
    file), before anything is signed or logged."""
    try:
        os.lstat(out)
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        parent = next((p for p in out.parents if os.path.lexists(p) and not p.is_dir()), out.parent)
        _fail(f"cannot write {out}: {parent} is not a directory (nothing was written)")
    except (OSError, ValueError) as exc:
        _fail(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc} (nothing was written)")
    else:
        _fail(f"{out} already exists; choose a new directory or .zip name (nothing was written)")
    limit = _name_max(out)
    for part in out.parts:
        if len(os.fsencode(part)) > limit:
            _fail(f"cannot write {out}: the name {part[:40]}... is longer than the {limit} bytes "
                  f"a file name may have here (nothing was written)")


def _name_max(out: Path) -> int:
    """The longest file name (bytes) the file system holding ``out`` accepts (255 if unknown)."""
    for p in (out.parent, *out.parent.parents):
        try:
            return os.pathconf(p, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue  # not there (yet): ask its parent
    return 255


def verify_hint(path: Path, public_key: str, witness_keys: tuple[str, ...] = ()) -> list[str]:
    """How to run the verifier an export carries, from OUTSIDE the export: ``-P`` keeps the
    current directory off ``sys.path`` (``python -m`` puts it first, so a ``json.py`` planted
    in an export would otherwise be imported), and the verifier comes from PYTHONPATH.
    Absolute paths, so the command works from any directory."""
    path = Path(os.path.abspath(path))
    verifier = path / "verifier"  # for a .zip too: Python imports from inside it unopened
    key = f"'{public_key}'" if "'" not in public_key else shlex.quote(public_key)
    command = (f"PYTHONPATH={shlex.quote(str(verifier))} python3 -P -m audit_archive verify "
               f"{shlex.quote(str(path))} --key {key}"
               + "".join(f" --witness-key {shlex.quote(k)}" for k in witness_keys))
    return [
        "Verify it anywhere with Python 3.11+ and `cryptography` (the export carries its verifier),",
        "from a directory outside the export:",
        f"  {command}",
        "(Python 3.10 has no -P: drop it, and run from a directory outside the export that holds "
        "no .py files.)",
    ]


@audit_cli.command("file")
@click.option("--patient", "mrn", required=True, help="Patient MRN.")
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--recipient", prompt="Recipient (who receives the audit file)",
              help="Who receives the audit file (recorded as a disclosure).")
@click.option("--purpose", prompt="Purpose of the disclosure", help="Why it is disclosed.")
@click.option("--legal-basis", "legal_basis", prompt="Legal basis (consent_2_31, audit_2_53, or text)",
              help="consent_2_31 (written consent, 42 CFR 2.31), audit_2_53 (audit and "
                   "evaluation, 42 CFR 2.53), or the basis in words.")
@click.option("--consent-scope", "consent_scope", default="",
              help="The consent's text or scope, printed in the binder.")
@click.option("--out-dir", "out_dir", default=".", show_default=True,
              type=click.Path(file_okay=False), help="Folder the audit file (.zip) is written to.")
def file_command(mrn, first, last, recipient, purpose, legal_basis, consent_scope, out_dir):
    """Write a patient's audit file (PDF binder + verifiable manifest, one zip) for a DOS range
    and record it in the patient's accounting of disclosures."""
    from portal.audit_files.service import build_audit_file
    from portal.input_dates import DATE_MAX, DATE_MIN

    for label, value in (("--from", first), ("--to", last)):
        if not DATE_MIN <= value.date() <= DATE_MAX:
            _fail(f"{label} {value.date()} is outside {DATE_MIN.year}-{DATE_MAX.year}; check the year.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        _fail(f"--out-dir {out} is not a directory (nothing was written)")

    def report(pct, stage):
        click.echo(f"[{pct:3d}%] {stage}", err=True)

    try:
        result = build_audit_file(patient=mrn, first=first.date(), last=last.date(), requester=None,
                                  recipient=recipient, purpose=purpose, legal_basis=legal_basis,
                                  consent_scope=consent_scope, out_dir=out, report=report)
    except CheckpointError as exc:
        _fail(f"cannot sign a checkpoint to export against: {exc}. Run `flask --app portal "
              f"audit verify`.")
    except (ExportError, SigningKeyMissing, FileNotFoundError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the audit file to {out}: {exc.strerror or exc}")
    click.echo(f"Wrote {result.path}: {_plural(result.entries, 'entry', 'entries')} "
               f"({_plural(result.whole, 'document')} in full, "
               f"{_plural(result.extracts, 'extract')} of group documents), "
               f"{_plural(result.pages, 'page')} in audit-file.pdf; recorded as disclosure "
               f"#{result.disclosure_id}.")
    for line in verify_hint(result.path, result.public_key, result.witness_keys):
        click.echo(line)
