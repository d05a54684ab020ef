"""QA: a damaged signing key file (bad base64, wrong format, not UTF-8, a directory, another
log's key) is treated like a missing one: a message naming the file and what is wrong, exit 1
for pubkey/checkpoint/export, a warning from verify (signatures unchecked), no 500 on the QR
page, the daily checkpoint logged and skipped, and the file never overwritten."""
from __future__ import annotations

import base64
import os
from datetime import timedelta
from pathlib import Path

import pytest

from portal.clock import local_today

DAMAGE = {
    "bad-base64": (lambda p: p.write_text("PRIVATE+KEY+iop-audit-portal/archive+0a0b0c0d+!!not base64!!\n"),
                   "not a checkpoint signing key"),
    "wrong-format": (lambda p: p.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"),
                     "not a checkpoint signing key"),
    "not-utf8": (lambda p: p.write_bytes(b"\xff\xfe\x00garbage\x80"), "not UTF-8"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "other-log": (lambda p: p.write_text(
        "PRIVATE+KEY+someone-else/log+" + _other_key_tail() + "\n"), "key of the log 'someone-else/log'"),
    "short-key": (lambda p: p.write_text(
        "PRIVATE+KEY+iop-audit-portal/archive+0a0b0c0d+" + base64.b64encode(b"\x01abc").decode() + "\n"),
        "not a checkpoint signing key"),
}


def _other_key_tail() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit_archive.note import Signer

    return Signer("someone-else/log", Ed25519PrivateKey.generate()).text().split("+", 3)[3]


def _snapshot(path: Path):
    if path.is_dir():
        return ("dir", sorted(os.listdir(path)))
    return ("file", path.read_bytes())


def _day(closed) -> str:
    return local_today(closed[0].cohort.program.tz).isoformat()


@pytest.fixture
def damage(app):
    def apply(how: str) -> tuple[Path, str]:
        path = Path(app.config["PORTAL_SIGNING_KEY"])
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        write, expected = DAMAGE[how]
        write(path)
        return path, expected
    return apply


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_key_gives_messages_not_tracebacks(runner, app, client, login, world, closed,
                                                   damage, how, tmp_path):
    path, expected = damage(how)
    before = _snapshot(path)
    for cmd in (["audit", "pubkey"], ["audit", "checkpoint"],
                ["audit", "export", "--patient", "100231", "--from", _day(closed), "--to", _day(closed),
                 str(tmp_path / "x.zip")]):
        res = runner.invoke(args=cmd)
        assert res.exit_code == 1, (cmd, res.output)
        assert isinstance(res.exception, SystemExit), (cmd, res.exception)
        assert f"ERROR: signing key file {path} is unusable: " in res.output, res.output
        assert expected in res.output and "restore it from backup" in res.output
        assert _snapshot(path) == before, cmd
    assert not (tmp_path / "x.zip").exists()
    # verify: a warning, the signatures counted as unchecked, everything else checked
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output
    assert isinstance(res.exception, (SystemExit, type(None)))
    assert f"WARNING: signing key file {path} is unusable" in res.output and "NOT checked" in res.output
    assert "signatures not checked" in res.output
    # the QR page: no 500, the signature shown as not checked, no server path on the page
    login.as_(world.auditor)
    page = client.get("/verify/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Signature not checked" in html and "missing or unusable" in html
    assert str(path) not in html
    assert _snapshot(path) == before


def test_damaged_key_before_anything_was_signed_is_not_replaced(runner, app, world, damage):
    path, expected = damage("bad-base64")
    before = _snapshot(path)
    res = runner.invoke(args=["audit", "pubkey"])
    assert res.exit_code == 1 and expected in res.output
    assert _snapshot(path) == before


def test_roster_close_with_a_damaged_key_closes_and_logs(app, world, damage, caplog):
    """The daily checkpoint after a roster close: the roster is closed and archived, the
    checkpoint is skipped with the error in the log."""
    from portal.services.schedule import ensure_sessions
    from tests import factories

    path, expected = damage("not-utf8")
    session = next(s for s in ensure_sessions(world.program, local_today(world.program.tz))
                   if s.cohort.name == "AM IOP")
    closed = factories.sign_and_close(session, world.facilitator)
    assert closed.is_closed and closed.document_id
    assert "daily checkpoint not signed" in caplog.text and expected in caplog.text
    assert _snapshot(path) == ("file", b"\xff\xfe\x00garbage\x80")


def test_daily_checkpoint_with_a_damaged_key_logs_and_does_not_raise(app, closed, damage, monkeypatch, caplog):
    from portal.services import checkpoints

    path, expected = damage("directory")
    later = checkpoints.now_utc() + timedelta(hours=25)
    monkeypatch.setattr(checkpoints, "now_utc", lambda: later)
    assert checkpoints.checkpoint_if_due() is None
    assert "is a directory" in caplog.text
    assert path.is_dir()
