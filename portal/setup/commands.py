"""`flask --app portal setup ...`: first run, the clinic file, one-time links from the shell."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app, url_for
from flask.cli import AppGroup
from sqlalchemy import func, select

setup_cli = AppGroup("setup", help="Set up a clinic: first program and admin, the clinic file.")


def _fail(message: str, details: list[str] | None = None) -> None:
    click.echo(f"Error: {message}", err=True)
    for line in details or []:
        if line != message:
            click.echo(f"  {line}", err=True)
    sys.exit(1)


@setup_cli.command("init")
@click.option("--program-name", help="The program's legal name.")
@click.option("--billing-npi", help="The program's billing NPI (10 digits).")
@click.option("--time-zone", help="IANA time zone, e.g. America/Chicago.")
@click.option("--admin-name", help="The first admin's full name.")
@click.option("--admin-email", help="The first admin's email (their sign-in).")
def setup_init(program_name, billing_npi, time_zone, admin_name, admin_email):
    """Create the program and the first admin (prompts for what no flag gives).

    The admin's password is always typed, twice, and never echoed; there is no flag for it.
    Refuses when a program already exists."""
    from portal.extensions import db
    from portal.models import Program
    from portal.services.clinic_setup import init_program
    from portal.services.errors import ServiceError

    if db.session.scalar(select(Program).limit(1)) is not None:
        _fail("a program already exists; change it with `flask --app portal setup apply "
              "FILE.yaml` or on the admin page Program settings. Nothing was written.")
    program_name = program_name or click.prompt("Program legal name")
    billing_npi = billing_npi or click.prompt("Billing NPI (10 digits)")
    time_zone = time_zone or click.prompt("Time zone (IANA)", default="America/Chicago")
    admin_name = admin_name or click.prompt("First admin's name")
    admin_email = admin_email or click.prompt("First admin's email")
    click.echo("The admin's password: at least 12 characters; a few unrelated words work well.")
    password = click.prompt("Password", hide_input=True)
    again = click.prompt("Password again", hide_input=True)
    try:
        program, admin = init_program(name=program_name, billing_npi=billing_npi,
                                      time_zone=time_zone, admin_name=admin_name,
                                      admin_email=admin_email, password=password, again=again)
    except ServiceError as exc:
        _fail(exc.message + " Nothing was written.", exc.details)
    click.echo(f"Created the program {program.name} and the admin {admin.email}.")
    click.echo("Next: describe staff, cohorts and payers in a clinic file (docs/setup.md) and "
               "run `flask --app portal setup apply FILE.yaml`.")


@setup_cli.command("apply")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the changes without writing them.")
def setup_apply(path, dry_run):
    """Make the database match the clinic file at PATH (see docs/setup.md)."""
    from portal.rules.clinic_file import MAX_BYTES, ClinicFileError, read_clinic_file
    from portal.services.clinic_setup import apply_clinic, checks_for
    from portal.services.errors import ServiceError

    file = Path(path)
    try:
        if file.stat().st_size > MAX_BYTES:
            _fail(f"{path}:1: file: over the 1 MB limit for a clinic file. Nothing was written.")
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"{path}: cannot read ({exc.strerror}). Nothing was written.")
    rulebook = current_app.extensions["rulebook"]
    try:
        spec = read_clinic_file(data, path, checks_for(rulebook))
        result = apply_clinic(spec, rulebook, dry_run=dry_run)
    except ClinicFileError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        _fail(f"{len(exc.problems)} problem(s) in {path}. Nothing was written.")
    except ServiceError as exc:
        _fail(f"{path}: {exc.message}. Nothing was written.")
    for line in result.warnings:
        click.echo(line)
    if not result.changes:
        click.echo(f"No changes: the database already matches {path}.")
        return
    for line in result.changes:
        click.echo(line)
    if dry_run:
        click.echo(f"Dry run: {len(result.changes)} change(s) above were NOT written. Run without "
                   "--dry-run to apply them.")
    else:
        click.echo(f"Applied {len(result.changes)} change(s) from {path}.")


@setup_cli.command("invite")
@click.argument("email")
def setup_invite(email):
    """Print a one-time set-password link (24 hours) for the staff member EMAIL."""
    from portal.extensions import db
    from portal.models import User
    from portal.services.accounts import create_link
    from portal.services.errors import ServiceError

    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        _fail(f"no staff member has the email {email}. Nothing was written.")
    try:
        token = create_link(user, purpose="invite", by="setup invite (command line)")
    except ServiceError as exc:
        _fail(exc.message)
    base = current_app.config.get("PORTAL_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    with current_app.test_request_context(base_url=base):
        link = url_for("accounts.set_password", token=token, _external=True)
    click.echo(f"One-time link for {user.name} <{user.email}> (valid 24 hours, works once):")
    click.echo(link)
