"""What ``/healthz`` checks: the database answers, and the folders the archive writes to take a
new file (a full or read-only disk must show up in monitoring before a roster close fails)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import current_app
from sqlalchemy import text

from portal.extensions import db


def _writable(folder: str) -> str:
    path = Path(folder)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path, prefix=".healthz-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return f"not writable ({exc.strerror or type(exc).__name__})"
    return "ok"


def check_health() -> dict[str, str]:
    """``{"database": ..., "archive": ..., "checkpoints": ...}``, each "ok" or why not."""
    out = {}
    try:
        db.session.execute(text("SELECT 1"))
        out["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is "not ok"; the class name says which
        current_app.logger.warning("healthz: database check failed: %s", type(exc).__name__)
        out["database"] = f"unreachable ({type(exc).__name__})"
    finally:
        db.session.rollback()
    out["archive"] = _writable(current_app.config["PORTAL_ARCHIVE_DIR"])
    out["checkpoints"] = _writable(current_app.config["PORTAL_CHECKPOINT_DIR"])
    return out
