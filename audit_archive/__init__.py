"""Tamper-evident archive of signed documents: canonical entries, hash chain, RFC 9162 Merkle
tree, stamped PDFs in a content-addressed store, C2SP signed checkpoints, exports and a
standalone verifier.  Framework-free: imports neither Flask nor the portal.

Importing this package is cheap and pulls in no third-party module, so that
``python -m audit_archive verify`` runs with only the stdlib and ``cryptography``.  Import
the working modules directly (``from audit_archive.ledger import append``) or use the lazy
names below.  The format is specified in docs/audit-format.md.
"""

from importlib import import_module

_LAZY = {
    "append": "ledger", "AppendResult": "ledger", "sqlite_begin_immediate": "ledger", "LedgerError": "ledger",
    "FileStore": "filestore", "FileStoreError": "filestore",
    "commit_line": "canonical", "new_salt": "canonical", "record_sha256": "canonical",
    "canonical_bytes": "canonical", "CanonicalError": "canonical",
    "make_checkpoint": "checkpoint", "public_key_text": "checkpoint", "CheckpointError": "checkpoint",
    "verify_ledger": "verify", "Report": "verify",
    "export": "export",
    "verify_export": "offline",
    "StampError": "stamp",
    "metadata": "schema", "append_only_ddl": "schema", "create_tables": "schema",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'audit_archive' has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{mod}"), name)
