"""The page a stamp's QR code opens: one archive entry and whether it verifies."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from audit_archive.verify import verify_entry
from portal.access_control import allow
from portal.extensions import db
from portal.models import ArchivedDocument
from portal.services.archiving import archive_store
from portal.services.checkpoints import public_key

bp = Blueprint("verification", __name__)


@bp.route("/verify/<int:seq>")
@allow("facilitator", "clinician", "billing", "auditor", "admin")
def entry(seq: int):
    result = verify_entry(db.session.connection(), archive_store(), seq, public_key())
    doc = db.session.scalar(select(ArchivedDocument).where(ArchivedDocument.entry_seq == seq))
    status = 200 if result.entry is not None else 404
    return render_template("verification/entry.html", seq=seq, result=result, doc=doc), status
