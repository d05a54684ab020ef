"""Issue #3: every insider tamper is detected by `flask --app portal audit verify` itself, with
a precise message and exit 1 — the same table as tests/audit/test_tamper.py, run through the CLI
against the portal's own database, archive folder, key and checkpoint files."""
from __future__ import annotations

from pathlib import Path

import pytest

from audit_archive.checkpoint import make_checkpoint
from portal.extensions import db
from portal.services.archiving import archive_store
from tests.audit.helpers import ORIGIN, do_append
from tests.audit.test_tamper import CASES


@pytest.mark.parametrize("tamper,use_saved,expected,first_bad", CASES, ids=[c[0].__name__ for c in CASES])
def test_cli_verify_detects(app, runner, tamperable, tmp_path, tamper, use_saved, expected, first_bad):
    app.config["PORTAL_ARCHIVE_ORIGIN"] = ORIGIN  # the helpers' entries and checkpoints use it
    engine, store, key_path = db.engine, archive_store(), Path(app.config["PORTAL_SIGNING_KEY"])

    def checkpoint():
        with engine.begin() as conn:
            return make_checkpoint(conn, key_path, ORIGIN, checkpoint_dir=app.config["PORTAL_CHECKPOINT_DIR"])

    res = do_append(engine, store, 4)
    checkpoint()
    res += do_append(engine, store, 3)
    saved = tmp_path / "kept-by-the-auditor.txt"
    saved.write_text(checkpoint().note)
    ok = runner.invoke(args=["audit", "verify", "--since", str(saved)])
    assert ok.exit_code == 0, ok.output
    tamper({"engine": engine, "store": store, "res": res, "key_path": key_path})
    out = runner.invoke(args=["audit", "verify"] + (["--since", str(saved)] if use_saved else []))
    assert out.exit_code == 1, out.output
    assert expected in out.output
    if tamper.__name__ == "truncate_tail_and_checkpoints":
        # the checkpoint files survive the deleted rows: the truncation itself (entry 6 gone)
        # is the first failure, where the database alone first sees entry 5 naming a lost row
        first_bad = 6
    if first_bad is not None:
        assert f"First bad entry: {first_bad}" in out.output
