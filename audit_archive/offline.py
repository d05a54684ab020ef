"""Standalone verifier for export directories/zips.  Imports only stdlib + ``cryptography``.

Kept free of pypdf/SQLAlchemy/rfc8785 on purpose (a test enforces it): an auditor should be
able to run it from a copy of this package with nothing else installed but ``cryptography``.

manifest.json is not signed, so it is only an index: every file under entries/, proofs/,
documents/, lines/ and consistency/ must be the one the manifest names for an entry (or a
consistency proof) under its canonical name, and is then checked against the signed
checkpoint through that entry.  A file nothing explains is a failure (docs/audit-format.md §8).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import zipfile
import zlib
import datetime as _dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from . import merkle
from .commitments import commit_line_bytes
from .entry import EntryFormatError, chain_hash, parse_entry

from .note import NoteError, Verifier, open_checkpoint, parse_verifier

EXPORT_FORMAT = "iop-audit-export/v1"
VERIFIER_PREFIX = "verifier/"  # the standalone verifier's own source, shipped in every export
# Files that are not evidence: they are listed in manifest.files but explained by no entry.
FIXED_FILES = ("README.txt", "NOTICE.txt", "manifest.json", "checkpoint.txt", "public-key.txt",
               "audit-file.pdf")
CONSISTENCY_DIR = "consistency/"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MISSING = object()


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


class _Unreadable(Exception):
    """A file of the export cannot be read or parsed: ``str()`` is "NAME: why"."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name}: {why}")
        self.name, self.why = name, why


# Errors reading a damaged zip member or file (zlib.error: corrupt deflate data, RuntimeError:
# encrypted member, NotImplementedError: unknown compression, EOFError: truncated archive).
_READ_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, ValueError)


