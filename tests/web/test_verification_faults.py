"""Faults QA found around the QR verification page and `flask audit ...`: malformed or moved
entry bytes, absurd entry numbers, exports to an existing path or from a truncated log, the
"how to verify" hint for a .zip, `audit verify --key`, and a missing signing key."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from audit_archive.checkpoint import public_key_text
from portal.clock import local_today
from portal.extensions import db


def _sql(statement: str, **params) -> None:
    db.session.rollback()
    db.session.execute(text(statement), params)
    db.session.commit()


def _check_row(html: str, label: str) -> str:
    """The Result cell of the check row ``label`` on the verification page."""
    m = re.search(rf'<th scope="row">{re.escape(label)}</th><td>([^<]*)</td>', html)
    assert m, f"no check row {label!r} in:\n{html}"
    return m.group(1)


def _day(closed) -> str:
    return local_today(closed[0].cohort.program.tz).isoformat()


# --- /verify/<seq> -----------------------------------------------------------------------

def test_malformed_entry_bytes_show_a_failed_check_not_a_500(client, login, world, closed, tamperable):
    _sql("UPDATE audit_entries SET entry_bytes = :b WHERE seq = 1", b=b"not an archive entry\n")
    login.as_(world.auditor)
    page = client.get("/verify/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Does not verify" in html and "Verified" not in html
    assert _check_row(html, "Entry bytes are a well-formed entry") == "FAIL"
    assert "<dt>Kind</dt>" not in html  # no fields from bytes that are not an entry


def test_swapped_rows_fail_the_position_check(client, login, world, closed, tamperable):
    one, two = (bytes(db.session.scalar(text("SELECT entry_bytes FROM audit_entries WHERE seq = :s"),
                                        {"s": s})) for s in (1, 2))
    _sql("UPDATE audit_entries SET entry_bytes = :b WHERE seq = 1", b=two)
    _sql("UPDATE audit_entries SET entry_bytes = :b WHERE seq = 2", b=one)
    login.as_(world.auditor)
    for seq in (1, 2):
        page = client.get(f"/verify/{seq}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Does not verify" in html
        assert _check_row(html, "Entry is the one at this position") == "FAIL"


def test_entry_bytes_rewritten_as_text_fail_a_check(client, login, world, closed, tamperable):
    if tamperable != "sqlite":
        pytest.skip("only SQLite lets an UPDATE store TEXT in a BLOB column")
    _sql("UPDATE audit_entries SET entry_bytes = CAST(entry_bytes AS TEXT) WHERE seq = 1")
    login.as_(world.auditor)
    page = client.get("/verify/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Does not verify" in html
    assert _check_row(html, "Entry bytes stored as written") == "FAIL"


@pytest.mark.parametrize("seq", ["0", "3", "1000000000000", "99999999999999999999",
                                 "9" * 400])
def test_entry_numbers_with_no_entry_are_404(client, login, world, closed, seq):
    login.as_(world.auditor)
    page = client.get(f"/verify/{seq}")
    assert page.status_code == 404
    # an auditor reads the same words for a missing entry as for one outside their grants
    assert "no such record within your access" in page.get_data(as_text=True)


# --- audit export ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["export-dir", "export.zip"])
def test_export_refuses_an_existing_out(runner, closed, tmp_path, name):
    out = tmp_path / name
    if name.endswith(".zip"):
        out.write_bytes(b"someone's file")
    else:
        out.mkdir()
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", _day(closed),
                              "--to", _day(closed), str(out)])
    assert res.exit_code == 1
    assert "ERROR:" in res.output and "already exists" in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    if name.endswith(".zip"):
        assert out.read_bytes() == b"someone's file"
    else:
        assert not any(out.iterdir())


def test_export_of_a_truncated_log_is_an_error_not_a_traceback(runner, closed, tmp_path, tamperable):
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0  # signs size 2
    _sql("DELETE FROM audit_entries WHERE seq = 2")
    res = runner.invoke(args=["audit", "export", "--patient", "100250", "--from", _day(closed),
                              "--to", _day(closed), str(tmp_path / "x")])
    assert res.exit_code == 1, res.output
    # patient 100250's roster is entry 2, which is gone: refused before anything is signed
    assert res.output.startswith("ERROR: The chain entry #2 for this document is missing.")
    assert isinstance(res.exception, SystemExit)
    assert not (tmp_path / "x").exists()


def test_export_of_entries_no_checkpoint_covers_is_an_error(runner, app, closed, tmp_path, tamperable):
    # Truncated, and the checkpoint rows and files deleted too: the export's fresh checkpoint
    # covers entry 1 only, and patient 100250's roster is entry 2.
    _sql("DELETE FROM audit_entries WHERE seq = 2")
    _sql("DELETE FROM audit_checkpoints")
    for f in Path(app.config["PORTAL_CHECKPOINT_DIR"]).glob("checkpoint-*.txt"):
        f.unlink()
    res = runner.invoke(args=["audit", "export", "--patient", "100250", "--from", _day(closed),
                              "--to", _day(closed), str(tmp_path / "x.zip")])
    assert res.exit_code == 1, res.output
    assert "ERROR:" in res.output
    assert isinstance(res.exception, SystemExit)
    assert not (tmp_path / "x.zip").exists()


def test_zip_export_prints_the_zip_form_and_it_works(runner, closed, tmp_path):
    out = tmp_path / "audit export.zip"  # a space: the printed command must quote it
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", _day(closed),
                              "--to", _day(closed), str(out)])
    assert res.exit_code == 0, res.output
    assert "Exported 1 entry (0 documents in full, 1 withheld because it names other patients)" in res.output
    hint = _hint(res.output)
    assert "cd " not in hint
    assert hint.startswith(f"PYTHONPATH='{out}/verifier' python3 -P -m audit_archive verify '{out}' --key '")
    # Run the printed command from elsewhere, with the bundled verifier only.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run(hint.replace("python3", sys.executable, 1), shell=True, env=env,
                           capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "RESULT: all checks passed" in check.stdout


def test_directory_export_hint_and_plurals(runner, closed, tmp_path):
    out = tmp_path / "export-100231"
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", _day(closed),
                              "--to", _day(closed), str(out)])
    assert res.exit_code == 0, res.output
    assert " 1 entries" not in res.output and " 1 documents" not in res.output
    # Run from outside the export, -P keeping the current directory off sys.path; absolute paths.
    assert _hint(res.output).startswith(
        f"PYTHONPATH={out}/verifier python3 -P -m audit_archive verify {out} --key '")
    assert "cd " not in res.output and "Python 3.10 has no -P" in res.output


def _hint(output: str) -> str:
    """The printed command line of `audit export`."""
    (hint,) = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("PYTHONPATH=")]
    return hint


# --- audit verify ------------------------------------------------------------------------

def test_verify_names_no_bad_entry_when_none_is_known(runner, closed, tmp_path):
    since = tmp_path / "old.txt"
    since.write_text("not a checkpoint\n")
    res = runner.invoke(args=["audit", "verify", "--since", str(since)])
    assert res.exit_code == 1
    assert "given checkpoint does not verify" in res.output
    assert "First bad entry" not in res.output


def test_verify_with_an_independently_held_key(runner, app, closed, tmp_path):
    key = runner.invoke(args=["audit", "pubkey"]).output.strip()
    ok = runner.invoke(args=["audit", "verify", "--key", key])
    assert ok.exit_code == 0, ok.output
    key_file = tmp_path / "auditor-key.txt"
    key_file.write_text(key + "\n")
    ok = runner.invoke(args=["audit", "verify", "--key", str(key_file)])
    assert ok.exit_code == 0, ok.output
    assert "signatures not checked" not in ok.output
    # A key the signing key does not match: every checkpoint's signature fails.
    other = public_key_text(tmp_path / "other.key", app.config["PORTAL_ARCHIVE_ORIGIN"])
    bad = runner.invoke(args=["audit", "verify", "--key", other])
    assert bad.exit_code == 1
    assert "signature" in bad.output
    junk = runner.invoke(args=["audit", "verify", "--key", "not-a-key"])
    assert junk.exit_code == 1 and "ERROR: --key" in junk.output


# --- a missing signing key ---------------------------------------------------------------

def test_first_use_creates_the_key(runner, app, world):
    key_path = Path(app.config["PORTAL_SIGNING_KEY"])
    assert not key_path.exists()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    assert not key_path.exists()  # verification is read-only
    res = runner.invoke(args=["audit", "pubkey"])
    assert res.exit_code == 0, res.output
    assert key_path.exists()


def test_missing_key_is_never_silently_replaced(runner, app, client, login, world, closed):
    key_path = Path(app.config["PORTAL_SIGNING_KEY"])
    key = runner.invoke(args=["audit", "pubkey"]).output.strip()
    key_path.unlink()  # lost in a migration to a new server, say
    for cmd in (["audit", "pubkey"], ["audit", "checkpoint"]):
        res = runner.invoke(args=cmd)
        assert res.exit_code == 1, (cmd, res.output)
        assert f"ERROR: signing key file {key_path} is missing but 1 signed checkpoint exists" in res.output
        assert "restore it from backup" in res.output and "Traceback" not in res.output
        assert not key_path.exists()
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", _day(closed),
                              "--to", _day(closed), str(app.config["PORTAL_ARCHIVE_DIR"] + "-x")])
    assert res.exit_code == 1 and "restore it from backup" in res.output
    # verify: a warning, signatures unchecked, and still no new key
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output
    assert "WARNING: signing key file" in res.output and "NOT checked" in res.output
    assert "signatures not checked" in res.output
    assert not key_path.exists()
    # ... while the auditor's own copy of the key still checks them
    res = runner.invoke(args=["audit", "verify", "--key", key])
    assert res.exit_code == 0, res.output
    assert "WARNING" not in res.output
    # the QR page: the checks, the signature marked unchecked, no 500, no new key
    login.as_(world.auditor)
    page = client.get("/verify/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Signature not checked" in html and "Verified" not in html
    assert _check_row(html, "Checkpoint signature") == "Not checked"
    assert _check_row(html, "Entry bytes match the recorded entry hash") == "Pass"
    assert str(key_path) not in html  # server paths stay in the log
    assert client.get("/verify/2").status_code == 200  # newer than the checkpoint
    assert not key_path.exists()


def test_missing_key_with_checkpoint_files_only(runner, app, closed, tamperable):
    # The checkpoints table was emptied as well; the files still show a key signed them.
    _sql("DELETE FROM audit_checkpoints")
    Path(app.config["PORTAL_SIGNING_KEY"]).unlink()
    res = runner.invoke(args=["audit", "checkpoint"])
    assert res.exit_code == 1 and "is missing but 1 signed checkpoint exists" in res.output
    assert not Path(app.config["PORTAL_SIGNING_KEY"]).exists()


def test_daily_checkpoint_with_a_missing_key_logs_and_does_not_raise(app, closed, monkeypatch, caplog):
    from portal.services import checkpoints

    Path(app.config["PORTAL_SIGNING_KEY"]).unlink()
    later = checkpoints.now_utc() + timedelta(hours=25)
    monkeypatch.setattr(checkpoints, "now_utc", lambda: later)
    assert checkpoints.checkpoint_if_due() is None  # entry 2 is not covered, and 25 h passed
    assert "restore it from backup" in caplog.text
    assert not Path(app.config["PORTAL_SIGNING_KEY"]).exists()


@pytest.mark.parametrize("row", ["garbage_note", "text_size"])
def test_daily_checkpoint_with_a_damaged_checkpoints_table_logs_and_does_not_raise(
        app, closed, monkeypatch, caplog, tamperable, row):
    """A roster close is already committed when the daily checkpoint runs: a damaged
    checkpoints table must not turn it into a 500 (audit verify / audit checkpoint report it)."""
    from portal.services import checkpoints

    if row == "text_size" and tamperable != "sqlite":
        pytest.skip("only SQLite stores text in an integer column")
    size = "'37x'" if row == "text_size" else "1"
    _sql(f"INSERT INTO audit_checkpoints (origin, tree_size, root_hash, key_id, note) "
         f"SELECT origin, {size}, root_hash, key_id, 'garbage' FROM audit_checkpoints")
    later = checkpoints.now_utc() + timedelta(hours=25)
    monkeypatch.setattr(checkpoints, "now_utc", lambda: later)
    assert checkpoints.checkpoint_if_due() is None
    assert "daily checkpoint not signed: stored checkpoint row" in caplog.text
