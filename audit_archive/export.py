"""Export selected entries, with proofs and (where allowed) documents, for an outside auditor."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from . import merkle
from .canonical import line_bytes
from .checkpoint import open_row, stored_checkpoints
from .commitments import commit_line_bytes
from .filestore import FileStore
from .entry import EntryFormatError, parse_entry
from .ledger import LedgerError, as_bytes, leaf_hashes
from .note import Checkpoint, open_checkpoint, parse_verifier
from .schema import audit_entries

EXPORT_FORMAT = "iop-audit-export/v1"
BINDER = "audit-file.pdf"  # the audit file's human-readable binder (not evidence; explained)
WITHHELD_REASON = "withheld: the document names other patients; the entry and proof are included"
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)

# The standalone verifier ships inside every export, so that an auditor needs nothing from us
# but the export and the key: these are the modules ``python -m audit_archive verify`` imports
# (stdlib + cryptography only; tests/audit/test_export.py runs the bundled copy in isolation).
# They are copied byte for byte from this package at export time, so they cannot drift.
VERIFIER_DIR = "verifier"
VERIFIER_MODULES = ("__init__.py", "__main__.py", "offline.py", "entry.py", "merkle.py", "commitments.py", "note.py",
                    "cosignature.py")


class ExportError(ValueError):
    """``export()`` cannot make the export as asked (OUT exists, an entry is not covered by the
    checkpoint, no checkpoint, a disclosed line not committed in its entry, a key or checkpoint
    that does not verify...).  The message says what to do.  A ValueError, so callers that
    caught ValueError keep working."""


README = """\
Audit export ({format})
==================================

This folder (or zip) lets you check, without access to the portal, that the documents and
entries listed in manifest.json are part of the append-only audit log named in checkpoint.txt.

What a passed check proves, and what it does not:
  - each entry listed in manifest.json is in the log whose tree head checkpoint.txt signs, at
    the position it names (and, with --since, that log only grew since your older checkpoint);
  - each document in documents/ and each line in lines/ is exactly the one its entry commits to.
  It does NOT prove that the export is complete: an entry left out of it, or a document marked
  withheld, cannot be detected from the export alone.  What was disclosed, to whom and when is
  recorded in the portal's access log (see NOTICE.txt); ask the organisation for that record.

  NOTICE.txt          (patient exports) the 42 CFR 2.32 notice prohibiting redisclosure,
                      and what was disclosed to whom: read it before using the records
  checkpoint.txt      signed tree head of the log (C2SP tlog-checkpoint, Ed25519 signed note)
  public-key.txt      the log's verifier key (name+keyid+base64); obtain it independently too
  entries/N.entry     the exact stored bytes of entry N (format: see audit-format.md)
  proofs/N.json       RFC 9162 inclusion proof of entry N in the checkpoint's tree
  documents/N.pdf     the archived (stamped) PDF of entry N, when it may be disclosed
  lines/N-K.json      one disclosed patient line of entry N (exact canonical bytes);
                      manifest.json gives its salt, the entry lists its commitment
  extracts/N-K.pdf    one patient's extract of withheld document N, rendered from line
                      lines/N-K.json, which it carries as an embedded file; the verifier
                      checks that embedded line is the committed one
  audit-file.pdf      (audit files) the binder to read: cover, notice, index, the documents
                      and extracts in chain order, and how to verify; not evidence itself
  consistency/S.json  RFC 9162 consistency proof from an earlier signed tree size S
  manifest.json       what is where, with SHA-256 of every file
  verifier/           the standalone verifier's source (Python), to run as shown below

Documents that also name other patients are withheld; their entry and proof are still
included, and the disclosed patient's own line is proven through its line commitment.

Every file in entries/, proofs/, documents/, lines/, extracts/ and consistency/ must be the one
manifest.json names for an entry (or a consistency proof), so that the signed checkpoint
covers it; the verifier fails on any other file, and on any symbolic link or special file.
manifest.json, README.txt, NOTICE.txt and audit-file.pdf are not signed: they explain the export, they are
not evidence.

To verify you need Python 3.11+ (3.10: see below) with the `cryptography` package
(pip install cryptography), nothing else.  In a terminal, from the folder that CONTAINS the
export (never from inside it), where EXPORT is the export folder's path:

    PYTHONPATH=EXPORT/verifier python3 -P -m audit_archive verify EXPORT --key 'KEY' [--since OLDER_CHECKPOINT_FILE]

