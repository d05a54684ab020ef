"""Export for one patient and the standalone verifier (python -m audit_archive verify)."""

import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from audit_archive.__main__ import main
from audit_archive.canonical import commit_line, new_salt
from audit_archive.checkpoint import make_checkpoint, public_key_text
from audit_archive.export import ExportError, export
from audit_archive.offline import verify_export

from .helpers import do_append

from .helpers import ORIGIN

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ledger(engine, store, key_path):
    """Entry 1: group roster (patients A and B, withheld); entry 2: A's own note; entries 3-4 others."""
    salt_a, salt_b = new_salt(), new_salt()
    line_a = {"patient_id": "A", "status": "present", "minutes": 180}
    line_b = {"patient_id": "B", "status": "absent"}
    do_append(engine, store, 1, lines=[commit_line(line_a, salt_a), commit_line(line_b, salt_b)])
    with engine.begin() as conn:
        old = make_checkpoint(conn, key_path, ORIGIN).note
    do_append(engine, store, 3, kind="note")
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)
    return {"line_a": line_a, "salt_a": salt_a, "line_b": line_b, "salt_b": salt_b, "old": old, "pub": public_key_text(key_path, ORIGIN)}


def test_verifier_fails_an_export_disclosing_two_patients_lines(engine, store, ledger, tmp_path):
    """An export is one patient's: lines of two patients (each validly committed) mean the lines
    were chosen from something other than the chain (issue 9, finding 5)."""
    out = tmp_path / "mixed"
    with engine.connect() as conn:
        export(conn, store, out, [1], line_disclosures={1: [(ledger["line_a"], ledger["salt_a"]),
                                                            (ledger["line_b"], ledger["salt_b"])]},
               public_key_text=ledger["pub"])
    rep = verify_export(out, key=ledger["pub"])
    assert not rep.ok and "the disclosed lines name 2 different patients" in rep.text()


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_export_for_one_patient_verifies(engine, store, ledger, tmp_path, suffix):
    out = tmp_path / f"export{suffix}"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2},
               line_disclosures={1: [(ledger["line_a"], ledger["salt_a"])]}, public_key_text=ledger["pub"])
    rep = verify_export(out, key=ledger["pub"], since=ledger["old"])
    assert rep.ok, rep.text()
    t = rep.text()
    assert "entry 1: document not included (withheld" in t
    assert "entry 2: document matches the entry" in t
    assert "entry 1: disclosed line" in t and "the log only grew from size 1 to 4" in t
    names = zipfile.ZipFile(out).namelist() if suffix else [p.relative_to(out).as_posix() for p in out.rglob("*")]
    blob = b"".join(zipfile.ZipFile(out).read(n) for n in names) if suffix else b"".join(
        (out / n).read_bytes() for n in names if (out / n).is_file())
    assert b'"patient_id":"B"' not in blob and b'"B"' not in blob  # the other patient never appears
    assert not any(n.startswith("documents/00000001") for n in names)


def _tamper_dir(out: Path, what: str):
    if what == "entry":
        p = out / "entries/00000002.entry"
        p.write_bytes(p.read_bytes().replace(b'"note"', b'"nope"'))
    elif what == "document":
        p = out / "documents/00000002.pdf"
        b = bytearray(p.read_bytes()); b[100] ^= 1; p.write_bytes(bytes(b))
    elif what == "proof":
        p = out / "proofs/00000002.json"
        d = json.loads(p.read_text()); d["hashes"][0] = "00" * 32; p.write_text(json.dumps(d))
    elif what == "checkpoint":
        p = out / "checkpoint.txt"
        lines = p.read_text().split("\n"); lines[1] = "5"; p.write_text("\n".join(lines))
    elif what == "extra":
        (out / "documents/00000001.pdf").write_bytes(b"%PDF-1.7 smuggled")
    elif what == "line":
        p = out / "lines/00000001-0.json"
        p.write_bytes(p.read_bytes().replace(b"present", b"absent!"))


@pytest.mark.parametrize("what,fragment", [
    ("entry", "entries/00000002.entry: sha256 mismatch"),
    ("document", "entry 2: document sha256 mismatch"),
    ("proof", "proofs/00000002.json: sha256 mismatch"),
    ("checkpoint", "checkpoint.txt"),
    ("extra", "documents/00000001.pdf is not referenced by any entry: its content is not covered by a proof"),
    ("line", "entry 1: disclosed line lines/00000001-0.json matches no line commitment"),
])
def test_verifier_names_each_failure(engine, store, ledger, tmp_path, what, fragment):
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2},
               line_disclosures={1: [(ledger["line_a"], ledger["salt_a"])]}, public_key_text=ledger["pub"])
    _tamper_dir(out, what)
    rep = verify_export(out, key=ledger["pub"])
    assert not rep.ok
    assert any(fragment in f for f in rep.failures), rep.text()
    assert main(["verify", str(out), "--key", ledger["pub"]]) == 1


def test_wrong_key_and_rollback_detected(engine, store, ledger, tmp_path, key_path):
    out = tmp_path / "export.zip"
    with engine.connect() as conn:
        first = make_checkpoint(conn, key_path, ORIGIN)  # same head: returns stored one
        export(conn, store, out, [2], public_key_text=ledger["pub"], checkpoint=first.note)
    other = public_key_text(tmp_path / "other.key", ORIGIN)
    assert not verify_export(out, key=other).ok
    # an auditor who saw a *larger* head than the export's detects the rollback
    do_append(engine, store, 1)
    with engine.begin() as conn:
        newer = make_checkpoint(conn, key_path, ORIGIN).note
    rep = verify_export(out, key=ledger["pub"], since=newer)
    assert any("log truncated or rolled back" in f for f in rep.failures), rep.text()


def test_export_refuses_wrong_line(engine, store, ledger, tmp_path):
    with engine.connect() as conn, pytest.raises(ValueError, match="does not match any line commitment"):
        export(conn, store, tmp_path / "x", [1], line_disclosures={1: [({"patient_id": "A"}, ledger["salt_a"])]},
               public_key_text=ledger["pub"])


def test_cli_runs_without_pypdf_sqlalchemy_rfc8785(engine, store, ledger, tmp_path):
    out = tmp_path / "export.zip"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2}, public_key_text=ledger["pub"])
    keyfile = tmp_path / "pub.txt"
    keyfile.write_text(ledger["pub"])
    oldfile = tmp_path / "old.txt"
    oldfile.write_text(ledger["old"])
    blocker = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pypdf', 'sqlalchemy', 'rfc8785', 'qrcode', 'flask', 'portal', 'PIL'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, B())\n"
        "import runpy; sys.argv = ['audit_archive'] + sys.argv[1:]\n"
        "runpy.run_module('audit_archive', run_name='__main__')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", blocker, "verify", str(out), "--key", str(keyfile), "--since", str(oldfile)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RESULT: all checks passed" in r.stdout
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(bad, "w") as zb:
        for n in z.namelist():
            b = z.read(n)
            zb.writestr(n, b.replace(b'"roster"', b'"rosteR"') if n.startswith("entries/") else b)
    r = subprocess.run([sys.executable, "-c", blocker, "verify", str(bad), "--key", str(keyfile)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 1 and "FAIL entries/00000001.entry: sha256 mismatch" in r.stdout, r.stdout + r.stderr


_ISOLATED_BOOTSTRAP = (
    # -I ignores PYTHONPATH (and the cwd), so do exactly what PYTHONPATH would do, nothing more;
    # then make sure the repo's own package and the portal's dependencies are out of reach.
    "import os, sys\n"
    "sys.path.insert(0, os.environ['PYTHONPATH'])\n"
    "class B:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('pypdf', 'sqlalchemy', 'rfc8785', 'qrcode', 'flask', 'portal', 'PIL'):\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, B())\n"
    "import audit_archive\n"
    "assert audit_archive.__file__.startswith(os.environ['PYTHONPATH'] + os.sep), audit_archive.__file__\n"
    "import runpy; sys.argv = ['audit_archive'] + sys.argv[1:]\n"
    "runpy.run_module('audit_archive', run_name='__main__', alter_sys=True)\n")


def test_export_carries_a_verifier_that_runs_alone(engine, store, ledger, tmp_path):
    """The export is self-sufficient: its verifier/ runs with only the stdlib + cryptography,
    from outside the repo, passes a good export and fails one with a flipped document byte."""
    from audit_archive.export import VERIFIER_MODULES
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2},
               line_disclosures={1: [(ledger["line_a"], ledger["salt_a"])]}, public_key_text=ledger["pub"])
    pkg = out / "verifier" / "audit_archive"
    assert sorted(p.name for p in pkg.iterdir()) == sorted(VERIFIER_MODULES)
    for name in VERIFIER_MODULES:  # byte-for-byte copies: they cannot drift from the package
        assert (pkg / name).read_bytes() == (ROOT / "audit_archive" / name).read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not any(n.startswith("verifier/") for n in manifest["files"])
    assert set(manifest["verifier"]["files"]) == {f"verifier/audit_archive/{m}" for m in VERIFIER_MODULES}
    readme = (out / "README.txt").read_text()
    assert "PYTHONPATH=EXPORT/verifier python3 -P -m audit_archive verify EXPORT --key 'KEY'" in readme
    assert "use your own copy instead" in readme
    assert manifest["verifier"]["run"] == "PYTHONPATH=EXPORT/verifier python3 -P -m audit_archive verify EXPORT --key 'KEY'"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(out / "verifier")}

    def run_isolated():
        return subprocess.run([sys.executable, "-I", "-c", _ISOLATED_BOOTSTRAP, "verify", str(out),
                               "--key", ledger["pub"]], capture_output=True, text=True, env=env, cwd=elsewhere)

    good = run_isolated()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "RESULT: all checks passed" in good.stdout
    assert "verifier/: " in good.stdout and "not checked" in good.stdout
    # the README's own command line, from the folder holding the export (now with __pycache__ in verifier/)
    literal = _run_readme_command(out, ledger["pub"])
    assert literal.returncode == 0, literal.stdout + literal.stderr
    assert list(pkg.glob("__pycache__/*.pyc"))  # written by the runs above, and ignored

    _tamper_dir(out, "document")
    bad = run_isolated()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL entry 2: document sha256 mismatch" in bad.stdout


def _readme_command(readme: str, zipped: bool) -> list[str]:
    """The README's command line for a folder (or a zip), as argv, with its placeholders."""
    want = "PYTHONPATH=EXPORT.zip/verifier " if zipped else "PYTHONPATH=EXPORT/verifier "
    (line,) = [ln.strip() for ln in readme.splitlines() if ln.strip().startswith(want)]
    return shlex.split(line.split(" [--since")[0])


def _run_readme_command(out: Path, key: str, zipped: bool = False):
    """Run the command README.txt gives, exactly, from the folder holding ``out`` (not inside it)."""
    readme = (zipfile.ZipFile(out).read("README.txt").decode() if zipped else (out / "README.txt").read_text())
    argv = _readme_command(readme, zipped)
    env_name, env_value = argv[0].split("=", 1)
    assert env_name == "PYTHONPATH" and argv[1] == "python3", argv
    name = out.name
    subst = {"EXPORT": name, "EXPORT.zip": name, "KEY": key}
    cmd = [sys.executable] + [subst.get(a, a) for a in argv[2:]]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env["PYTHONPATH"] = env_value.replace("EXPORT.zip", name).replace("EXPORT", name)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent, env=env)


_MALICIOUS = (
    "import pathlib, sys\n"
    "pathlib.Path({marker!r}).write_text('ran')\n"
    "print('RESULT: all checks passed')\n"
    "sys.exit(0)\n")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="-P is new in Python 3.11")
def test_documented_command_does_not_run_code_from_the_export(engine, store, ledger, tmp_path):
    """With ``python -m`` Python puts the current directory first on sys.path, so running the
    verifier from inside an export ran any json.py (or audit_archive/) the export held.  The
    README's command runs from outside the export with -P: the planted code never runs, and the
    verifier fails the export for holding files nothing explains."""
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2},
               line_disclosures={1: [(ledger["line_a"], ledger["salt_a"])]}, public_key_text=ledger["pub"])
    marker = tmp_path / "malicious-code-ran"
    (out / "json.py").write_text(_MALICIOUS.format(marker=str(marker)))
    (out / "audit_archive").mkdir()
    (out / "audit_archive" / "__init__.py").write_text(_MALICIOUS.format(marker=str(marker)))
    r = _run_readme_command(out, ledger["pub"])
    assert not marker.exists(), r.stdout
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL json.py is not referenced by any entry" in r.stdout, r.stdout
    assert "FAIL audit_archive/__init__.py is not referenced by any entry" in r.stdout, r.stdout
    assert "RESULT: all checks passed" not in r.stdout
    # the hazard is real: the former instruction (cd EXPORT; no -P) runs the planted code
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    old = subprocess.run([sys.executable, "-m", "audit_archive", "verify", ".", "--key", ledger["pub"]],
                         capture_output=True, text=True, cwd=out, env={**env, "PYTHONPATH": "verifier"})
    assert marker.exists() and old.stdout.startswith("RESULT: all checks passed"), old.stdout + old.stderr


def test_documented_zip_command_runs_from_outside(engine, store, ledger, tmp_path):
    if sys.version_info < (3, 11):
        pytest.skip("-P is new in Python 3.11")
    out = tmp_path / "export.zip"
    with engine.connect() as conn:
        export(conn, store, out, [1, 2], include_documents={2}, public_key_text=ledger["pub"])
    r = _run_readme_command(out, ledger["pub"], zipped=True)
    assert r.returncode == 0 and "RESULT: all checks passed" in r.stdout, r.stdout + r.stderr


def test_readme_and_manifest_say_what_an_export_proves(engine, store, ledger, tmp_path):
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [2], include_documents={2}, public_key_text=ledger["pub"])
    readme = " ".join((out / "README.txt").read_text().split())
    assert "each entry listed in manifest.json is in the log whose tree head checkpoint.txt signs" in readme
    assert "each document in documents/ and each line in lines/ is exactly the one its entry commits to" in readme
    assert "It does NOT prove that the export is complete" in readme
    assert "access log" in readme
    assert "never from inside it" in readme and "Python 3.10 has no -P" in readme
    assert "not inside the export and holds no .py files" in readme
    assert "use your own copy instead" in readme and "PYTHONPATH=the folder holding your audit_archive/" in readme


def test_zip_members_are_plain_files(engine, store, ledger, tmp_path):
    import stat
    out = tmp_path / "export.zip"
    with engine.connect() as conn:
        export(conn, store, out, [2], include_documents={2}, public_key_text=ledger["pub"])
    for info in zipfile.ZipFile(out).infolist():
        assert stat.S_ISREG(info.external_attr >> 16) and (info.external_attr >> 16) & 0o444 == 0o444, info


def _insert_checkpoint_row(engine, *, tree_size, note, root_hash=None, key_id="00000000"):
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_checkpoints (origin, tree_size, root_hash, key_id, note) "
                          "VALUES (:o, :t, :r, :k, :n)"),
                     {"o": ORIGIN, "t": tree_size, "r": root_hash or "00" * 32, "k": key_id, "n": note})


def _root_hex(note: str) -> str:
    import base64
    return base64.b64decode(note.split("\n")[2]).hex()


