"""Witnesses on loopback (two real processes, `python -m audit_archive witness serve`): every new
checkpoint is cosigned; truncation and a key holder's rewrite are refused by the witnesses even
with checkpoint rows, files and cosignatures deleted; a witness down never stops rosters from
closing and its cosignature catches up; exports carry cosignatures the standalone verifier checks
with --witness-key. Runs on SQLite and, with PORTAL_TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from audit_archive.cosignature import load_or_create_cosigner
from audit_archive.schema import audit_cosignatures, audit_witness_events
from portal.clock import local_today
from portal.extensions import db
from portal.services.checkpoints import public_key
from portal.services.schedule import ensure_sessions
from tests import factories

REPO = Path(__file__).resolve().parents[2]


class WitnessProcess:
    def __init__(self, tmp: Path, name: str, log_key: str):
        self.dir, self.name, self.log_key = tmp / name.replace("/", "_"), name, log_key
        self.key = load_or_create_cosigner(self.dir / "witness.key", name).key.text()
        self.port = 0
        self.proc = None

    def start(self):
        cmd = [sys.executable, "-m", "audit_archive", "witness", "serve", "--state", str(self.dir / "state"),
               "--key", str(self.dir / "witness.key"), "--log", self.log_key, "--host", "127.0.0.1",
               "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/add-checkpoint", line)
        assert m, line
        self.port = int(m.group(1))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def witnesses(app, tmp_path):
    log_key = public_key()
    ws = [WitnessProcess(tmp_path, "witness.test/a", log_key), WitnessProcess(tmp_path, "witness.test/b", log_key)]
    for w in ws:
        w.start()
    app.config["PORTAL_WITNESSES"] = ",".join(f"{w.url} {w.key}" for w in ws)
    app.config["PORTAL_WITNESS_QUORUM"] = "2"
    yield ws
    for w in ws:
        w.stop()


def _cosigs(size=None):
    q = db.select(audit_cosignatures.c.witness, audit_cosignatures.c.tree_size)
    if size is not None:
        q = q.where(audit_cosignatures.c.tree_size == size)
    rows = db.session.execute(q).all()
    db.session.rollback()
    return sorted(r.witness for r in rows)


def _close_today(world):
    day = local_today(world.program.tz)
    sessions = {s.cohort.name: s for s in ensure_sessions(world.program, day)}
    am = factories.sign_and_close(sessions["AM IOP"], world.facilitator, absent={"100234"})
    pm = factories.sign_and_close(sessions["PM IOP"], world.facilitator2)
    return am, pm


def test_checkpoints_cosigned_verified_and_exported(app, runner, world, witnesses, tmp_path):
    _close_today(world)  # the first close signs a checkpoint (size 1): cosigned on the spot
    assert _cosigs(1) == ["witness.test/a", "witness.test/b"]
    res = runner.invoke(args=["audit", "checkpoint"])
    assert res.exit_code == 0, res.output
    assert _cosigs(2) == ["witness.test/a", "witness.test/b"]
    folder = Path(app.config["PORTAL_CHECKPOINT_DIR"]) / "cosignatures"
    assert (folder / "checkpoint-2.txt").read_text().count("\u2014 witness.test/") == 2
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0, res.output
    assert "cosigned by 2 of quorum 2 witnesses (witness.test/a, witness.test/b)" in res.output.splitlines()[0]

    out = tmp_path / "export"
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", "2000-01-01",
                              "--to", "2100-01-01", str(out)])
    assert res.exit_code == 0, res.output
    assert "--witness-key" in res.output
    assert (out / "checkpoint.txt").read_text().count("\u2014 witness.test/") == 2
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(out / "verifier")}
    args = [sys.executable, "-P", "-m", "audit_archive", "verify", str(out), "--key", public_key()]
    ok = subprocess.run(args + [f"--witness-key={w.key}" for w in witnesses], cwd=outside, env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "cosigned by witness witness.test/a" in ok.stdout and "cosigned by witness witness.test/b" in ok.stdout
    stranger = load_or_create_cosigner(tmp_path / "stranger.key", "witness.test/c").key.text()
    bad = subprocess.run(args + [f"--witness-key={stranger}"], cwd=outside, env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "no cosignature by witness witness.test/c" in bad.stdout


def _drop_cosignature_triggers(dialect):
    if dialect == "sqlite":
        return ["DROP TRIGGER IF EXISTS audit_cosignatures_no_update", "DROP TRIGGER IF EXISTS audit_cosignatures_no_delete"]
    return ["DROP TRIGGER IF EXISTS audit_cosignatures_append_only ON audit_cosignatures",
            "DROP TRIGGER IF EXISTS audit_cosignatures_no_truncate ON audit_cosignatures"]


def _insider_erases_checkpoints(app, dialect, *, keep_entries: int):
    """Delete entries after ``keep_entries`` with every checkpoint row and file and every
    cosignature (rows and files): nothing left in the portal says the log was longer."""
    from audit_archive.schema import _cosignature_trigger_ddl

    with db.engine.begin() as conn:
        for s in _drop_cosignature_triggers(dialect):
            conn.exec_driver_sql(s)
        conn.execute(text("UPDATE group_sessions SET document_id = NULL WHERE document_id IN "
                          "(SELECT id FROM archived_documents WHERE entry_seq > :n)"), {"n": keep_entries})
        conn.execute(text("DELETE FROM archived_document_patients WHERE document_id IN "
                          "(SELECT id FROM archived_documents WHERE entry_seq > :n)"), {"n": keep_entries})
        conn.execute(text("DELETE FROM archived_documents WHERE entry_seq > :n"), {"n": keep_entries})
        conn.execute(text("DELETE FROM audit_entries WHERE seq > :n"), {"n": keep_entries})
        conn.execute(text("DELETE FROM audit_checkpoints"))
        conn.execute(text("DELETE FROM audit_cosignatures"))
        for s in _cosignature_trigger_ddl(dialect):
            conn.exec_driver_sql(s)
    shutil.rmtree(app.config["PORTAL_CHECKPOINT_DIR"])


def test_truncation_with_checkpoints_erased_is_refused_by_the_witnesses(
        app, runner, world, witnesses, tamperable, thawed_rosters):
    _close_today(world)
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0  # size 2, cosigned
    _insider_erases_checkpoints(app, tamperable, keep_entries=1)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0  # the portal alone cannot tell
    res = runner.invoke(args=["audit", "checkpoint"])
    assert res.exit_code == 1
    assert "witness witness.test/a refused: it has cosigned 2 entries but this head has only 1" in res.output
    assert "Nothing was signed" in res.output
    assert db.session.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar() == 0
    events = db.session.execute(db.select(audit_witness_events.c.witness, audit_witness_events.c.outcome)).all()
    assert sorted(events) == [("witness.test/a", "refused"), ("witness.test/b", "refused")]


def test_key_holder_rewriting_history_is_refused(app, client, login, runner, world, witnesses, tamperable,
                                                 thawed_rosters):
    """Entry 2 replaced by another (the key holder re-appends and would re-sign): same size,
    another root; the witnesses refuse, and admins see the alarm."""
    from portal.services.archiving import archive_document
    from tests.audit.helpers import make_pdf

    _close_today(world)
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    _insider_erases_checkpoints(app, tamperable, keep_entries=1)
    archive_document(kind="reconciliation", title="Forged", dos=None, subject={"day": "x"}, actor="user:1",
                     record={"r": 1}, pdf=make_pdf("forged"), occurred_at=world_now(), patient_lines=[])
    db.session.commit()
    res = runner.invoke(args=["audit", "checkpoint"])
    assert res.exit_code == 1, res.output
    assert "witness witness.test/a refused" in res.output and "another root" in res.output
    login.as_(world.admin)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Witness alarm" in page and "witness.test/a refused" in page


def world_now():
    from portal.clock import now_utc
    return now_utc()


def test_witness_down_then_back(app, runner, world, witnesses):
    a, b = witnesses
    b.stop()
    _close_today(world)  # rosters close with a witness down
    assert _cosigs(1) == ["witness.test/a"]
    res = runner.invoke(args=["audit", "checkpoint"])  # size 2: a cosigns, b unreachable (not a refusal)
    assert res.exit_code == 0, res.output
    assert _cosigs(2) == ["witness.test/a"]
    app.config["PORTAL_UNCOSIGNED_WARN_HOURS"] = "0"
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 0 and "cosigned by 1 of quorum 2 witnesses" in res.output
    assert "has 1 of 2 witness cosignatures" in res.output
    b.start()  # same port, same state and key
    res = runner.invoke(args=["audit", "checkpoint"])  # head unchanged: sent again to b
    assert res.exit_code == 0, res.output
    assert _cosigs(2) == ["witness.test/a", "witness.test/b"]
    res = runner.invoke(args=["audit", "verify"])
    assert "cosigned by 2 of quorum 2 witnesses" in res.output and "witness cosignatures" not in res.output


def test_cosigned_head_the_ledger_contradicts_fails_verify(app, runner, world, witnesses, tamperable, thawed_rosters):
    _close_today(world)
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE group_sessions SET document_id = NULL"))
        conn.execute(text("DELETE FROM archived_document_patients"))
        conn.execute(text("DELETE FROM archived_documents WHERE entry_seq = 2"))
        conn.execute(text("DELETE FROM audit_entries WHERE seq = 2"))
        conn.execute(text("DELETE FROM audit_checkpoints WHERE tree_size = 2"))
    shutil.rmtree(Path(app.config["PORTAL_CHECKPOINT_DIR"]) / "cosignatures")
    for f in Path(app.config["PORTAL_CHECKPOINT_DIR"]).glob("checkpoint-2.txt"):
        f.unlink()
    res = runner.invoke(args=["audit", "verify"])
    assert res.exit_code == 1
    assert "(cosigned by witness.test/a at " in res.output and "covers 2 entries but the ledger has only 1" in res.output


def test_bad_witness_configuration_is_a_clear_error(app, runner, world):
    app.config["PORTAL_WITNESSES"] = "localhost:5901 nokey"
    res = runner.invoke(args=["audit", "checkpoint"])
    assert res.exit_code == 1 and "PORTAL_WITNESSES" in res.output and "is not 'URL KEY'" in res.output
    app.config["PORTAL_WITNESSES"] = ""
    app.config["PORTAL_WITNESS_QUORUM"] = "3"
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 1
