"""The standalone verifier against a forger who edits an export and re-hashes manifest.files
(the manifest is not signed), and against malformed input: every case must end in a precise
FAIL line (exit 1) or a one-line usage error (exit 2), never a traceback."""

from __future__ import annotations

import hashlib
import json
import random
import zipfile
from pathlib import Path

import pytest

from audit_archive.__main__ import main
from audit_archive.canonical import commit_line, new_salt
from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.export import export
from audit_archive.offline import verify_export

from .helpers import ORIGIN, do_append


@pytest.fixture
def exp(engine, store, key_path, tmp_path):
    """An export of entry 1 (group roster: document withheld, patient A's line disclosed) and
    entry 2 (A's own note: document included), against a checkpoint of size 4, with a
    consistency proof from the older checkpoint of size 1."""
    salt_a, salt_b = new_salt(), new_salt()
    line_a = {"patient_id": "A", "status": "present", "minutes": 180}
    do_append(engine, store, 1, lines=[commit_line(line_a, salt_a), commit_line({"patient_id": "B"}, salt_b)])
    with engine.begin() as conn:
        old = make_checkpoint(conn, key_path, ORIGIN).note
    do_append(engine, store, 3, kind="note")
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    pub = public_key_text(key_path, ORIGIN)
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2}, line_disclosures={1: [(line_a, salt_a)]},
               public_key_text=pub)
    return {"out": out, "pub": pub, "old": old, "tmp": tmp_path}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def forge(out: Path, mutate=None) -> None:
    """What a forger does: list every file present with its hash, then change the manifest
    (``mutate`` edits it in place, or returns a replacement)."""
    m = _manifest(out)
    m["files"] = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(out.rglob("*")) if p.is_file() and p.name != "manifest.json"
                  and not p.relative_to(out).as_posix().startswith("verifier/")}
    if mutate is not None:
        replaced = mutate(m)
        m = m if replaced is None else replaced
    (out / "manifest.json").write_text(json.dumps(m, indent=2))


def failures(exp, **kw) -> list[str]:
    rep = verify_export(exp["out"], key=exp["pub"], **kw)
    assert not rep.ok
    assert "RESULT: all checks passed" not in rep.text()
    return rep.failures


def assert_fails(exp, fragment: str, **kw) -> None:
    fs = failures(exp, **kw)
    assert any(fragment in f for f in fs), "\n".join(fs)


# -- 1. forged files that nothing covers ------------------------------------------------------

def test_good_export_passes_with_a_summary(exp):
    rep = verify_export(exp["out"], key=exp["pub"], since=exp["old"])
    assert rep.ok, rep.text()
    assert ("summary: verified 2 of 2 entries, 1 of 1 documents (1 withheld), 1 of 1 disclosed lines"
            in rep.text())


def test_forged_line_dropped_from_its_entry(exp):
    """(a) edit a disclosed line, drop it from the entry's lines, re-hash files."""
    p = exp["out"] / "lines/00000001-0.json"
    p.write_bytes(p.read_bytes().replace(b"present", b"absent!"))

    def drop(m):
        m["entries"][0]["lines"] = []
    forge(exp["out"], drop)
    assert_fails(exp, "lines/00000001-0.json is not referenced by any entry: its content is not covered by a proof")


def test_forged_document_of_a_withheld_entry(exp):
    """(b) a document put in for an entry whose document is marked withheld."""
    (exp["out"] / "documents/00000001.pdf").write_bytes(b"%PDF-1.7 forged")
    forge(exp["out"])
    assert_fails(exp, "documents/00000001.pdf is not referenced by any entry: its content is not covered by a proof")


def test_rewritten_entry_dropped_from_the_manifest(exp):
    """(c) rewrite entry 2, then drop it from manifest.entries so no proof is checked."""
    p = exp["out"] / "entries/00000002.entry"
    p.write_bytes(p.read_bytes().replace(b'"note"', b'"nope"'))

    def drop(m):
        m["entries"] = m["entries"][:1]
    forge(exp["out"], drop)
    fs = failures(exp)
    for name in ("entries/00000002.entry", "proofs/00000002.json", "documents/00000002.pdf"):
        assert f"{name} is not referenced by any entry: its content is not covered by a proof" in fs, fs


def test_no_entries_is_a_failure(exp):
    """(d) an export that checks nothing must not say all checks passed."""
    def empty(m):
        m["entries"] = []
    forge(exp["out"], empty)
    fs = failures(exp)
    assert "manifest.json lists no entries: the export proves nothing" in fs
    assert "entries/00000001.entry is not referenced by any entry: its content is not covered by a proof" in fs


def test_files_outside_the_evidence_dirs_must_be_explained_too(exp):
    (exp["out"] / "extra.txt").write_text("this claims something")
    forge(exp["out"])
    assert_fails(exp, "extra.txt is not referenced by any entry: its content is not covered by a proof")


def test_unlisted_unreferenced_file_is_named_once(exp):
    (exp["out"] / "proofs/00000003.json").write_text("{}")
    fs = [f for f in failures(exp) if "proofs/00000003.json" in f]
    assert fs == ["proofs/00000003.json is not referenced by any entry: its content is not covered by a proof "
                  "(and it is not listed in manifest.files)"]


def test_unreferenced_consistency_file(exp):
    (exp["out"] / "consistency/00000002.json").write_text('{"first": 2, "second": 4, "hashes": []}')
    forge(exp["out"])
    assert_fails(exp, "consistency/00000002.json is not referenced by manifest.consistency")


def test_document_path_of_another_entry_is_refused(exp):
    """Entry 1 (withheld) may not borrow entry 2's document by pointing at it."""
    def borrow(m):
        m["entries"][0]["document"] = "documents/00000002.pdf"
        m["entries"][0]["document_withheld"] = None
    forge(exp["out"], borrow)
    assert_fails(exp, "manifest.json: entry 1 document must be null or 'documents/00000001.pdf', "
                      "got 'documents/00000002.pdf'")


def test_manifest_origin_must_be_the_checkpoint_origin(exp):
    def other(m):
        m["origin"] = "other.example.org/audit"
    forge(exp["out"], other)
    assert failures(exp) == ["manifest origin 'other.example.org/audit' differs from the checkpoint origin "
                             "'portal.example.org/audit'"]


def test_proof_file_holds_nothing_but_the_proof(exp):
    p = exp["out"] / "proofs/00000002.json"
    d = json.loads(p.read_text())
    d["note"] = "verified by the state auditor"
    p.write_text(json.dumps(d))
    forge(exp["out"])
    assert_fails(exp, "entry 2: inclusion proof proofs/00000002.json: must be an object with exactly the keys "
                      "hashes, leaf_index, tree_size")


def test_manifest_line_commitment_must_be_the_lines(exp):
    def wrong(m):
        m["entries"][0]["lines"][0]["commitment"] = "ab" * 32
    forge(exp["out"], wrong)
    assert_fails(exp, "entry 1: disclosed line lines/00000001-0.json: manifest commitment " + "ab" * 32)


def test_zip_with_a_name_twice(exp):
    z = exp["tmp"] / "dup.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(exp["out"].rglob("*")):
            if p.is_file():
                zf.writestr(p.relative_to(exp["out"]).as_posix(), p.read_bytes())
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("documents/00000002.pdf", b"%PDF-1.7 the other copy")
    rep = verify_export(z, key=exp["pub"])
    assert "documents/00000002.pdf: present 2 times in the zip (only one copy is checked)" in rep.failures


# -- 2. malformed manifests and files: a precise failure, never an exception ------------------

def _set(path, value):
    def mutate(m):
        *parents, last = path
        obj = m
        for k in parents:
            obj = obj[k]
        if value is _DELETE:
            del obj[last]
        else:
            obj[last] = value
    return mutate


_DELETE = object()
HEX = "ab" * 32

MALFORMED = [
    # (id, mutation of the manifest dict, expected failure fragment)
    ("top-level-list", lambda m: [], "manifest.json: top level must be a JSON object, got list"),
    ("top-level-string", lambda m: "manifest", "manifest.json: top level must be a JSON object, got str"),
    ("format", _set(["format"], "iop-audit-export/v9"), "manifest.json: unknown export format 'iop-audit-export/v9'"),
    ("origin-type", _set(["origin"], 5), "manifest.json: origin must be a string, got 5"),
    ("tree-size-str", _set(["tree_size"], "4"), "manifest.json: tree_size must be an integer >= 0, got '4'"),
    ("root-hash-int", _set(["root_hash"], 1), "manifest.json: root_hash must be 64 lowercase hex digits, got 1"),
    ("checkpoint-path", _set(["checkpoint"], "other.txt"), "manifest.json: checkpoint must be 'checkpoint.txt'"),
    ("files-list", _set(["files"], []), "manifest.json: files must be an object {path: sha256}, got []"),
    ("files-value", _set(["files", "README.txt"], 7), "manifest.json: files['README.txt'] must be 64 lowercase hex digits, got 7"),
    ("entries-object", _set(["entries"], {}), "manifest.json: entries must be a list, got {}"),
    ("entries-missing", _set(["entries"], _DELETE), "manifest.json: entries must be a list, got missing"),
    ("item-string", _set(["entries", 0], "x"), "manifest.json: entries[0] must be an object, got 'x'"),
    ("seq-string", _set(["entries", 0, "seq"], "1"), "manifest.json: entries[0].seq must be an integer >= 1, got '1'"),
    ("seq-bool", _set(["entries", 0, "seq"], True), "manifest.json: entries[0].seq must be an integer >= 1, got True"),
    ("seq-zero", _set(["entries", 0, "seq"], 0), "manifest.json: entries[0].seq must be an integer >= 1, got 0"),
    ("seq-float", _set(["entries", 0, "seq"], 1.0), "manifest.json: entries[0].seq must be an integer >= 1, got 1.0"),
    ("seq-missing", _set(["entries", 0, "seq"], _DELETE), "manifest.json: entries[0].seq must be an integer >= 1, got missing"),
    ("seq-twice", _set(["entries", 1, "seq"], 1), "manifest.json: entry 1 is listed more than once"),
    ("entry-path", _set(["entries", 0, "entry"], "entries/../manifest.json"),
     "manifest.json: entry 1 entry must be 'entries/00000001.entry', got 'entries/../manifest.json'"),
    ("entry-path-other-seq", _set(["entries", 0, "entry"], "entries/00000002.entry"),
     "manifest.json: entry 1 entry must be 'entries/00000001.entry', got 'entries/00000002.entry'"),
    ("entry-sha-none", _set(["entries", 0, "entry_sha256"], None),
     "manifest.json: entry 1 entry_sha256 must be 64 lowercase hex digits, got None"),
    ("proof-path", _set(["entries", 1, "proof"], "proofs/00000001.json"),
     "manifest.json: entry 2 proof must be 'proofs/00000002.json', got 'proofs/00000001.json'"),
    ("proof-list", _set(["entries", 1, "proof"], ["proofs/00000002.json"]),
     "manifest.json: entry 2 proof must be 'proofs/00000002.json', got ['proofs/00000002.json']"),
    ("document-int", _set(["entries", 1, "document"], 2),
     "manifest.json: entry 2 document must be null or 'documents/00000002.pdf', got 2"),
    ("withheld-int", _set(["entries", 0, "document_withheld"], 3),
     "manifest.json: entry 1 document_withheld must be null or a reason, got 3"),
    ("document-and-withheld", _set(["entries", 1, "document_withheld"], "no"),
     "manifest.json: entry 2 must have exactly one of document and document_withheld set"),
    ("neither-document-nor-withheld", _set(["entries", 0, "document_withheld"], None),
     "manifest.json: entry 1 must have exactly one of document and document_withheld set"),
    ("lines-string", _set(["entries", 0, "lines"], "lines/00000001-0.json"),
     "manifest.json: entry 1 lines must be a list, got 'lines/00000001-0.json'"),
    ("lines-missing", _set(["entries", 0, "lines"], _DELETE), "manifest.json: entry 1 lines must be a list, got missing"),
    ("line-list", _set(["entries", 0, "lines", 0], []), "manifest.json: entry 1 lines[0] must be an object, got []"),
    ("line-salt-int", _set(["entries", 0, "lines", 0, "salt"], 5),
     "manifest.json: entry 1 lines[0].salt must be 64 lowercase hex digits (32 bytes), got 5"),
    ("line-salt-short", _set(["entries", 0, "lines", 0, "salt"], "abcd"),
     "manifest.json: entry 1 lines[0].salt must be 64 lowercase hex digits (32 bytes), got 'abcd'"),
    ("line-commitment-upper", _set(["entries", 0, "lines", 0, "commitment"], HEX.upper()),
     "manifest.json: entry 1 lines[0].commitment must be 64 lowercase hex digits"),
    ("line-file", _set(["entries", 0, "lines", 0, "file"], "lines/00000002-0.json"),
     "manifest.json: entry 1 lines[0].file must be 'lines/00000001-0.json', got 'lines/00000002-0.json'"),
    ("consistency-object", _set(["consistency"], {}), "manifest.json: consistency must be a list, got {}"),
    ("consistency-item", _set(["consistency", 0], 1), "manifest.json: consistency[0] must be an object, got 1"),
    ("consistency-size-str", _set(["consistency", 0, "from_size"], "1"),
     "manifest.json: consistency[0].from_size must be an integer in 1..3, got '1'"),
    ("consistency-size-too-big", _set(["consistency", 0, "from_size"], 4),
     "manifest.json: consistency[0].from_size must be an integer in 1..3, got 4"),
    ("consistency-file", _set(["consistency", 0, "file"], "proofs/00000001.json"),
     "manifest.json: consistency[0].file must be 'consistency/00000001.json', got 'proofs/00000001.json'"),
]


@pytest.mark.parametrize("mutate,fragment", [pytest.param(m, f, id=i) for i, m, f in MALFORMED])
def test_malformed_manifest_gives_a_precise_failure(exp, mutate, fragment):
    forge(exp["out"], mutate)
    rep = verify_export(exp["out"], key=exp["pub"], since=exp["old"])  # must not raise
    assert not rep.ok
    assert any(fragment in f for f in rep.failures), rep.text()
    assert main(["verify", str(exp["out"]), "--key", exp["pub"]]) == 1


MALFORMED_FILES = [
    # (id, file, new bytes, expected failure fragment)
    ("manifest-not-json", "manifest.json", b"{not json", "manifest.json: not valid JSON"),
    ("manifest-not-utf8", "manifest.json", b'{"format": "\xff"}', "manifest.json: not valid JSON"),
    ("manifest-deep", "manifest.json", b"[" * 100000, "manifest.json: not valid JSON"),
    ("proof-list", "proofs/00000002.json", b"[]",
     "entry 2: inclusion proof proofs/00000002.json: must be an object with exactly the keys hashes, leaf_index, tree_size"),
    ("proof-index-str", "proofs/00000002.json", b'{"leaf_index": "1", "tree_size": 4, "hashes": []}',
     "entry 2: inclusion proof proofs/00000002.json: leaf_index is '1', expected 1"),
    ("proof-hash-int", "proofs/00000002.json", b'{"leaf_index": 1, "tree_size": 4, "hashes": [1]}',
     "entry 2: inclusion proof proofs/00000002.json: hashes must be a list of 64-hex-digit strings"),
    ("proof-not-json", "proofs/00000002.json", b"\x00\x01", "entry 2: inclusion proof proofs/00000002.json: not valid JSON"),
    ("entry-garbage", "entries/00000002.entry", b"garbage",
     "entry 2: entries/00000002.entry is not a valid entry: not an entry"),
    ("line-not-json", "lines/00000001-0.json", b"\xff\xfe", "entry 1: disclosed line lines/00000001-0.json is not JSON"),
    ("consistency-not-json", "consistency/00000001.json", b"nope",
     "consistency proof from size 1: consistency/00000001.json: not valid JSON"),
    ("consistency-wrong-second", "consistency/00000001.json", b'{"first": 1, "second": 9, "hashes": []}',
     "consistency proof from size 1: consistency/00000001.json: second is 9, expected 4"),
    ("checkpoint-not-utf8", "checkpoint.txt", b"\xff\xfe\n", "checkpoint.txt: not UTF-8 text"),
    ("public-key-not-utf8", "public-key.txt", b"\xff", "public-key.txt: not UTF-8 text"),
]


@pytest.mark.parametrize("name,data,fragment", [pytest.param(n, d, f, id=i) for i, n, d, f in MALFORMED_FILES])
def test_malformed_file_gives_a_precise_failure(exp, name, data, fragment):
    (exp["out"] / name).write_bytes(data)
    if name != "manifest.json":
        forge(exp["out"])
    rep = verify_export(exp["out"], key=exp["pub"], since=exp["old"])
    assert not rep.ok
    assert any(fragment in f for f in rep.failures), rep.text()


@pytest.mark.parametrize("name", ["checkpoint.txt", "consistency/00000001.json", "proofs/00000002.json",
                                  "entries/00000002.entry", "documents/00000002.pdf", "lines/00000001-0.json"])
def test_missing_file_gives_a_precise_failure(exp, name):
    (exp["out"] / name).unlink()
    rep = verify_export(exp["out"], key=exp["pub"], since=exp["old"])
    assert f"{name}: listed in manifest but missing" in rep.failures, rep.text()
    if name == "consistency/00000001.json":
        assert "--since: export holds no usable consistency proof from size 1" in rep.failures


def test_random_manifest_damage_never_raises(exp):
    """Replace random manifest values with values of other types; each run must fail cleanly."""
    good = _manifest(exp["out"])
    junk = [None, True, 0, -1, 1.5, "", "x", "entries/00000001.entry", [], [1], {}, {"a": 1}, HEX]
    rng = random.Random(2026)

    def paths(obj, prefix=()):
        yield prefix
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
        for k, v in items:
            yield from paths(v, prefix + (k,))
    all_paths = [p for p in paths(good) if p and p[0] != "verifier"]
    informational = {"document_withheld"}  # free text: any non-empty reason is acceptable
    for _ in range(200):
        m = json.loads(json.dumps(good))
        changed = []
        for path in rng.sample(all_paths, 2):
            try:
                _set(list(path), rng.choice(junk))(m)
                changed.append(path)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change replaced a parent
        (exp["out"] / "manifest.json").write_text(json.dumps(m))
        rep = verify_export(exp["out"], key=exp["pub"], since=exp["old"])  # must not raise
        if rep.ok:
            assert m == good or all(p[-1] in informational for p in changed), (changed, rep.text())


# -- 2. the command line: one-line usage errors (exit 2) ------------------------------------

def _run(capsys, argv):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _usage_error(capsys, argv, fragment):
    code, out, err = _run(capsys, argv)
    assert code == 2, out + err
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("python -m audit_archive verify: error: ") and fragment in err, err


def test_cli_since_missing(exp, capsys):
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", exp["pub"], "--since", "/nonexistent/ck.txt"],
                 "--since /nonexistent/ck.txt: no such file")


def test_cli_since_directory(exp, capsys):
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", exp["pub"], "--since", str(exp["tmp"])],
                 f"--since {exp['tmp']}: is a directory, not a checkpoint file")


def test_cli_since_binary(exp, capsys):
    p = exp["tmp"] / "ck.bin"
    p.write_bytes(b"\xff\xfe\x00")
    _usage_error(capsys, ["verify", str(exp["out"]), "--since", str(p)], f"--since {p}: is not UTF-8 text")


def test_cli_key_file_unreadable(exp, capsys, monkeypatch):
    keyfile = exp["tmp"] / "pub.txt"
    keyfile.write_text(exp["pub"])
    real = Path.read_text

    def denied(self, *a, **kw):
        if self == keyfile:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **kw)
    monkeypatch.setattr(Path, "read_text", denied)  # chmod 000 does not stop root
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", str(keyfile)],
                 f"--key {keyfile}: cannot read it (Permission denied)")


def test_cli_key_file_binary(exp, capsys):
    keyfile = exp["tmp"] / "pub.bin"
    keyfile.write_bytes(b"\xff\xfe")
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", str(keyfile)], f"--key {keyfile}: is not UTF-8 text")


def test_cli_key_directory(exp, capsys):
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", str(exp["tmp"])],
                 f"--key {exp['tmp']}: is a directory, not a key file")


def test_cli_key_neither_file_nor_key(exp, capsys):
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", "/no/such/key.txt"],
                 "--key '/no/such/key.txt': neither an existing file nor a verifier key")


def test_cli_key_too_long_for_a_path(exp, capsys):
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", "k" * 5000], "neither an existing file nor a verifier key")


def test_cli_key_file_holds_no_key(exp, capsys):
    keyfile = exp["tmp"] / "pub.txt"
    keyfile.write_text("hello\n")
    _usage_error(capsys, ["verify", str(exp["out"]), "--key", str(keyfile)],
                 f"--key {keyfile}: the file does not hold a verifier key")


def test_cli_path_missing(capsys, tmp_path):
    _usage_error(capsys, ["verify", str(tmp_path / "nope")], f"no such export: {tmp_path / 'nope'}")


def test_cli_path_plain_file(capsys, tmp_path):
    p = tmp_path / "export.zip"
    p.write_text("not a zip")
    _usage_error(capsys, ["verify", str(p)], f"{p}: not an export (neither a directory nor a zip file)")


def test_cli_key_file_works(exp, capsys):
    keyfile = exp["tmp"] / "pub.txt"
    keyfile.write_text(exp["pub"] + "\n")
    ck = exp["tmp"] / "old.txt"
    ck.write_text(exp["old"])
    code, out, _ = _run(capsys, ["verify", str(exp["out"]), "--key", str(keyfile), "--since", str(ck)])
    assert code == 0 and "RESULT: all checks passed" in out, out


def test_cli_manifest_not_an_object(exp, capsys):
    (exp["out"] / "manifest.json").write_text("[]")
    code, out, err = _run(capsys, ["verify", str(exp["out"]), "--key", exp["pub"]])
    assert code == 1 and err == "", err
    assert "FAIL manifest.json: top level must be a JSON object, got list" in out