class _Reader:
    """An export directory or zip.  Only plain files with plain relative names are evidence: a
    directory is walked without following links, and every symbolic link, special file (FIFO,
    socket, device) or zip member whose name is not a plain relative path is one of
    ``problems`` (failure lines) and is never read."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        self.problems: list[str] = []
        self._files: list[str] = []
        self._bad: dict[str, str] = {}  # name -> why it is never read ("is a symbolic link", ...)
        if path.is_dir():
            self._walk()
        elif not path.is_file():
            raise _Unreadable(str(path), "no such export directory or zip file")
        else:
            try:
                self.zip = zipfile.ZipFile(path)
            except _READ_ERRORS as exc:
                raise _Unreadable(str(path), f"neither an export directory nor a readable zip file ({exc})") from None
            for info in self.zip.infolist():
                name = info.filename
                why = _name_problems(name)
                if why:
                    self.problems.append(f"zip member {name!r} is not a plain relative path ({why}); {_PLAIN}")
                elif info.create_system == 3 and _not_plain(info.external_attr >> 16):  # Unix mode bits
                    self._refuse(name.rstrip("/"), _not_plain(info.external_attr >> 16))
                elif not name.endswith("/"):
                    self._files.append(name)
        self._plain = set(self._files)

    def _refuse(self, name: str, why: str) -> None:
        self._bad[name] = why
        self.problems.append(f"{name} {why}" + (f"; {_PLAIN}" if why.startswith("is ") else ""))

    def _walk(self) -> None:
        """Every plain file under the export, never following a link (rglob skips a linked
        folder, and reading through a link reads a file from elsewhere)."""
        todo = [""]
        while todo:
            rel = todo.pop()
            try:
                with os.scandir(self.path / rel) as it:
                    found = sorted(it, key=lambda d: d.name)
            except OSError as exc:
                self._refuse(rel or ".", f"cannot be listed ({exc.strerror or exc})")
                continue
            for d in found:
                name = f"{rel}/{d.name}" if rel else d.name
                if not _utf8(name) or _CONTROL.search(name):
                    what = "is not UTF-8" if not _utf8(name) else "contains a control character"
                    self.problems.append(f"file name {name!r} {what}; {_PLAIN}, with plain names")
                    continue
                try:
                    if d.is_symlink() or getattr(d, "is_junction", lambda: False)():
                        self._refuse(name, "is a symbolic link")
                    elif d.is_dir(follow_symlinks=False):
                        todo.append(name)
                    elif d.is_file(follow_symlinks=False):
                        self._files.append(name)
                    else:
                        self._refuse(name, _not_plain(d.stat(follow_symlinks=False).st_mode) or "is not a plain file")
                except OSError as exc:
                    self._refuse(name, f"cannot be examined ({exc.strerror or exc})")

    def _why_not_read(self, name: str) -> str | None:
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            at = "/".join(parts[:i])
            if at in self._bad:
                return self._bad[at] if i == len(parts) else f"lies under {at}, which {self._bad[at]}"
        return None

    def read(self, name: str) -> bytes:
        if _name_problems(name):
            raise _Unreadable(name, "unsafe path")
        why = self._why_not_read(name)
        if why:
            raise _Unreadable(name, why)
        try:
            return self.zip.read(name) if self.zip is not None else self._read_plain(name)
        except (KeyError, FileNotFoundError):
            raise _Unreadable(name, "missing") from None
        except _READ_ERRORS as exc:
            raise _Unreadable(name, f"unreadable ({exc})") from None

    def _read_plain(self, name: str) -> bytes:
        if name not in self._plain:
            raise FileNotFoundError(name)
        # What the walk saw as a plain file; never follow a link, or block on a FIFO, put there since.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        with open(os.open(self.path / name, flags), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise _Unreadable(name, "is not a plain file")
            return f.read()

    def read_json(self, name: str):
        try:
            return json.loads(self.read(name))
        except (ValueError, RecursionError) as exc:  # includes UnicodeDecodeError
            raise _Unreadable(name, f"not valid JSON ({exc})") from None

    def names(self) -> list[str]:
        """Every plain file, as a list: a zip can hold one name twice (reported by the caller)."""
        return list(self._files)


_PLAIN = "an export holds plain files only"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FILE_TYPES = ((stat.S_ISLNK, "is a symbolic link"), (stat.S_ISFIFO, "is not a plain file (a FIFO)"),
               (stat.S_ISSOCK, "is not a plain file (a socket)"), (stat.S_ISCHR, "is not a plain file (a device)"),
               (stat.S_ISBLK, "is not a plain file (a device)"))


def _not_plain(mode: int) -> str | None:
    """Why a file of this mode is not a plain file or folder (None when it is one, or untyped)."""
    if stat.S_IFMT(mode) in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    return next((why for test, why in _FILE_TYPES if test(mode)), f"is not a plain file (type {stat.S_IFMT(mode):o})")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a name that was not UTF-8 on disk (surrogate escapes)
        return False
    return True


def _name_problems(name: str) -> str:
    """Why a zip member name (or a name asked for) is not a plain relative path; "" if it is."""
    why = []
    if _CONTROL.search(name):
        why.append("contains a control character")
    if "\\" in name:
        why.append("contains a backslash")
    flat = name.replace("\\", "/")
    if flat.startswith("/"):
        why.append("is an absolute path")
    elif re.match(r"[A-Za-z]:", flat):
        why.append("names a drive")
    body = flat[:-1] if flat.endswith("/") else flat
    if any(part in ("", ".", "..") for part in body.lstrip("/").split("/")):
        why.append("has an empty, '.' or '..' part")
    norm = posixpath.normpath(flat) if flat else ""
    if why and (norm == ".." or norm.startswith("../")):
        why.append(f"it points outside the export ({norm!r})")
    elif why and norm != body:
        why.append(f"it normalises to {norm!r}")
    return "; ".join(why)


def _hexes(values) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def _is_hex64(v) -> bool:
    return isinstance(v, str) and _HEX64.fullmatch(v) is not None


def _is_int(v) -> bool:
    return type(v) is int  # not bool, not float


def _show(v) -> str:
    if v is _MISSING:
        return "missing"
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _manifest_problems(m: dict) -> list[str]:
    """Shape of the manifest: types, canonical file names, unique seqs.  Everything after this
    may rely on it.  Each problem names the field (and the entry) it is about."""
    out: list[str] = []

    def need(ok: bool, where: str, what: str, value) -> bool:
        if not ok:
            out.append(f"manifest.json: {where} must be {what}, got {_show(value)}")
        return ok

    def get(obj: dict, k: str):
        return obj.get(k, _MISSING)

    need(isinstance(get(m, "origin"), str), "origin", "a string", get(m, "origin"))
    size_ok = need(_is_int(get(m, "tree_size")) and m["tree_size"] >= 0, "tree_size", "an integer >= 0",
                   get(m, "tree_size"))
    need(_is_hex64(get(m, "root_hash")), "root_hash", "64 lowercase hex digits", get(m, "root_hash"))
    need(get(m, "checkpoint") == "checkpoint.txt", "checkpoint", "'checkpoint.txt'", get(m, "checkpoint"))
    need(get(m, "public_key") == "public-key.txt", "public_key", "'public-key.txt'", get(m, "public_key"))
    files = get(m, "files")
    if need(isinstance(files, dict), "files", "an object {path: sha256}", files):
        for name, digest in files.items():
            need(_is_hex64(digest), f"files[{name!r}]", "64 lowercase hex digits", digest)
    entries = get(m, "entries")
    if need(isinstance(entries, list), "entries", "a list", entries):
        seen: set[int] = set()
        for i, item in enumerate(entries):
            if not need(isinstance(item, dict), f"entries[{i}]", "an object", item):
                continue
            seq = get(item, "seq")
            if not need(_is_int(seq) and seq >= 1, f"entries[{i}].seq", "an integer >= 1", seq):
                continue
            tag = f"entry {seq}"
            if seq in seen:
                out.append(f"manifest.json: {tag} is listed more than once")
                continue
            seen.add(seq)
            n = f"{seq:08d}"
            need(get(item, "entry") == f"entries/{n}.entry", f"{tag} entry", f"'entries/{n}.entry'", get(item, "entry"))
            need(_is_hex64(get(item, "entry_sha256")), f"{tag} entry_sha256", "64 lowercase hex digits",
                 get(item, "entry_sha256"))
            need(get(item, "proof") == f"proofs/{n}.json", f"{tag} proof", f"'proofs/{n}.json'", get(item, "proof"))
            doc, why = get(item, "document"), get(item, "document_withheld")
            need(doc in (None, f"documents/{n}.pdf"), f"{tag} document", f"null or 'documents/{n}.pdf'", doc)
            need(why is None or (isinstance(why, str) and why != ""), f"{tag} document_withheld",
                 "null or a reason", why)
            if (doc is None) == (why is None):
                out.append(f"manifest.json: {tag} must have exactly one of document and document_withheld set")
            lines = get(item, "lines")
            if not need(isinstance(lines, list), f"{tag} lines", "a list", lines):
                continue
            for k, ln in enumerate(lines):
                where = f"{tag} lines[{k}]"
                if not need(isinstance(ln, dict), where, "an object", ln):
                    continue
                need(get(ln, "file") == f"lines/{n}-{k}.json", f"{where}.file", f"'lines/{n}-{k}.json'", get(ln, "file"))
                need(_is_hex64(get(ln, "salt")), f"{where}.salt", "64 lowercase hex digits (32 bytes)", get(ln, "salt"))
                need(_is_hex64(get(ln, "commitment")), f"{where}.commitment", "64 lowercase hex digits",
                     get(ln, "commitment"))
            extracts = item.get("extracts", [])
            if not need(isinstance(extracts, list), f"{tag} extracts", "a list", extracts):
                continue
            for k, ex in enumerate(extracts):
                where = f"{tag} extracts[{k}]"
                if not need(isinstance(ex, dict), where, "an object", ex):
                    continue
                line = get(ex, "line")
                if need(_is_int(line) and 0 <= line < len(lines), f"{where}.line",
                        f"an index into lines (0..{len(lines) - 1})", line):
                    need(get(ex, "file") == f"extracts/{n}-{line}.pdf", f"{where}.file",
                         f"'extracts/{n}-{line}.pdf'", get(ex, "file"))
    cons = m.get("consistency", [])
    if need(isinstance(cons, list), "consistency", "a list", cons):
        seen_sizes: set[int] = set()
        for i, c in enumerate(cons):
            where = f"consistency[{i}]"
            if not need(isinstance(c, dict), where, "an object", c):
                continue
            s = get(c, "from_size")
            top = m["tree_size"] if size_ok else None
            if not need(_is_int(s) and s >= 1 and (top is None or s < top), f"{where}.from_size",
                        f"an integer in 1..{top - 1 if top else 'tree_size - 1'}", s):
                continue
            if s in seen_sizes:
                out.append(f"manifest.json: consistency from size {s} is listed more than once")
                continue
            seen_sizes.add(s)
            need(get(c, "file") == f"{CONSISTENCY_DIR}{s:08d}.json", f"{where}.file",
                 f"'{CONSISTENCY_DIR}{s:08d}.json'", get(c, "file"))
    return out


def _proof_hashes(r: _Reader, name: str, want: dict[str, int]) -> list[bytes]:
    """The ``hashes`` of a proof file whose other keys must equal ``want`` exactly (so that
    the file holds nothing but the proof).  Raises _Unreadable naming the problem."""
    obj = r.read_json(name)
    keys = sorted(want) + ["hashes"]
    if not isinstance(obj, dict) or sorted(obj) != sorted(keys):
        raise _Unreadable(name, f"must be an object with exactly the keys {', '.join(sorted(keys))}")
    for k, v in want.items():
        if not _is_int(obj[k]) or obj[k] != v:
            raise _Unreadable(name, f"{k} is {_show(obj[k])}, expected {v}")
    if not isinstance(obj["hashes"], list) or not all(_is_hex64(h) for h in obj["hashes"]):
        raise _Unreadable(name, "hashes must be a list of 64-hex-digit strings")
    return _hexes(obj["hashes"])


def _carries_line(pdf: bytes, line: bytes) -> bool:
    """Does the extract PDF embed exactly ``line`` as an uncompressed stream?  The portal
    attaches the committed line's canonical bytes, unfiltered, so that this check needs no PDF
    library.  Every unfiltered stream holding a JSON object is an embedded line: there must be
    one at least, and each must be exactly ``line`` (a second, different line is a failure)."""
    found = []
    for m in re.finditer(rb"stream\r?\n(\{.*?\})\r?\nendstream", pdf, re.S):
        try:
            if isinstance(json.loads(m.group(1)), dict):
                found.append(m.group(1))
        except (ValueError, RecursionError):
            continue  # binary (compressed) data that happens to start with "{"
    return bool(found) and all(f == line for f in found)


# Fields of a disclosed line that say whose it is (the portal's lines carry both).
PATIENT_FIELDS = ("mrn", "patient_id")


def _whose(line: bytes) -> str | None:
    """"mrn 'A-0001' / patient_id 'p-1'" for a verified line naming its patient, else None."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        return None
    ids = [f"{k} {_show(obj[k])}" for k in PATIENT_FIELDS if isinstance(obj.get(k), (str, int))]
    return " / ".join(ids) or None