@pytest.mark.parametrize("row,fragment", [
    pytest.param(lambda led: dict(tree_size="37x", note=led["old"], root_hash=_root_hex(led["old"])),
                 "columns (size '37x', root", id="tree-size-not-an-integer"),
    pytest.param(lambda led: dict(tree_size=4, note=led["latest"].encode(), root_hash=_root_hex(led["latest"])),
                 "the note column holds bytes, not the signed text", id="note-blob"),
    pytest.param(lambda led: dict(tree_size=3, note=led["old"], root_hash=_root_hex(led["old"])),
                 "columns (size 3, root", id="signed-size-differs"),
    pytest.param(lambda led: dict(tree_size=1, note=led["old"], root_hash="ab" * 32),
                 "columns (size 1, root 'abab", id="signed-root-differs"),
    pytest.param(lambda led: dict(tree_size=2, note="garbage\n"), "signature/format invalid: ", id="not-a-checkpoint"),
    pytest.param(lambda led: dict(tree_size=2, note=led["other_note"], root_hash=_root_hex(led["other_note"])),
                 "its note does not verify with public_key_text", id="other-key"),
])
def test_export_refuses_a_damaged_checkpoints_table(engine, store, ledger, tmp_path, backend, key_path, row, fragment):
    """Odd rows (SQLite keeps '37x' in an integer column, bytes in a text one) are an ExportError
    saying to run audit verify, never a ValueError/TypeError; the export uses the signed text."""
    from audit_archive.note import Checkpoint, load_or_create_signer, sign_checkpoint
    with engine.connect() as conn:
        latest = make_checkpoint(conn, key_path, ORIGIN).note
    other = load_or_create_signer(tmp_path / "other.key", ORIGIN)
    led = {**ledger, "latest": latest, "other_note": sign_checkpoint(Checkpoint(ORIGIN, 2, b"\x01" * 32), other)}
    values = row(led)
    if backend != "sqlite" and (not isinstance(values["tree_size"], int) or isinstance(values["note"], bytes)):
        pytest.skip("needs SQLite's dynamic typing (a string in an integer column, bytes in a text one)")
    _insert_checkpoint_row(engine, **values)
    for seqs in ([1], [2]):
        with engine.connect() as conn, pytest.raises(ExportError) as err:
            export(conn, store, tmp_path / "x", seqs, public_key_text=ledger["pub"])
        msg = str(err.value)
        assert msg.startswith("the checkpoints table is damaged (row id 3: ") and fragment in msg, msg
        assert msg.endswith("run `audit verify` (nothing was written)"), msg
    assert not (tmp_path / "x").exists()


def test_export_uses_the_signed_sizes(engine, store, ledger, tmp_path):
    """A healthy table: the proofs are from the sizes the stored checkpoints sign."""
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [2], public_key_text=ledger["pub"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tree_size"] == 4 and [c["from_size"] for c in manifest["consistency"]] == [1]


@pytest.mark.parametrize("bad", [b'{"a":"\\ud800"}', b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}"],
                         ids=["lone-surrogate", "deep-nesting"])
def test_export_refuses_an_entry_parse_entry_cannot_read(engine, store, key_path, tmp_path, bad):
    """Stored bytes that the JSON reader accepts but that are no entry: ExportError, not a crash."""
    from audit_archive.schema import audit_entries, drop_append_only_ddl
    do_append(engine, store, 2)
    with engine.begin() as conn:
        for stmt in drop_append_only_ddl(conn.dialect.name):
            conn.exec_driver_sql(stmt)
        conn.execute(audit_entries.update().where(audit_entries.c.seq == 2).values(entry_bytes=bad))
    with engine.begin() as conn:
        make_checkpoint(conn, key_path, ORIGIN)  # signs the damaged ledger as it is
    with engine.connect() as conn, pytest.raises(ExportError, match=r"^entry 2 is damaged \(.*run `audit verify`"):
        export(conn, store, tmp_path / "x", [2], public_key_text=public_key_text(key_path, ORIGIN))
    assert not (tmp_path / "x").exists()


def test_export_refuses_a_ledger_with_a_gap(engine, store, ledger, tmp_path):
    from audit_archive.schema import audit_entries, drop_append_only_ddl
    with engine.begin() as conn:
        for stmt in drop_append_only_ddl(conn.dialect.name):
            conn.exec_driver_sql(stmt)
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 2))
    with engine.connect() as conn, pytest.raises(ExportError, match=r"^the ledger is damaged \(.*not contiguous"):
        export(conn, store, tmp_path / "x", [1], public_key_text=ledger["pub"])