def test_api_path_not_an_export(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text("x")
    assert verify_export(p).failures == [f"{p}: neither an export directory nor a readable zip file "
                                         "(File is not a zip file)"]
    assert verify_export(tmp_path / "nope").failures == [f"{tmp_path / 'nope'}: no such export directory or zip file"]


# -- 3. only plain files: symbolic links, special files, zip names outside their folder -------

PLAIN_ONLY = "is a symbolic link; an export holds plain files only"


def test_symlinked_folder_cannot_hide_a_forged_document(exp):
    """documents/ replaced by a link to a folder holding the real document and a forged one for
    entry 1 (whose document is withheld, so no check reads it): a walk that does not enter linked
    folders never sees the forgery, so every link is a failure."""
    out = exp["out"]
    elsewhere = exp["tmp"] / "elsewhere" / "forged"
    elsewhere.mkdir(parents=True)
    (out / "documents/00000002.pdf").rename(elsewhere / "00000002.pdf")
    (elsewhere / "00000001.pdf").write_bytes(b"%PDF-1.7 forged roster")
    (out / "documents").rmdir()
    (out / "documents").symlink_to(elsewhere, target_is_directory=True)
    fs = failures(exp)
    assert f"documents {PLAIN_ONLY}" in fs, fs
    # the listed document behind the link is not read through it, and says why
    assert "documents/00000002.pdf: listed in manifest but lies under documents, which is a symbolic link" in fs, fs
    assert main(["verify", str(out), "--key", exp["pub"]]) == 1


@pytest.mark.parametrize("where", ["documents/00000002.pdf", "NOTICE-extra.txt", "verifier/audit_archive/offline.py",
                                   "verifier/audit_archive"])
def test_any_symlink_is_a_failure(exp, where):
    out = exp["out"]
    p = out / where
    target = exp["tmp"] / "target"
    if p.is_dir():
        p.rename(target)
    elif p.exists():
        p.rename(target)
    else:
        target.write_text("x")
    p.symlink_to(target, target_is_directory=target.is_dir())
    fs = failures(exp)
    assert f"{where} {PLAIN_ONLY}" in fs, fs
    assert not any(f.startswith(f"{where} is not referenced") for f in fs), fs  # named once, as a link


def test_fifo_is_a_failure_and_never_read(exp):
    import os
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    out = exp["out"]
    (out / "lines/00000001-0.json").rename(exp["tmp"] / "line.json")
    os.mkfifo(out / "lines/00000001-0.json")  # reading it would block forever
    fs = failures(exp)
    assert "lines/00000001-0.json is not a plain file (a FIFO); an export holds plain files only" in fs, fs
    assert "lines/00000001-0.json: listed in manifest but is not a plain file (a FIFO)" in fs, fs


def _zip_of(exp, name, extra: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    z = exp["tmp"] / name
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(exp["out"].rglob("*")):
            if p.is_file():
                zf.writestr(p.relative_to(exp["out"]).as_posix(), p.read_bytes())
        for n, b in extra.items():
            zi = zipfile.ZipInfo(n, (2000, 1, 1, 0, 0, 0))
            if modes and n in modes:
                zi.external_attr = modes[n] << 16
            zf.writestr(zi, b)
    return z


@pytest.mark.parametrize("member,why", [
    ("verifier/../documents/00000001.pdf", "normalises to 'documents/00000001.pdf'"),
    ("verifier/audit_archive/../../documents/00000001.pdf", "normalises to 'documents/00000001.pdf'"),
    ("verifier\\..\\documents\\00000001.pdf", "contains a backslash"),
    ("verifier/..\\documents\\00000001.pdf", "contains a backslash"),
    ("/documents/00000001.pdf", "is an absolute path"),
    ("verifier//documents/00000001.pdf", "has an empty, '.' or '..' part"),
    ("verifier/./x.py", "normalises to 'verifier/x.py'"),
    ("C:/documents/00000001.pdf", "names a drive"),
    ("../../documents/00000001.pdf", "it points outside the export ('../../documents/00000001.pdf')"),
])
def test_zip_member_outside_its_folder_is_a_failure(exp, member, why):
    z = _zip_of(exp, "evil.zip", {member: b"%PDF-1.7 forged roster"})
    rep = verify_export(z, key=exp["pub"])
    assert not rep.ok, rep.text()
    want = f"zip member {member!r} is not a plain relative path"
    assert any(f.startswith(want) and why in f and f.endswith("an export holds plain files only")
               for f in rep.failures), rep.text()


def test_zip_symlink_member_is_a_failure(exp):
    import stat
    z = _zip_of(exp, "link.zip", {"verifier/audit_archive/evil.py": b"../../documents/00000002.pdf"},
                modes={"verifier/audit_archive/evil.py": stat.S_IFLNK | 0o777})
    rep = verify_export(z, key=exp["pub"])
    assert f"verifier/audit_archive/evil.py {PLAIN_ONLY}" in rep.failures, rep.text()


def test_good_zip_still_passes(exp):
    assert verify_export(_zip_of(exp, "good.zip", {}), key=exp["pub"]).ok


def test_undecodable_file_name_is_reported_not_a_traceback(exp, capsys):
    import os
    import sys
    if sys.platform in ("darwin", "win32"):
        pytest.skip("file names must be valid Unicode here")
    (exp["out"] / os.fsdecode(b"extra-\xff.txt")).write_bytes(b"x")
    code, out, err = _run(capsys, ["verify", str(exp["out"]), "--key", exp["pub"]])
    assert code == 1 and "Traceback" not in err, err
    assert "FAIL file name 'extra-\\udcff.txt' is not UTF-8; an export holds plain files only" in out, out


# -- 4. the summary names whose lines were checked ---------------------------------------------

def test_summary_names_the_patient_of_the_verified_lines(exp):
    rep = verify_export(exp["out"], key=exp["pub"])
    assert rep.ok, rep.text()
    summary = next(n for n in rep.notes if n.startswith("summary: "))
    assert summary.endswith("1 of 1 disclosed lines (lines of patient_id 'A')"), summary


def test_summary_names_no_one_for_a_line_that_does_not_verify(exp):
    p = exp["out"] / "lines/00000001-0.json"
    p.write_bytes(p.read_bytes().replace(b'"A"', b'"Z"'))
    forge(exp["out"])
    rep = verify_export(exp["out"], key=exp["pub"])
    summary = next(n for n in rep.notes if n.startswith("summary: "))
    assert summary.endswith("0 of 1 disclosed lines"), summary


def test_non_ascii_file_name_on_an_ascii_terminal(exp):
    """A FAIL naming a file is printed even where stdout cannot show its name (exit 1, no traceback)."""
    import os
    import subprocess
    import sys
    (exp["out"] / "extra-\u00e9\u4e2d.txt").write_bytes(b"x")
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "audit_archive", "verify", str(exp["out"]), "--key", exp["pub"]],
                       capture_output=True, text=True, cwd=exp["tmp"],
                       env={**os.environ, "PYTHONPATH": str(root), "PYTHONIOENCODING": "ascii"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "FAIL extra-\\xe9\\u4e2d.txt is not referenced by any entry" in r.stdout, r.stdout


# -- the checkpoint each exported entry names (stamped on its document) ------------------------

@pytest.fixture
def exp_named_fake(engine, store, key_path, tmp_path, monkeypatch):
    """An export whose entry 2 names checkpoint size 1 with a root the log never had (its stamp
    and entry say so), e.g. a portal that stamped a forged or stale head; the newest checkpoint
    (size 4) is genuinely signed, and the entry's hashes and inclusion proof are all sound."""
    from audit_archive import ledger

    salt_a = new_salt()
    line_a = {"patient_id": "A", "status": "present", "minutes": 180}
    do_append(engine, store, 1, lines=[commit_line(line_a, salt_a)])
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    with monkeypatch.context() as m:
        m.setattr(ledger, "latest_checkpoint_ref",
                  lambda conn, below=None, origin=None: ledger.CheckpointRef(ORIGIN, 1, "ab" * 32))
        do_append(engine, store, 1, kind="note")
    do_append(engine, store, 2, kind="note")
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    pub = public_key_text(key_path, ORIGIN)
    out = tmp_path / "export-fake-ref"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2}, line_disclosures={1: [(line_a, salt_a)]},
               public_key_text=pub)
    return {"out": out, "pub": pub, "tmp": tmp_path}