A .zip works unopened:

    PYTHONPATH=EXPORT.zip/verifier python3 -P -m audit_archive verify EXPORT.zip --key 'KEY'

(On Windows, PowerShell: $env:PYTHONPATH = "EXPORT\\verifier"; py -P -m audit_archive verify EXPORT --key 'KEY')
-P keeps the current directory off Python's module path: with `python3 -m`, Python otherwise
imports a json.py or an audit_archive/ folder found in the current directory instead of the
real code, and a file planted in the export could then print "all checks passed".  Python 3.10
has no -P: leave it out there, and run from a current directory that is not inside the export
and holds no .py files (nor packages).
Exit status 0 and "RESULT: all checks passed" mean every check passed; 1 means a check failed,
and each failure is named on a FAIL line.

Pass --key with the verifier key you obtained from the organisation independently; without it
the key in public-key.txt is used, which only proves internal consistency.  Pass --since with a
checkpoint you saved earlier to prove the log was only appended to since then.

The verifier in verifier/ came in the same package as the data, so it cannot vouch for itself:
it is not covered by the checks (manifest.json lists its files' SHA-256 for information only).
You may read it (under 2,000 lines), or, best, use your own copy instead: the `audit_archive`
package of the portal's source (PYTHONPATH=the folder holding your audit_archive/, the rest of
the command as above), or an implementation of your own.  The format and every check are
specified in docs/audit-format.md of the portal's source.
"""

# How to run the bundled verifier; README.txt explains it (from outside the export, with -P).
RUN_COMMAND = f"PYTHONPATH=EXPORT/{VERIFIER_DIR} python3 -P -m audit_archive verify EXPORT --key 'KEY'"


def verifier_files() -> dict[str, bytes]:
    """The bundled verifier: export path -> bytes, read from this package's own files."""
    here = Path(__file__).resolve().parent
    return {f"{VERIFIER_DIR}/audit_archive/{m}": (here / m).read_bytes() for m in VERIFIER_MODULES}


def _damaged_checkpoints(row_id, what: str) -> ExportError:
    return ExportError(f"the checkpoints table is damaged (row id {row_id}: {what}); "
                       "run `audit verify` (nothing was written)")


def _stored_checkpoints(conn: Connection) -> list[tuple[Checkpoint, object, str]]:
    """``[(checkpoint as signed, row id, note)]`` for every stored checkpoint row.  The export is
    based on the signed text, never on the columns: a row whose note is not text or not a
    checkpoint, or whose ``tree_size``/``root_hash`` columns are not what its text says (SQLite
    keeps '37x' in an integer column), is damage, and ExportError says so."""
    out = []
    for c in stored_checkpoints(conn):
        ck, problem = open_row(c, None)  # parsed only; the signature is checked by the caller
        if problem:
            raise _damaged_checkpoints(c["id"], problem)
        out.append((ck, c["id"], c["note"]))
    return out


