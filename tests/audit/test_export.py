"""Export for one patient and the standalone verifier (python -m audit_archive verify)."""

import json
import os
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
    return {"line_a": line_a, "salt_a": salt_a, "old": old, "pub": public_key_text(key_path, ORIGIN)}


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
    assert "PYTHONPATH=verifier python3 -m audit_archive verify . --key 'KEY'" in readme
    assert "use your own copy instead" in readme

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
    # the README's own command line, from inside the export (now with __pycache__ in verifier/)
    literal = subprocess.run([sys.executable, "-m", "audit_archive", "verify", ".", "--key", ledger["pub"]],
                             capture_output=True, text=True, cwd=out,
                             env={**os.environ, "PYTHONPATH": "verifier"})
    assert literal.returncode == 0, literal.stdout + literal.stderr
    assert list(pkg.glob("__pycache__/*.pyc"))  # written by the runs above, and ignored

    _tamper_dir(out, "document")
    bad = run_isolated()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL entry 2: document sha256 mismatch" in bad.stdout


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