def test_entry_naming_a_checkpoint_the_log_never_had_fails(exp_named_fake):
    fs = failures(exp_named_fake)
    assert any(f.startswith("entry 2: names checkpoint 1:" + "ab" * 32) and "not a head of the signed log" in f
               for f in fs), "\n".join(fs)
    # Entry 1 names no checkpoint (there was none), so only entry 2 is named.
    assert not any(f.startswith("entry 1: names checkpoint") for f in fs)


def test_entry_naming_a_checkpoint_no_consistency_proof_ties_fails(exp):
    """Entry 2 names the real checkpoint of size 1; with the export's consistency proof from size 1
    removed (and the manifest re-hashed), nothing ties that head to the signed checkpoint."""
    m = _manifest(exp["out"])
    for c in m.get("consistency", []):
        (exp["out"] / c["file"]).unlink()
    forge(exp["out"], lambda m: m.update(consistency=[]))
    assert_fails(exp, "entry 2: names checkpoint size 1, which no consistency proof in the export ties "
                      "to the signed checkpoint")



def test_export_of_backfilled_entries_passes_the_standalone_verifier(engine, store, key_path, tmp_path):
    """Entries carrying the backfill marker (docs/audit-format.md §1) are valid for the standalone
    verifier too; it reads the marker as part of the entry."""
    from audit_archive.entry import parse_entry

    res = do_append(engine, store, 2, backfill="imported history from the previous system")
    assert parse_entry(res[0].entry_bytes)["backfill"] == "imported history from the previous system"
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    pub = public_key_text(key_path, ORIGIN)
    out = tmp_path / "export-backfill"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={1, 2}, public_key_text=pub)
    rep = verify_export(out, key=pub)
    assert rep.ok, rep.text()
