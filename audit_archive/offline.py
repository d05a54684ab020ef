"""Standalone verifier for export directories/zips.  Imports only stdlib + ``cryptography``.

Kept free of pypdf/SQLAlchemy/rfc8785 on purpose (a test enforces it): an auditor should be
able to run it from a copy of this package with nothing else installed but ``cryptography``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import merkle
from .commitments import commit_line_bytes
from .entry import EntryFormatError, chain_hash, parse_entry
from .note import NoteError, Verifier, open_checkpoint, parse_verifier

VERIFIER_PREFIX = "verifier/"  # the standalone verifier's own source, shipped in every export


@dataclass
class ExportReport:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        out = [f"FAIL {m}" for m in self.failures]
        for m in self.notes:  # a warning reads as one, not as a passed check
            out.append("WARN " + m[len("WARNING: "):] if m.startswith("WARNING: ") else f"  ok {m}")
        out.append("RESULT: " + ("all checks passed" if self.ok else f"{len(self.failures)} check(s) FAILED"))
        return "\n".join(out)


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None

    def read(self, name: str) -> bytes:
        if "\\" in name or name.startswith("/") or ".." in name.split("/"):
            raise KeyError(f"unsafe path {name!r}")
        if self.zip is not None:
            return self.zip.read(name)
        return (self.path / name).read_bytes()

    def names(self) -> set[str]:
        if self.zip is not None:
            return {n for n in self.zip.namelist() if not n.endswith("/")}
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}


def _hexes(values) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def verify_export(path: str | Path, key: str | None = None, since: str | None = None) -> ExportReport:
    """Check an export.  ``key``: verifier key text (else the export's own, with a warning);
    ``since``: an older signed checkpoint text the auditor kept.  Never raises for bad content;
    every problem becomes a precise failure line.
    """
    rep = ExportReport()
    r = _Reader(Path(path))
    try:
        manifest = json.loads(r.read("manifest.json"))
    except (KeyError, FileNotFoundError, ValueError) as exc:
        rep.failures.append(f"manifest.json unreadable: {exc}")
        return rep
    if manifest.get("format") != "iop-audit-export/v1":
        rep.failures.append(f"unknown export format {manifest.get('format')!r}")
        return rep
    listed = manifest.get("files", {})
    for name, digest in sorted(listed.items()):
        try:
            got = hashlib.sha256(r.read(name)).hexdigest()
        except (KeyError, FileNotFoundError):
            rep.failures.append(f"{name}: listed in manifest but missing")
            continue
        if got != digest:
            rep.failures.append(f"{name}: sha256 mismatch (manifest {digest}, file {got})")
    names = r.names()
    # The bundled verifier (and the __pycache__ running it leaves behind) is not evidence and
    # cannot vouch for itself; it is outside the checks by design (docs/audit-format.md §7).
    bundled = {n for n in names if n.startswith(VERIFIER_PREFIX)} - set(listed)
    extra = names - set(listed) - {"manifest.json"} - bundled
    for name in sorted(extra):
        rep.failures.append(f"{name}: file not listed in manifest")
    if bundled:
        rep.notes.append(f"{VERIFIER_PREFIX}: {len(bundled)} file(s) of the bundled verifier, not checked "
                         "(a verifier cannot vouch for itself)")

    export_key = r.read("public-key.txt").decode().strip() if "public-key.txt" in listed else None
    try:
        verifier: Verifier = parse_verifier(key if key is not None else (export_key or ""))
    except NoteError as exc:
        rep.failures.append(f"public key unusable: {exc}")
        return rep
    if key is None:
        rep.notes.append("WARNING: using the key shipped inside the export; pass --key with an independently obtained key")
    elif export_key and export_key != verifier.text():
        rep.notes.append("note: the export's public-key.txt differs from --key; --key is used")
    try:
        ck = open_checkpoint(r.read("checkpoint.txt").decode(), verifier)
    except (NoteError, KeyError, UnicodeDecodeError) as exc:
        rep.failures.append(f"checkpoint.txt: {exc}")
        return rep
    rep.notes.append(f"checkpoint signed by {verifier.name}+{verifier.key_id.hex()}: size {ck.size}, root {ck.root.hex()}")
    if (manifest.get("tree_size"), manifest.get("root_hash")) != (ck.size, ck.root.hex()):
        rep.failures.append("manifest tree_size/root_hash differ from the signed checkpoint")

    by_seq: dict[int, tuple[str, str | None]] = {}  # seq -> (chain hash, the prev it names)
    for item in manifest.get("entries", []):
        seq = item.get("seq")
        tag = f"entry {seq}"
        try:
            data = r.read(item["entry"])
        except (KeyError, FileNotFoundError) as exc:
            rep.failures.append(f"{tag}: entry file unreadable: {exc}")
            continue
        try:
            e = parse_entry(data)
        except EntryFormatError as exc:
            rep.failures.append(f"{tag}: not a valid entry: {exc}")
            continue
        by_seq[seq] = (chain_hash(data), e["prev_hash"])
        h = hashlib.sha256(data).hexdigest()
        if h != item.get("entry_sha256"):
            rep.failures.append(f"{tag}: entry file hash {h} differs from manifest")
        if e["seq"] != seq:
            rep.failures.append(f"{tag}: entry bytes say seq {e['seq']!r}")
        if e.get("log") != ck.origin:
            rep.failures.append(f"{tag}: entry belongs to log {e.get('log')!r}, checkpoint is {ck.origin!r}")
        try:
            proof = json.loads(r.read(item["proof"]))
            ok = (proof["leaf_index"] == seq - 1 and proof["tree_size"] == ck.size and
                  merkle.verify_inclusion(merkle.leaf_hash(data), seq - 1, ck.size, _hexes(proof["hashes"]), ck.root))
        except (KeyError, FileNotFoundError, ValueError, TypeError) as exc:
            rep.failures.append(f"{tag}: inclusion proof unreadable: {exc}")
            ok = None
        if ok is False:
            rep.failures.append(f"{tag}: inclusion proof does not verify against checkpoint size {ck.size}")
        elif ok:
            rep.notes.append(f"{tag}: included in the log at index {seq - 1} ({e.get('kind')}, {e.get('occurred_at')})")
        doc = e.get("doc") or {}
        if item.get("document"):
            try:
                pdf = r.read(item["document"])
            except (KeyError, FileNotFoundError):
                rep.failures.append(f"{tag}: document {item['document']} missing")
            else:
                got = hashlib.sha256(pdf).hexdigest()
                if got != doc.get("sha256"):
                    rep.failures.append(f"{tag}: document sha256 mismatch (entry says {doc.get('sha256')}, file {got})")
                elif len(pdf) != doc.get("size"):
                    rep.failures.append(f"{tag}: document size mismatch (entry says {doc.get('size')}, file {len(pdf)})")
                else:
                    rep.notes.append(f"{tag}: document matches the entry (sha256 {got})")
        else:
            rep.notes.append(f"{tag}: document not included ({item.get('document_withheld')})")
        for ln in item.get("lines", []):
            try:
                lb = r.read(ln["file"])
                c = commit_line_bytes(lb, bytes.fromhex(ln["salt"]))
                json.loads(lb)
            except (KeyError, FileNotFoundError, ValueError) as exc:
                rep.failures.append(f"{tag}: disclosed line unreadable: {exc}")
                continue
            if c not in (e.get("line_commitments") or []):
                rep.failures.append(f"{tag}: disclosed line {ln['file']} matches no line commitment in the entry")
            else:
                rep.notes.append(f"{tag}: disclosed line {ln['file']} is committed in the entry")
    for seq, (_h, prev) in by_seq.items():
        if isinstance(seq, int) and seq - 1 in by_seq and prev != by_seq[seq - 1][0]:
            rep.failures.append(f"entry {seq}: prev_hash does not match the hash of entry {seq - 1}")

    if since is not None:
        try:
            old = open_checkpoint(since, verifier)
        except NoteError as exc:
            rep.failures.append(f"--since checkpoint does not verify: {exc}")
        else:
            if old.size > ck.size:
                rep.failures.append(f"--since checkpoint has size {old.size}, larger than this export's {ck.size}: log truncated or rolled back")
            elif old.size == ck.size:
                if old.root != ck.root:
                    rep.failures.append(f"--since checkpoint and this export disagree on the root at size {ck.size}: history rewritten")
                else:
                    rep.notes.append("--since checkpoint is the same tree head")
            else:
                cons = {c["from_size"]: c["file"] for c in manifest.get("consistency", [])}
                if old.size not in cons and old.size != 0:
                    rep.failures.append(f"--since: export holds no consistency proof from size {old.size}")
                else:
                    hashes = [] if old.size == 0 else _hexes(json.loads(r.read(cons[old.size]))["hashes"])
                    if merkle.verify_consistency(old.size, ck.size, old.root, ck.root, hashes):
                        rep.notes.append(f"--since: the log only grew from size {old.size} to {ck.size}")
                    else:
                        rep.failures.append(f"--since: consistency proof from size {old.size} to {ck.size} does not verify: history rewritten")
    return rep
