"""Flask CLI commands: demo data, census import, audit archive operations."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

demo_cli = AppGroup("demo", help="Load the fictional demo program.")


@demo_cli.command("load")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Program-local date to build history up to (default: today).")
def demo_load(today):
    """Create the demo program with four weeks of history (skips if a program exists)."""
    from portal.demo import load_demo, login_lines

    click.echo("Loading the demo program (rendering and archiving about 40 rosters, ~20 s)...")
    summary = load_demo(today.date() if today else None)
    if summary.created:
        click.echo(f"Demo program loaded: {summary.sessions} sessions, {summary.closed} rosters "
                   "closed and archived.")
    else:
        click.echo("A program already exists; its data was left as it is. The demo follows the "
                   "clock: to rebuild its history up to today, stop the portal and run "
                   "`make demo-reset` (deletes instance/).")
    click.echo("Demo logins:")
    for line in login_lines():
        click.echo(line)


def register_cli(app: Flask) -> None:
    from portal.audit_commands import audit_cli
    from portal.billing.commands import billing_cli
    from portal.census.commands import census_cli
    from portal.setup.commands import setup_cli
    from portal.no_shows.commands import no_shows_cli

    app.cli.add_command(demo_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(census_cli)
    app.cli.add_command(setup_cli)
    app.cli.add_command(billing_cli)
    app.cli.add_command(no_shows_cli)
