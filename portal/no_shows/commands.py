"""``flask --app portal no-shows sweep``: open clinical-review tasks for thresholds crossed
(cron it daily after rosters close; idempotent)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

no_shows_cli = AppGroup("no-shows", help="No-show policy: thresholds and review tasks.")


@no_shows_cli.command("sweep")
@click.option("--days", default=60, show_default=True, help="How far back to look.")
def sweep_command(days: int):
    """Open a clinical-review task for each threshold crossed in the last DAYS days."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import Program
    from portal.services.no_shows import sweep

    total = 0
    for program in db.session.scalars(select(Program)).all():
        total += sweep(program, days=days)
    click.echo(f"{total} clinical-review task{'s' if total != 1 else ''} opened.")
