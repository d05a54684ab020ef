"""The program this portal instance serves (one program per installation)."""
from __future__ import annotations

from flask import abort
from sqlalchemy import select

from portal.extensions import db
from portal.models import Program


def current_program() -> Program:
    """The installation's program; 503 with a setup hint when none was created yet."""
    program = db.session.scalar(select(Program).order_by(Program.id).limit(1))
    if program is None:
        abort(503, description="No program is set up yet. Run `make demo` or `flask --app portal "
                               "demo load` (or create the program) first.")
    return program
