"""Download archived documents (the stamped PDF exactly as stored in the archive)."""
from __future__ import annotations

import hashlib
import io

from flask import Blueprint, abort, g, send_file
from flask_login import current_user

from portal.access_control import allow
from portal.extensions import db
from portal.models import ArchivedDocument, GroupSession
from portal.services.archiving import archive_store

bp = Blueprint("documents", __name__, url_prefix="/documents")


@bp.route("/<int:document_id>.pdf")
@allow("facilitator", "clinician", "billing", "auditor", "admin")
def download(document_id: int):
    doc = db.session.get(ArchivedDocument, document_id)
    if doc is None:
        abort(404, description="There is no archived document with that number.")
    if current_user.role == "facilitator":
        # Facilitators see the rosters they closed, nothing else.
        session = db.session.query(GroupSession).filter_by(document_id=doc.id).one_or_none()
        if session is None or session.facilitator_id != current_user.id:
            abort(403, description="Facilitators can download only their own rosters.")
    if len(doc.patients) == 1:
        g.patient_id = doc.patients[0].patient_id
    store = archive_store()
    if not store.exists(doc.doc_sha256):
        abort(500, description="The archived file is missing. Run `flask --app portal audit verify`.")
    data = store.get(doc.doc_sha256)
    if hashlib.sha256(data).hexdigest() != doc.doc_sha256:
        # Never hand out a copy that no longer matches its chain entry.
        abort(500, description="The archived file does not match its chain entry. "
                               "Run `flask --app portal audit verify`.")
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{doc.kind}-{doc.dos or ''}-entry{doc.entry_seq}.pdf")
