"""QA: odd command-line input to `flask audit verify` / `flask audit export` gives an
`ERROR: …` line and exit 1 (or a click usage error, exit 2), never a traceback; and a relative
PORTAL_INSTANCE_DIR works (Flask refuses a relative instance path)."""
from __future__ import annotations

from pathlib import Path

import pytest

from portal.clock import local_today


def _day(closed) -> str:
    return local_today(closed[0].cohort.program.tz).isoformat()


def _clean_error(res, *needles: str) -> None:
    assert res.exit_code in (1, 2), res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 1:
        assert "ERROR: " in res.output, res.output
    for n in needles:
        assert n in res.output, (n, res.output)


def test_verify_since_not_utf8(runner, closed, tmp_path):
    since = tmp_path / "old-checkpoint.txt"
    since.write_bytes(b"\xff\xfe not a checkpoint \x80")
    res = runner.invoke(args=["audit", "verify", "--since", str(since)])
    _clean_error(res, "--since", "not UTF-8")
    assert res.exit_code == 1


@pytest.mark.parametrize("key", ["k" * 5000, "a/" * 3000, "bad\x00key"])
def test_verify_key_that_no_file_can_be_named(runner, closed, key):
    res = runner.invoke(args=["audit", "verify", "--key", key])
    _clean_error(res, "ERROR: --key")
    assert res.exit_code == 1


def test_verify_key_file_not_utf8(runner, closed, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_bytes(b"\xff\xfe\x00\x80")
    res = runner.invoke(args=["audit", "verify", "--key", str(key_file)])
    _clean_error(res, "ERROR: --key", "not UTF-8")


def _export(runner, closed, out):
    return runner.invoke(args=["audit", "export", "--patient", "100231", "--from", _day(closed),
                               "--to", _day(closed), str(out)])


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_export_below_a_regular_file(runner, closed, tmp_path, suffix):
    (tmp_path / "hello.txt").write_text("hello\n")
    res = _export(runner, closed, tmp_path / "hello.txt" / f"sub{suffix}")
    _clean_error(res, "hello.txt is not a directory")
    assert res.exit_code == 1
    assert (tmp_path / "hello.txt").read_text() == "hello\n"


@pytest.mark.parametrize("name", ["x" * 300, "x" * 300 + ".zip", "new-dir/" + "y" * 300])
def test_export_name_too_long(runner, closed, tmp_path, name):
    res = _export(runner, closed, tmp_path / name)
    _clean_error(res, "cannot write")
    assert res.exit_code == 1
    assert not (tmp_path / "new-dir").exists()


# --- PORTAL_INSTANCE_DIR ------------------------------------------------------------------

def test_relative_instance_dir_is_made_absolute(monkeypatch, tmp_path):
    from portal import create_app
    from portal.extensions import db

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTAL_INSTANCE_DIR", "./instance-here")
    for var in ("PORTAL_DATABASE_URL", "PORTAL_ARCHIVE_DIR", "PORTAL_SIGNING_KEY", "PORTAL_CHECKPOINT_DIR"):
        monkeypatch.delenv(var, raising=False)
    app = create_app({"TESTING": True})
    assert app.instance_path == str(tmp_path / "instance-here")
    assert Path(app.instance_path).is_dir()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance-here' / 'portal.sqlite3'}"
    assert app.config["PORTAL_ARCHIVE_DIR"] == str(tmp_path / "instance-here" / "archive")
    with app.app_context():
        db.engine.dispose()
