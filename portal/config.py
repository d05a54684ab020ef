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


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{name} must be a number of seconds above 0, not {raw!r}")
    return value


def load_config(instance_path: str | os.PathLike) -> dict:
    """Build the Flask config mapping from the environment.

    ``PORTAL_DATABASE_URL``: SQLAlchemy URL; default ``sqlite:///<instance>/portal.sqlite3``.
    ``PORTAL_ARCHIVE_DIR``: where archived PDFs are stored; default ``<instance>/archive``.
    ``PORTAL_SIGNING_KEY``: Ed25519 private key file for checkpoints; default ``<instance>/checkpoint.key``
    (created with mode 0600 on first use; keep it off the database server's backups).
    ``PORTAL_CHECKPOINT_DIR``: signed checkpoint files; default ``<instance>/checkpoints``.
    ``PORTAL_BASE_URL``: public address printed in stamps' QR codes; default ``http://127.0.0.1:5000``.
    ``PORTAL_LATE_ARCHIVE_DAYS``: an entry archived more than this many days after its event is
    reported as late-archived; default 7.
    ``PORTAL_WITNESSES``: witnesses that cosign checkpoints, comma-separated ``URL KEY`` pairs
    (KEY = the witness's verifier key, name+keyid+base64); default none.
    ``PORTAL_WITNESS_QUORUM``: how many of them must cosign; default 1 when any are configured.
    ``PORTAL_UNCOSIGNED_WARN_HOURS``: `audit verify` warns about a checkpoint older than this
    that lacks its quorum of cosignatures; default 24.
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
        # Archive time and witnesses (docs/operations.md "Witnesses"); parsed and checked where
        # used (portal.services.witnesses), so a typo is a clear error, not a silent default.
        "PORTAL_LATE_ARCHIVE_DAYS": os.environ.get("PORTAL_LATE_ARCHIVE_DAYS", "7"),
        "PORTAL_WITNESSES": os.environ.get("PORTAL_WITNESSES", ""),
        "PORTAL_WITNESS_QUORUM": os.environ.get("PORTAL_WITNESS_QUORUM", ""),
        "PORTAL_UNCOSIGNED_WARN_HOURS": os.environ.get("PORTAL_UNCOSIGNED_WARN_HOURS", "24"),
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
        # Background jobs (portal/jobs, docs/operations.md "Background jobs"): the queue (unset =
        # SQLite file in the instance folder; redis://host:6379/0 in production), how long a
        # finished file is kept (seconds), and when a silent running job counts as dead.
        "PORTAL_QUEUE_URL": os.environ.get("PORTAL_QUEUE_URL", ""),
        "PORTAL_QUEUE_NAME": os.environ.get("PORTAL_QUEUE_NAME", "iop-portal"),
        "PORTAL_QUEUE_FILE": os.environ.get("PORTAL_QUEUE_FILE", str(instance / "job-queue.sqlite3")),
        "PORTAL_QUEUE_IMMEDIATE": os.environ.get("PORTAL_QUEUE_IMMEDIATE", ""),
        "PORTAL_JOB_DIR": os.environ.get("PORTAL_JOB_DIR", str(instance / "job-results")),
        "PORTAL_JOB_RESULT_TTL": _seconds("PORTAL_JOB_RESULT_TTL", 3600),
        "PORTAL_JOB_STALE_SECONDS": _seconds("PORTAL_JOB_STALE_SECONDS", 900),
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": 12 * 3600,
        # Password guessing: failed sign-ins (successes are not counted) per account, and per
        # client address (a clinic's tablets share one NAT address, so that limit is wider).
        "LOGIN_RATE_LIMIT": os.environ.get("PORTAL_LOGIN_RATE_LIMIT", "5 per minute;30 per hour"),
        "LOGIN_ADDRESS_RATE_LIMIT": os.environ.get("PORTAL_LOGIN_ADDRESS_RATE_LIMIT",
                                                   "30 per minute;300 per hour"),
        # Shared counter storage for several workers, e.g. redis://127.0.0.1:6379/0.
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,  # Retry-After and X-RateLimit-* on sign-in answers
        # Shared tablets: a session locks after this much idle time (the same user signs in
        # again and carries on; anyone else starts clean) and ends after an absolute limit.
        "SESSION_IDLE_SECONDS": idle_seconds_by_role(),
        # How many reverse proxies (the TLS proxy) sit in front of the portal: 0 = none, trust
        # no X-Forwarded-* header (docs/operations.md).
        "PORTAL_TRUSTED_PROXIES": int(os.environ.get("PORTAL_TRUSTED_PROXIES", "0") or 0),
        "SESSION_ABSOLUTE_SECONDS": int(float(os.environ.get("PORTAL_SESSION_HOURS", "12")) * 3600),
        **cookie_settings(os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000")),
        # Times an auditor would question (portal/rules/time_plausibility.py): signatures from
        # this many minutes before the scheduled start; actual times at most this far ahead of
        # now; a roster closed at most this long before its recorded end.
        "PORTAL_SIGN_EARLY_MINUTES": int(os.environ.get("PORTAL_SIGN_EARLY_MINUTES", "30")),
        "PORTAL_FUTURE_TIME_MINUTES": int(os.environ.get("PORTAL_FUTURE_TIME_MINUTES", "5")),
        "PORTAL_CLOSE_EARLY_MINUTES": int(os.environ.get("PORTAL_CLOSE_EARLY_MINUTES", "0")),
        # The day's gaps are due this long after the day's last session is scheduled to end
        # (never before 5:00 PM program-local): the evening group's rosters can still be fixed.
        "PORTAL_GAPS_DUE_AFTER_LAST_SESSION_MINUTES": int(
            os.environ.get("PORTAL_GAPS_DUE_AFTER_LAST_SESSION_MINUTES", "60")),
    }


TABLET_ROLES = ("facilitator", "clinician")
OFFICE_ROLES = ("billing", "admin", "auditor")


def idle_seconds_by_role() -> dict[str, int]:
    """Idle timeout per role: ``PORTAL_IDLE_MINUTES_TABLET`` (facilitator, clinician; default
    10, the tablets are shared) and ``PORTAL_IDLE_MINUTES_OFFICE`` (billing, admin, auditor;
    default 30)."""
    tablet = int(float(os.environ.get("PORTAL_IDLE_MINUTES_TABLET", "10")) * 60)
    office = int(float(os.environ.get("PORTAL_IDLE_MINUTES_OFFICE", "30")) * 60)
    return {**{r: tablet for r in TABLET_ROLES}, **{r: office for r in OFFICE_ROLES}}


def cookie_settings(base_url: str) -> dict:
    """Session cookie flags. Served over HTTPS (``PORTAL_BASE_URL`` starts with https://, or
    ``PORTAL_SECURE_COOKIES=1``): ``Secure`` and the ``__Host-`` name (which browsers accept
    only from a secure origin, for path / and no domain). The demo on plain http keeps a plain
    cookie, or the browser would drop it."""
    flag = os.environ.get("PORTAL_SECURE_COOKIES")
    secure = flag.strip().lower() in ("1", "true", "yes", "on") if flag else \
        base_url.lower().startswith("https://")
    settings = {"SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax",
                "SESSION_COOKIE_SECURE": secure, "PORTAL_HTTPS": secure}
    if secure:
        settings.update(SESSION_COOKIE_NAME="__Host-portal_session", SESSION_COOKIE_PATH="/",
                        SESSION_COOKIE_DOMAIN=None)
    return settings