def _sha256(value: bytes | Path) -> str:
    """SHA-256 of a file's bytes, or of a file read in chunks (never whole in memory)."""
    if not isinstance(value, Path):
        return hashlib.sha256(value).hexdigest()
    h = hashlib.sha256()
    with open(value, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dumps(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def export(conn: Connection, store: FileStore, out: str | os.PathLike, seqs: Iterable[int], *,
           include_documents: Iterable[int] = (),
           line_disclosures: Mapping[int, Sequence[tuple[Mapping, bytes]]] | None = None,
           public_key_text: str, checkpoint: str | None = None,
           notice: str | None = None,
           extracts: Mapping[int, Sequence[tuple[int, str | os.PathLike]]] | None = None,
           binder: str | os.PathLike | None = None) -> Path:
    """Write an export directory (or a ``.zip`` file if ``out`` ends in .zip); returns its path.

    - ``seqs``: entries to export; each must be covered by the checkpoint.
    - ``include_documents``: seqs whose PDF may be disclosed whole (the caller decides: only
      documents whose sole patient is the requester).  Others are marked withheld.
    - ``line_disclosures``: {seq: [(line dict, 32-byte salt), ...]} - the requester's own lines;
      each commitment must appear in the entry (ValueError otherwise).
    - ``public_key_text``: verifier key text; the checkpoint must verify with it.
    - ``checkpoint``: signed checkpoint text to prove against; default the latest stored one.
    - ``notice``: text written as ``NOTICE.txt`` (listed in the manifest, so it is checked too);
      the portal passes the 42 CFR 2.32 redisclosure notice and what was disclosed to whom.
    - ``extracts``: {seq: [(k, path of a PDF)]} - a one-patient extract of a withheld document,
      rendered from disclosed line ``k`` of that entry, which it must carry as an uncompressed
      embedded file (the verifier checks it against the line: ``extracts/N-K.pdf``).
    - ``binder``: path of the human-readable audit-file PDF, written as ``audit-file.pdf``
      (listed in the manifest, not evidence: it explains, the entries prove).
    Files given as paths are streamed into the export, never held in memory all at once.
    Raises ExportError (a ValueError; nothing is written) when ``out`` already exists, for no or
    uncovered seqs, a missing or unverifiable checkpoint, an unusable key, bad disclosures, a
    damaged checkpoints table or entry (the message says to run ``audit verify``);
    FileNotFoundError if an included document is missing from the store.
    """
    if os.path.lexists(out):
        raise ExportError(f"{out} already exists; choose a new path (an export never overwrites anything)")
    seqs = list(seqs)
    if not seqs:
        raise ExportError("no entries to export; pass at least one entry seq")
    bad = [s for s in seqs if type(s) is not int or s < 1]
    if bad:
        raise ExportError(f"entry seqs must be integers >= 1, got {bad[0]!r}")
    try:
        verifier = parse_verifier(public_key_text)
    except ValueError as exc:
        raise ExportError(f"public_key_text is not a verifier key (name+keyid+base64): {exc}") from exc
    cps = _stored_checkpoints(conn)
    if checkpoint is None:
        if not cps:
            raise ExportError("no stored checkpoint to prove against; call make_checkpoint first")
        checkpoint = max(cps, key=lambda c: (c[0].size, c[1]))[2]  # the largest signed size
    if not isinstance(checkpoint, str):
        raise ExportError(f"checkpoint must be the signed checkpoint text (str), got {type(checkpoint).__name__}")
    try:
        ck = open_checkpoint(checkpoint, verifier)
    except ValueError as exc:
        raise ExportError(f"the checkpoint does not verify with public_key_text ({exc}); "
                          "pass the log's own key and one of its signed checkpoints") from exc
    for _ck, row_id, note in cps:  # the key opens the head: a row it does not open is damage
        try:
            open_checkpoint(note, verifier)
        except ValueError as exc:
            raise _damaged_checkpoints(row_id, f"its note does not verify with public_key_text: {exc}") from None
    try:
        leaves = leaf_hashes(conn, upto=ck.size)
    except LedgerError as exc:
        raise ExportError(f"the ledger is damaged ({exc}); run `audit verify` (nothing was written)") from None
    if len(leaves) < ck.size:
        raise ExportError(f"ledger has {len(leaves)} entries, fewer than the checkpoint's {ck.size}; "
                          "this checkpoint is not of this ledger (run verify_ledger)")
    tree = merkle.Tree(leaves)
    if tree.root() != ck.root:
        raise ExportError("checkpoint root does not match the ledger; run verify_ledger")
    seqs = sorted(set(seqs))
    uncovered = [s for s in seqs if s > ck.size]
    if uncovered:
        raise ExportError(f"entry {uncovered[0]} is not covered by the checkpoint (size {ck.size}); "
                          f"make a new checkpoint first (make_checkpoint), or export entries 1..{ck.size} only")
    include = set(include_documents)
    line_disclosures = line_disclosures or {}
    files: dict[str, bytes | Path] = {
        "checkpoint.txt": checkpoint.encode(),
        "public-key.txt": (verifier.text() + "\n").encode(),
        "README.txt": README.format(format=EXPORT_FORMAT).encode(),
    }
    if notice:
        files["NOTICE.txt"] = (notice.rstrip() + "\n").encode()
    if binder is not None:
        files[BINDER] = Path(binder)
    rows = {r.seq: as_bytes(r.entry_bytes) for r in conn.execute(
        select(audit_entries.c.seq, audit_entries.c.entry_bytes).where(audit_entries.c.seq.in_(seqs)))}
    items = []
    for s in seqs:
        data = rows[s]
        try:
            entry = parse_entry(data)
        except EntryFormatError as exc:
            raise ExportError(f"entry {s} is damaged ({exc}); run `audit verify` (nothing was written)") from None
        name = f"{s:08d}"
        files[f"entries/{name}.entry"] = data
        files[f"proofs/{name}.json"] = _dumps({
            "leaf_index": s - 1, "tree_size": ck.size,
            "hashes": [p.hex() for p in tree.inclusion_proof(s - 1)]})
        item = {"seq": s, "entry": f"entries/{name}.entry", "entry_sha256": hashlib.sha256(data).hexdigest(),
                "proof": f"proofs/{name}.json", "document": None, "document_withheld": None, "lines": []}
        if s in include:
            pdf = store.get(entry["doc"]["sha256"])
            files[f"documents/{name}.pdf"] = pdf
            item["document"] = f"documents/{name}.pdf"
        else:
            item["document_withheld"] = WITHHELD_REASON
        for k, (line, salt) in enumerate(line_disclosures.get(s, ())):
            try:
                lb = line_bytes(line)
                c = commit_line_bytes(lb, salt)
            except ValueError as exc:  # CanonicalError, or a salt that is not 32 bytes
                raise ExportError(f"entry {s}: disclosed line {k} cannot be committed: {exc}") from exc
            if c not in entry["line_commitments"]:
                raise ExportError(f"entry {s}: disclosed line {k} does not match any line commitment; "
                                  "disclose the exact line and salt the entry committed to")
            files[f"lines/{name}-{k}.json"] = lb
            item["lines"].append({"file": f"lines/{name}-{k}.json", "salt": salt.hex(), "commitment": c})
        for k, pdf_path in (extracts or {}).get(s, ()):
            if s in include or not 0 <= k < len(item["lines"]):
                raise ExportError(f"entry {s}: an extract must render a disclosed line of a withheld "
                                  f"document (line {k})")
            item.setdefault("extracts", []).append({"file": f"extracts/{name}-{k}.pdf", "line": k})
            files[f"extracts/{name}-{k}.pdf"] = Path(pdf_path)
        items.append(item)
    consistency = []
    for c, _id, _note in cps:
        old = c.size
        if 0 < old < ck.size and not any(x["from_size"] == old for x in consistency):
            fn = f"consistency/{old:08d}.json"
            files[fn] = _dumps({"first": old, "second": ck.size,
                                "hashes": [p.hex() for p in tree.consistency_proof(old, ck.size)]})
            consistency.append({"from_size": old, "file": fn})
    manifest = {
        "format": EXPORT_FORMAT, "origin": ck.origin, "tree_size": ck.size, "root_hash": ck.root.hex(),
        "checkpoint": "checkpoint.txt", "public_key": "public-key.txt", "entries": items,
        "consistency": consistency,
        "files": {n: _sha256(b) for n, b in sorted(files.items())},
    }
    bundled = verifier_files()
    manifest["verifier"] = {
        "dir": VERIFIER_DIR + "/",
        "run": RUN_COMMAND,
        "note": "informational: the bundled verifier is not covered by 'files' or the proofs; "
                "run it from outside the export (README.txt)",
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(bundled.items())},
    }
    files.update(bundled)
    files["manifest.json"] = _dumps(manifest)
    out = Path(out)
    if out.suffix == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written to a temporary file beside OUT, then linked into place: OUT appears whole or
        # not at all, never overwrites what appeared meanwhile, and large documents stream.
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".export-", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for n in sorted(files):
                    zi = zipfile.ZipInfo(n, _ZIP_TIME)
                    zi.external_attr = (stat.S_IFREG | 0o644) << 16  # a plain file, readable once unzipped
                    zi.compress_type = zipfile.ZIP_DEFLATED
                    value = files[n]
                    if isinstance(value, Path):
                        with open(value, "rb") as src, z.open(zi, "w") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                    else:
                        z.writestr(zi, value)
            try:
                os.link(tmp, out)  # exclusive: never overwrite what appeared meanwhile
            except FileExistsError:
                raise ExportError(f"{out} already exists; choose a new path (nothing was written)") from None
        finally:
            os.unlink(tmp)
    else:
        try:
            out.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise ExportError(f"{out} already exists; choose a new path (nothing was written)") from None
        for n, b in files.items():
            p = out / n
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(b, Path):
                shutil.copyfile(b, p)
            else:
                p.write_bytes(b)
    return out
