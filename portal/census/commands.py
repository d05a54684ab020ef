"""``flask census import FILE.csv [--commit]``: the census import from a terminal."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.census.importer import CensusSetupError, ImportReport, RowPlan, import_census

census_cli = AppGroup("census", help="Import the EHR census export.")


@census_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--commit", is_flag=True,
              help="Write the import. Without it, only show what would be written.")
def import_command(file, commit: bool) -> None:
    """Import FILE (an EHR census export in CSV).

    Prints what would be created or updated, and every faulty row with its line, column and
    reason. Exits 1 when there is any error; then nothing is written, even with --commit.
    """
    data = file.read()
    try:
        report = import_census(data, commit=commit)
    except CensusSetupError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in format_report(report, commit=commit):
        click.echo(line)
    if not report.ok:
        click.echo(f"{len(report.errors)} error(s); nothing was written.", err=True)
        for error in report.errors:
            click.echo(f"  {error}", err=True)
        raise SystemExit(1)


def format_report(report: ImportReport, *, commit: bool) -> list[str]:
    """Plain-text lines for a terminal: heading, counts, one line per row, notes."""
    if report.committed:
        head = "Census import written."
    elif commit:
        head = "Census import NOT written (see errors below)."
    else:
        head = "DRY RUN: nothing written (add --commit to write)."
    counts = report.counts
    lines = [
        head,
        "Patients: {new} new, {unchanged} unchanged, {updated} updated".format_map(_z(counts["patients"])),
        "Enrollments: {new} new, {unchanged} unchanged, {updated} updated".format_map(_z(counts["enrollments"])),
        "Authorizations: {new} new, {unchanged} unchanged".format_map(_z(counts["authorizations"])),
    ]
    lines.extend(_row_line(plan) for plan in report.rows)
    lines.extend(f"line {note.line}: {note.reason}" for note in report.notes)
    return lines


def _z(counter) -> dict[str, int]:
    return {k: counter.get(k, 0) for k in ("new", "unchanged", "updated")}


def _row_line(plan: RowPlan) -> str:
    row = plan.row
    parts = [f"patient {plan.patient}"]
    if plan.patient_changes:
        parts[-1] += " (" + "; ".join(plan.patient_changes) + ")"
    parts.append(f"enrollment {row.group} {plan.enrollment}")
    if plan.enrollment_changes:
        parts[-1] += " (" + "; ".join(plan.enrollment_changes) + ")"
    if plan.authorization:
        parts.append(f"authorization {row.auth.number} {plan.authorization}")
    return f"line {row.line:<3} MRN {row.mrn}  {row.last_name}, {row.first_name}: " + "; ".join(parts)


@census_cli.command("purge-uploads")
@click.option("--older-than", "minutes", type=click.IntRange(min=0), default=60, show_default=True,
              help="Delete previewed census files older than this many minutes.")
def purge_uploads_command(minutes: int) -> None:
    """Delete previewed census uploads (they hold PHI) that were never committed. Run it from
    cron; the portal also purges them itself and at sign-out."""
    from pathlib import Path

    from flask import current_app

    from portal.census.views import purge_stale_uploads

    folder = Path(current_app.instance_path) / "census_uploads"
    gone = purge_stale_uploads(folder, minutes * 60) if folder.is_dir() else 0
    click.echo(f"Deleted {gone} previewed census file{'s' if gone != 1 else ''}.")