def _whose_summary(whose: list[str | None]) -> str:
    """" (lines of mrn '1' / patient_id '7')": whose the verified lines are, as the committed
    lines themselves say, so the auditor sees whose record was checked; "" if none says."""
    named = sorted(set(w for w in whose if w))
    if not named:
        return ""
    unnamed = sum(1 for w in whose if not w)
    return f" (lines of {'; '.join(named)}" + (f"; {unnamed} naming no patient" if unnamed else "") + ")"


def verify_export(path: str | Path, key: str | None = None, since: str | None = None,
                  witness_keys: Sequence[str] = ()) -> ExportReport:
    """Check an export.  ``key``: verifier key text (else the export's own, with a warning);
    ``since``: an older signed checkpoint text the auditor kept; ``witness_keys``: witness keys
    (type 0x04) the auditor trusts: checkpoint.txt must carry a valid C2SP cosignature by each.
    Never raises for bad content; every problem becomes a precise failure line.
    """
    rep = ExportReport()
    fail = rep.failures.append
    try:
        r = _Reader(Path(path))
    except _Unreadable as exc:
        fail(str(exc))
        return rep
    rep.failures.extend(r.problems)  # links, special files, zip names outside their folder
    try:
        manifest = r.read_json("manifest.json")
    except _Unreadable as exc:
        fail(str(exc))
        return rep
    if not isinstance(manifest, dict):
        fail(f"manifest.json: top level must be a JSON object, got {type(manifest).__name__}")
        return rep
    if manifest.get("format") != EXPORT_FORMAT:
        fail(f"manifest.json: unknown export format {_show(manifest.get('format', _MISSING))}")
        return rep
    problems = _manifest_problems(manifest)
    if problems:
        rep.failures.extend(problems)
        rep.notes.append("WARNING: manifest.json is malformed, so no file of the export was checked")
        return rep

    # 1. Files: each listed one has its hash; each present one is listed; each evidence file is
    # the one an entry (or consistency proof) names, so that a proof covers its content.
    listed: dict[str, str] = manifest["files"]
    all_names = r.names()
    for name, count in sorted(Counter(all_names).items()):
        if count > 1:
            fail(f"{name}: present {count} times in the zip (only one copy is checked)")
    names = set(all_names)
    for name, digest in sorted(listed.items()):
        try:
            got = hashlib.sha256(r.read(name)).hexdigest()
        except _Unreadable as exc:
            fail(f"{name}: listed in manifest but {exc.why}")
            continue
        if got != digest:
            fail(f"{name}: sha256 mismatch (manifest {digest}, file {got})")
    # The bundled verifier (and the __pycache__ running it leaves behind) is not evidence and
    # cannot vouch for itself; it is outside the checks by design (docs/audit-format.md §7).
    in_verifier = {n for n in names | set(listed) if n.startswith(VERIFIER_PREFIX)}
    bundled = in_verifier - set(listed)
    referenced: set[str] = set()
    for item in manifest["entries"]:
        referenced |= {item["entry"], item["proof"]} | {ln["file"] for ln in item["lines"]}
        referenced |= {ex["file"] for ex in item.get("extracts", [])}
        if item["document"]:
            referenced.add(item["document"])
    cons_files = {c["file"] for c in manifest.get("consistency", [])}
    for name in sorted((names | set(listed)) - in_verifier - set(FIXED_FILES)):
        unlisted = "" if name in listed else " (and it is not listed in manifest.files)"
        if name in cons_files:
            if unlisted:
                fail(f"{name}: file not listed in manifest")
        elif name.startswith(CONSISTENCY_DIR):
            fail(f"{name} is not referenced by manifest.consistency: it is not checked{unlisted}")
        elif name not in referenced:
            fail(f"{name} is not referenced by any entry: its content is not covered by a proof{unlisted}")
        elif unlisted:
            fail(f"{name}: file not listed in manifest")
    for name in sorted(names & (set(FIXED_FILES) - set(listed) - {"manifest.json"})):
        fail(f"{name}: file not listed in manifest")
    if bundled:
        rep.notes.append(f"{VERIFIER_PREFIX}: {len(bundled)} file(s) of the bundled verifier, not checked "
                         "(a verifier cannot vouch for itself)")

    # 2. The signed checkpoint.
    export_key = None
    if "public-key.txt" in names:
        try:
            export_key = r.read("public-key.txt").decode("utf-8").strip()
        except _Unreadable as exc:
            fail(str(exc))
        except UnicodeDecodeError:
            fail("public-key.txt: not UTF-8 text")
    try:
        verifier: Verifier = parse_verifier(key if key is not None else (export_key or ""))
    except NoteError as exc:
        fail(f"public key unusable ({'--key' if key is not None else 'public-key.txt'}): {exc}")
        return rep
    if key is None:
        rep.notes.append("WARNING: using the key shipped inside the export; pass --key with an independently obtained key")
    elif export_key and export_key != verifier.text():
        rep.notes.append("note: the export's public-key.txt differs from --key; --key is used")
    try:
        ck = open_checkpoint(r.read("checkpoint.txt").decode("utf-8"), verifier)
    except _Unreadable as exc:
        fail(str(exc))
        return rep
    except UnicodeDecodeError:
        fail("checkpoint.txt: not UTF-8 text")
        return rep
    except NoteError as exc:
        fail(f"checkpoint.txt: {exc}")
        return rep
    rep.notes.append(f"checkpoint signed by {verifier.name}+{verifier.key_id.hex()}: size {ck.size}, root {ck.root.hex()}")
    if witness_keys:
        from .cosignature import parse_witness_key

        note_text = r.read("checkpoint.txt").decode("utf-8")
        for wk_text in witness_keys:
            try:
                wk = parse_witness_key(wk_text)
                cs = wk.find(note_text)
            except NoteError as exc:
                fail(f"checkpoint.txt: witness {wk_text.split('+', 1)[0]}: {exc}")
                continue
            when = _dt.datetime.fromtimestamp(cs.timestamp, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            rep.notes.append(f"checkpoint cosigned by witness {wk.name}+{wk.key_id.hex()} at {when}: "
                             f"the log existed at this size then, and the witness saw no other history")
    if manifest["origin"] != ck.origin:
        fail(f"manifest origin {_show(manifest['origin'])} differs from the checkpoint origin {ck.origin!r}")
    if (manifest["tree_size"], manifest["root_hash"]) != (ck.size, ck.root.hex()):
        fail("manifest tree_size/root_hash differ from the signed checkpoint")

    # 3. Each entry, its proof, its document and its disclosed lines.
    if not manifest["entries"]:
        fail("manifest.json lists no entries: the export proves nothing")
    n_entries = n_docs = n_lines = n_extracts = 0
    extracts_total = sum(len(item.get("extracts", [])) for item in manifest["entries"])
    docs_total = sum(1 for item in manifest["entries"] if item["document"])
    lines_total = sum(len(item["lines"]) for item in manifest["entries"])
    by_seq: dict[int, tuple[str, str | None]] = {}  # seq -> (chain hash, the prev it names)
    whose: list[str | None] = []  # the patient each verified line names, if it names one
    mrns_seen: set = set()
    named_checkpoints: list = []  # (seq, size, hex root) each exported entry's stamp names
    for item in manifest["entries"]:
        seq = item["seq"]
        tag = f"entry {seq}"
        before = len(rep.failures)
        try:
            data = r.read(item["entry"])
        except _Unreadable as exc:
            fail(f"{tag}: entry file {exc}")
            continue
        try:
            e = parse_entry(data)
        except EntryFormatError as exc:
            fail(f"{tag}: {item['entry']} is not a valid entry: {exc}")
            continue
        by_seq[seq] = (chain_hash(data), e["prev_hash"])
        if e.get("checkpoint"):
            named_checkpoints.append((seq, e["checkpoint"]["size"], e["checkpoint"]["root"]))
        h = hashlib.sha256(data).hexdigest()
        if h != item["entry_sha256"]:
            fail(f"{tag}: entry file hash {h} differs from manifest")
        if e["seq"] != seq:
            fail(f"{tag}: entry bytes say seq {e['seq']!r}")
        if e["log"] != ck.origin:
            fail(f"{tag}: entry belongs to log {e['log']!r}, checkpoint is {ck.origin!r}")
        try:
            hashes = _proof_hashes(r, item["proof"], {"leaf_index": seq - 1, "tree_size": ck.size})
        except _Unreadable as exc:
            fail(f"{tag}: inclusion proof {exc}")
        else:
            if not merkle.verify_inclusion(merkle.leaf_hash(data), seq - 1, ck.size, hashes, ck.root):
                fail(f"{tag}: inclusion proof does not verify against checkpoint size {ck.size}")
            elif len(rep.failures) == before:
                n_entries += 1
                rep.notes.append(f"{tag}: included in the log at index {seq - 1} ({e['kind']}, {e['occurred_at']})")
        doc = e["doc"]
        if item["document"]:
            try:
                pdf = r.read(item["document"])
            except _Unreadable as exc:
                fail(f"{tag}: document {exc}")
            else:
                got = hashlib.sha256(pdf).hexdigest()
                if got != doc["sha256"]:
                    fail(f"{tag}: document sha256 mismatch (entry says {doc['sha256']}, file {got})")
                elif len(pdf) != doc["size"]:
                    fail(f"{tag}: document size mismatch (entry says {doc['size']}, file {len(pdf)})")
                else:
                    n_docs += 1
                    rep.notes.append(f"{tag}: document matches the entry (sha256 {got})")
        else:
            rep.notes.append(f"{tag}: document not included ({item['document_withheld']})")
        for ln in item["lines"]:
            try:
                lb = r.read(ln["file"])
                json.loads(lb)
            except _Unreadable as exc:
                fail(f"{tag}: disclosed line {exc}")
                continue
            except (ValueError, RecursionError) as exc:
                fail(f"{tag}: disclosed line {ln['file']} is not JSON ({exc})")
                continue
            c = commit_line_bytes(lb, bytes.fromhex(ln["salt"]))
            if c not in e["line_commitments"]:
                fail(f"{tag}: disclosed line {ln['file']} matches no line commitment in the entry")
            elif c != ln["commitment"]:
                fail(f"{tag}: disclosed line {ln['file']}: manifest commitment {ln['commitment']} is not the line's ({c})")
            else:
                n_lines += 1
                whose.append(_whose(lb))
                obj = json.loads(lb)
                who = obj.get("mrn", obj.get("patient_id")) if isinstance(obj, dict) else None
                if isinstance(who, (str, int)):
                    mrns_seen.add(who)
                rep.notes.append(f"{tag}: disclosed line {ln['file']} is committed in the entry")
        for ex in item.get("extracts", []):
            ln = item["lines"][ex["line"]]
            try:
                pdf, lb = r.read(ex["file"]), r.read(ln["file"])
            except _Unreadable as exc:
                fail(f"{tag}: extract {exc}")
                continue
            if not _carries_line(pdf, lb):
                fail(f"{tag}: extract {ex['file']} does not carry the committed line {ln['file']} "
                     f"(its embedded line differs, or is missing): it is not the archived line")
            else:
                n_extracts += 1
                rep.notes.append(f"{tag}: extract {ex['file']} carries the committed line {ln['file']}")
    for seq, (_h, prev) in by_seq.items():
        if seq - 1 in by_seq and prev != by_seq[seq - 1][0]:
            fail(f"entry {seq}: prev_hash does not match the hash of entry {seq - 1}")

    # 4. Consistency proofs: well-formed always; verified against an old head with --since.
    cons: dict[int, list[bytes]] = {}
    for c in manifest.get("consistency", []):
        try:
            cons[c["from_size"]] = _proof_hashes(r, c["file"], {"first": c["from_size"], "second": ck.size})
        except _Unreadable as exc:
            fail(f"consistency proof from size {c['from_size']}: {exc}")
    # Every entry's checkpoint reference (printed on its stamp) must be a head of this log: the
    # signed checkpoint itself, or a size the export proves consistent with it.
    for seq, c_size, c_root in named_checkpoints:
        if c_size == ck.size:
            if c_root != ck.root.hex():
                fail(f"entry {seq}: names checkpoint {c_size}:{c_root}, not the signed root at that size")
        elif c_size > ck.size:
            fail(f"entry {seq}: names checkpoint size {c_size}, beyond the signed checkpoint ({ck.size})")
        elif c_size not in cons:
            fail(f"entry {seq}: names checkpoint size {c_size}, which no consistency proof in the export "
                 f"ties to the signed checkpoint")
        elif not merkle.verify_consistency(c_size, ck.size, bytes.fromhex(c_root), ck.root, cons[c_size]):
            fail(f"entry {seq}: names checkpoint {c_size}:{c_root}, which is not a head of the signed log "
                 f"(consistency proof does not verify)")
    if since is not None:
        try:
            old = open_checkpoint(since, verifier)
        except NoteError as exc:
            fail(f"--since checkpoint does not verify: {exc}")
        else:
            if old.size > ck.size:
                fail(f"--since checkpoint has size {old.size}, larger than this export's {ck.size}: log truncated or rolled back")
            elif old.size == ck.size:
                if old.root != ck.root:
                    fail(f"--since checkpoint and this export disagree on the root at size {ck.size}: history rewritten")
                else:
                    rep.notes.append("--since checkpoint is the same tree head")
            elif old.size != 0 and old.size not in cons:
                fail(f"--since: export holds no usable consistency proof from size {old.size}")
            elif merkle.verify_consistency(old.size, ck.size, old.root, ck.root, cons.get(old.size, [])):
                rep.notes.append(f"--since: the log only grew from size {old.size} to {ck.size}")
            else:
                fail(f"--since: consistency proof from size {old.size} to {ck.size} does not verify: history rewritten")

    # One export, one patient: lines naming different patients mean lines were chosen from
    # something other than the chain (e.g. an index row moved to another patient).
    mrns = sorted(mrns_seen, key=str)
    if len(mrns) > 1:
        fail(f"the disclosed lines name {len(mrns)} different patients ({', '.join(map(_show, mrns))}); "
             f"a patient export discloses one patient's lines only")
    rep.notes.append(f"summary: verified {n_entries} of {len(manifest['entries'])} entries, "
                     f"{n_docs} of {docs_total} documents ({len(manifest['entries']) - docs_total} withheld), "
                     f"{n_lines} of {lines_total} disclosed lines{_whose_summary(whose)}"
                     + (f", {n_extracts} of {extracts_total} extracts" if extracts_total else ""))
    return rep
