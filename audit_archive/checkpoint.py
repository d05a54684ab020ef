"""Signing tree heads (C2SP tlog-checkpoint) for the ledger, refusing inconsistent heads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from . import merkle
from .ledger import leaf_hashes, lock_chain
from .note import Checkpoint, NoteError, Verifier, load_or_create_signer, open_checkpoint, sign_checkpoint
from .schema import audit_checkpoints


class CheckpointError(RuntimeError):
    """Refused to sign: the ledger is not an append-only extension of the last signed head."""


@dataclass(frozen=True)
class SignedCheckpoint:
    origin: str
    size: int
    root_hash: str  # hex
    note: str       # full signed text
    created: bool   # False when the head was unchanged and the stored checkpoint is returned
    id: int | None = None  # the audit_checkpoints row (set when created)


def stored_checkpoints(conn: Connection) -> list[dict]:
    """All stored checkpoints, oldest (smallest size) first, as dicts with origin/tree_size/root_hash/note."""
    rows = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.tree_size,
                                                           audit_checkpoints.c.id)).mappings()
    return [dict(r) for r in rows]


def public_key_text(key_path: str | os.PathLike, origin: str) -> str:
    """Printable verifier key for the signing key at ``key_path`` (created if missing)."""
    return load_or_create_signer(key_path, origin).verifier.text()


def checkpoint_files(checkpoint_dir: str | os.PathLike | None,
                     verifier: Verifier | None) -> tuple[list[tuple[str, Checkpoint]], list[tuple[str, str]]]:
    """``(opened, refused)`` for the signed checkpoint files ``checkpoint-*.txt`` that
    ``make_checkpoint`` writes to ``checkpoint_dir``, by file name: ``(name, Checkpoint)`` for
    those that open with ``verifier`` (None: signature not checked), ``(name, reason)`` for the
    others.  Both empty when the folder is None or absent."""
    if checkpoint_dir is None or not os.path.isdir(checkpoint_dir):
        return [], []
    opened, refused = [], []
    for name in sorted(n for n in os.listdir(checkpoint_dir) if n.startswith("checkpoint-") and n.endswith(".txt")):
        try:
            with open(os.path.join(checkpoint_dir, name), encoding="utf-8") as f:
                opened.append((name, open_checkpoint(f.read(), verifier)))
        except (OSError, UnicodeDecodeError, NoteError) as exc:
            refused.append((name, str(exc)))
    return opened, refused


def _latest_signed_file(checkpoint_dir, signer) -> list:
    """``[(label, Checkpoint)]`` for the largest checkpoint file in ``checkpoint_dir`` that our
    key signed (empty when none): rows can be deleted from the table, the files stay.  Files
    that are not ours or unreadable are skipped here; `audit verify` reports them."""
    opened, _refused = checkpoint_files(checkpoint_dir, signer.verifier)
    if not opened:
        return []
    name, ck = max(opened, key=lambda pair: pair[1].size)
    return [(f"checkpoint file {name}", ck)]


def open_row(row: dict, verifier: Verifier | None) -> tuple[Checkpoint | None, str | None]:
    """``(checkpoint, problem)`` for one stored checkpoint row (a dict of its columns).  The
    checkpoint is read from the signed ``note`` (None when it is not text or does not open with
    ``verifier``); ``problem`` says what is wrong, also when the columns differ from the signed
    text, and is None for an intact row.  Later checks use the signed text, not the columns."""
    note = row.get("note")
    if not isinstance(note, str):
        return None, f"the note column holds {type(note).__name__}, not the signed text"
    try:
        ck = open_checkpoint(note, verifier)
    except NoteError as exc:
        return None, f"signature/format invalid: {exc}"
    if (str(ck.size), ck.root.hex()) != (str(row.get("tree_size")), row.get("root_hash")):
        return ck, (f"columns (size {row.get('tree_size')!r}, root {row.get('root_hash')!r}) differ from the "
                    f"signed text (size {ck.size}, root {ck.root.hex()})")
    return ck, None


def _signed_rows(rows: list[dict], signer) -> list[tuple[str, Checkpoint]]:
    """``[(note, Checkpoint)]`` for the stored rows, each opened with our key.  Raises
    CheckpointError for the first damaged row: a new head is only signed over an intact table."""
    out = []
    for row in rows:
        ck, problem = open_row(row, signer.verifier)
        if problem:
            raise CheckpointError(f"stored checkpoint row {row.get('id')} (size {row.get('tree_size')!r}): "
                                  f"{problem}; run `audit verify`")
        out.append((row["note"], ck))
    return out


def _refuse_unless_extends(label: str, old, tree, size: int, root: bytes) -> None:
    if old.size > size:
        raise CheckpointError(f"ledger has {size} entries but {label} signed {old.size}: truncated")
    proof = tree.consistency_proof(old.size, size)
    if not merkle.verify_consistency(old.size, size, old.root, root, proof):
        raise CheckpointError(
            f"ledger is not an append-only extension of {label} (size {old.size}, "
            f"root {old.root.hex()}); refusing to sign root {root.hex()} at size {size}")


def make_checkpoint(conn: Connection, key_path: str | os.PathLike, origin: str, *,
                    checkpoint_dir: str | os.PathLike | None = None,
                    before_store: Callable[[str, Checkpoint, "merkle.Tree"], None] | None = None
                    ) -> SignedCheckpoint:
    """Sign the current tree head and store it (table row + ``checkpoint_dir/checkpoint-<size>.txt``).

    Runs in the caller's transaction (take it like an append: BEGIN IMMEDIATE on SQLite; the
    advisory lock is taken here on PostgreSQL); the caller commits.  Leaf hashes are
    recomputed from the stored entry bytes.  Before signing, the new head is checked against
    the last stored checkpoint, and against the largest checkpoint file in ``checkpoint_dir``
    that our key signed (a row can be deleted, the file stays): its signature must verify with
    our key, its size must not exceed the ledger, and an RFC 9162 consistency proof from it to
    the new head must verify.
    Otherwise CheckpointError and nothing is signed.  If the head equals the last one, that
    checkpoint is returned (created=False).

    ``before_store(note, checkpoint, tree)`` runs after signing and before anything is stored:
    the portal submits the new head to its witnesses there, and a witness's refusal (it
    cosigned a longer or another history) raises CheckpointError, so such a head is never kept.
    """
    signer = load_or_create_signer(key_path, origin)
    lock_chain(conn)
    leaves = leaf_hashes(conn)
    size = len(leaves)
    tree = merkle.Tree(leaves)
    root = tree.root()
    prior = stored_checkpoints(conn)
    for label, old in _latest_signed_file(checkpoint_dir, signer):
        _refuse_unless_extends(label, old, tree, size, root)
    signed = _signed_rows(prior, signer)
    if signed:
        last_note, old = max(signed, key=lambda pair: pair[1].size)
        _refuse_unless_extends("the last checkpoint", old, tree, size, root)
        if old.size == size:
            return SignedCheckpoint(origin, size, root.hex(), last_note, created=False)
    note = sign_checkpoint(Checkpoint(origin, size, root), signer)
    if before_store is not None:
        before_store(note, Checkpoint(origin, size, root), tree)
    new_id = conn.execute(audit_checkpoints.insert().values(
        origin=origin, tree_size=size, root_hash=root.hex(), key_id=signer.verifier.key_id.hex(),
        note=note)).inserted_primary_key[0]
    if checkpoint_dir is not None:
        d = Path(checkpoint_dir)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".checkpoint-{size}.tmp"
        tmp.write_text(note)
        os.replace(tmp, d / f"checkpoint-{size}.txt")
    return SignedCheckpoint(origin, size, root.hex(), note, created=True, id=new_id)