def test_zip_export_carries_the_verifier_too(engine, store, ledger, tmp_path):
    out = tmp_path / "export.zip"
    with engine.connect() as conn:
        export(conn, store, out, [2], include_documents={2}, public_key_text=ledger["pub"])
    from audit_archive.export import VERIFIER_MODULES
    names = set(zipfile.ZipFile(out).namelist())
    assert {f"verifier/audit_archive/{m}" for m in VERIFIER_MODULES} <= names
    assert verify_export(out, key=ledger["pub"]).ok


def test_readme_title_underline_notice_and_size_claim(engine, store, ledger, tmp_path):
    from audit_archive.export import VERIFIER_MODULES
    out = tmp_path / "export"
    with engine.connect() as conn:
        export(conn, store, out, [2], include_documents={2}, public_key_text=ledger["pub"],
               notice="42 CFR part 2 notice: redisclosure prohibited.")
    readme = (out / "README.txt").read_text().splitlines()
    assert readme[0] == "Audit export (iop-audit-export/v1)"
    assert readme[1] == "=" * len(readme[0])
    assert any(line.lstrip().startswith("NOTICE.txt") and "42 CFR 2.32" in line for line in readme)
    # the README tells the auditor how long the bundled verifier is; keep that true
    claim = next(line for line in readme if "You may read it (under " in line)
    limit = int(claim.split("(under ")[1].split(" lines")[0].replace(",", ""))
    total = sum(len((out / "verifier/audit_archive" / m).read_text().splitlines()) for m in VERIFIER_MODULES)
    assert total < limit, f"the bundled verifier has {total} lines; update the README's claim"
    # NOTICE.txt is one of the fixed, explained files: the export still verifies
    rep = verify_export(out, key=ledger["pub"])
    assert rep.ok, rep.text()
    assert (out / "NOTICE.txt").read_text() == "42 CFR part 2 notice: redisclosure prohibited.\n"


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_export_refuses_an_existing_out(engine, store, ledger, tmp_path, suffix):
    out = tmp_path / f"export{suffix}"
    if suffix:
        out.write_bytes(b"an earlier export")
    else:
        out.mkdir()
    with engine.connect() as conn, pytest.raises(ExportError, match="already exists; choose a new path"):
        export(conn, store, out, [2], public_key_text=ledger["pub"])
    assert (out.read_bytes() == b"an earlier export") if suffix else not any(out.iterdir())


def test_export_errors_are_export_errors_and_value_errors(engine, store, ledger, tmp_path):
    assert issubclass(ExportError, ValueError)  # callers that caught ValueError keep working
    with engine.connect() as conn:
        with pytest.raises(ExportError, match=r"entry 5 is not covered by the checkpoint \(size 4\); make a new checkpoint"):
            export(conn, store, tmp_path / "a", [2, 5], public_key_text=ledger["pub"])
        with pytest.raises(ExportError, match="no entries to export"):
            export(conn, store, tmp_path / "b", [], public_key_text=ledger["pub"])
        with pytest.raises(ExportError, match="entry seqs must be integers >= 1, got 0"):
            export(conn, store, tmp_path / "c", [0, 1], public_key_text=ledger["pub"])
        with pytest.raises(ExportError, match="public_key_text is not a verifier key"):
            export(conn, store, tmp_path / "d", [1], public_key_text="nonsense")
        other = public_key_text(tmp_path / "other.key", ORIGIN)
        with pytest.raises(ExportError, match="the checkpoint does not verify with public_key_text"):
            export(conn, store, tmp_path / "e", [1], public_key_text=other)
        with pytest.raises(ExportError, match="disclosed line 0 cannot be committed"):
            export(conn, store, tmp_path / "f", [1], line_disclosures={1: [(ledger["line_a"], b"short")]},
                   public_key_text=ledger["pub"])
    assert not any((tmp_path / n).exists() for n in "abcdef")
