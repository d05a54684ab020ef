"""Settings, every one from the environment (``PORTAL_*``), with safe defaults.

Secrets never live in code: the Flask secret key is read from ``PORTAL_SECRET_KEY`` or generated
once into the instance folder (mode 0600) and reused on every later start.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def instance_dir() -> str | None:
    """``PORTAL_INSTANCE_DIR`` as an absolute path (Flask refuses a relative instance path), a
    relative one taken from the current directory; None when unset (Flask's default)."""
    value = os.environ.get("PORTAL_INSTANCE_DIR")
    if not value:
        return None
    return os.path.abspath(os.path.expanduser(value))


def _secret_key(instance_path: Path) -> str:
    """Return ``PORTAL_SECRET_KEY`` or the key stored in ``instance/secret_key`` (created on first run)."""
    key = os.environ.get("PORTAL_SECRET_KEY")
    if key:
        return key
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def load_config(instance_path: str | os.PathLike) -> dict:
    """Build the Flask config mapping from the environment.

    ``PORTAL_DATABASE_URL``: SQLAlchemy URL; default ``sqlite:///<instance>/portal.sqlite3``.
    ``PORTAL_ARCHIVE_DIR``: where archived PDFs are stored; default ``<instance>/archive``.
    ``PORTAL_SIGNING_KEY``: Ed25519 private key file for checkpoints; default ``<instance>/checkpoint.key``
    (created with mode 0600 on first use; keep it off the database server's backups).
    ``PORTAL_CHECKPOINT_DIR``: signed checkpoint files; default ``<instance>/checkpoints``.
    ``PORTAL_BASE_URL``: public address printed in stamps' QR codes; default ``http://127.0.0.1:5000``.
    """
    instance = Path(instance_path)
    return {
        "SECRET_KEY": _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": os.environ.get(
            "PORTAL_DATABASE_URL", f"sqlite:///{instance / 'portal.sqlite3'}"
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "PORTAL_ARCHIVE_DIR": os.environ.get("PORTAL_ARCHIVE_DIR", str(instance / "archive")),
        "PORTAL_SIGNING_KEY": os.environ.get("PORTAL_SIGNING_KEY", str(instance / "checkpoint.key")),
        "PORTAL_CHECKPOINT_DIR": os.environ.get("PORTAL_CHECKPOINT_DIR", str(instance / "checkpoints")),
        "PORTAL_BASE_URL": os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        "PORTAL_ARCHIVE_ORIGIN": os.environ.get("PORTAL_ARCHIVE_ORIGIN", "iop-audit-portal/archive"),
        # X12 837P envelope: the clearinghouse assigns the submitter id; "T" = test, "P" = production.
        "PORTAL_X12_SUBMITTER_ID": os.environ.get("PORTAL_X12_SUBMITTER_ID"),
        "PORTAL_X12_RECEIVER_ID": os.environ.get("PORTAL_X12_RECEIVER_ID"),
        "PORTAL_X12_CONTACT_PHONE": os.environ.get("PORTAL_X12_CONTACT_PHONE", "0000000000"),
        "PORTAL_X12_USAGE": os.environ.get("PORTAL_X12_USAGE", "T"),
        # A signature PNG from a tablet canvas is ~10-60 KB; anything far larger is not a signature.
        "MAX_SIGNATURE_BYTES": 512 * 1024,
        # Encounter notes: individual sections of two patients in one group at or above this
        # similarity (0..1) are shown side by side before signing (issue 11).
        "PORTAL_CLONE_THRESHOLD": float(os.environ.get("PORTAL_CLONE_THRESHOLD", "0.90")),
        # A note, plan or addendum PDF that takes longer than this to lay out is refused.
        "PORTAL_RENDER_SECONDS": float(os.environ.get("PORTAL_RENDER_SECONDS", "60")),
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": 12 * 3600,
        # Password guessing: at most this many sign-in POSTs per client address.
        "LOGIN_RATE_LIMIT": os.environ.get("PORTAL_LOGIN_RATE_LIMIT", "10 per minute"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }
