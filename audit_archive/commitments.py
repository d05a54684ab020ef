"""Line commitments over exact canonical bytes.  Stdlib only (used by the standalone verifier)."""

from __future__ import annotations

import hashlib

# Domain separation: a line commitment can never equal a record, entry or tree hash.
LINE_DOMAIN = b"iop-audit/line-commitment/v1\x00"
SALT_SIZE = 32


def commit_line_bytes(line_canonical: bytes, salt: bytes) -> str:
    """Hex SHA-256(LINE_DOMAIN || salt || canonical line bytes).

    ``salt`` must be exactly 32 bytes (ValueError otherwise); the fixed length makes the
    concatenation unambiguous.  ``line_canonical`` is the RFC 8785 encoding of the line dict.
    """
    if len(salt) != SALT_SIZE:
        raise ValueError(f"line salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(LINE_DOMAIN + salt + line_canonical).hexdigest()
