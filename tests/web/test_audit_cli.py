"""`flask audit verify|checkpoint|pubkey|export` and the QR verification page, end to end on
rosters closed through the real services."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from portal.clock import local_today


def test_verify_passes_then_names_a_tampered_pdf(runner, app, closed):
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "OK: 2 entries, 2 documents" in ok.output
    store = Path(app.config["PORTAL_ARCHIVE_DIR"])
    victim = sorted(p for p in store.rglob("*.pdf"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert "stored PDF sha256 mismatch" in bad.output and "First bad entry" in bad.output


def test_checkpoint_and_pubkey(runner, app, closed):
    out = runner.invoke(args=["audit", "checkpoint"])
    assert out.exit_code == 0, out.output
    assert "size 2" in out.output and "\n2\n" in out.output  # C2SP body: origin, size, root
    key = runner.invoke(args=["audit", "pubkey"]).output.strip()
    assert key.startswith(app.config["PORTAL_ARCHIVE_ORIGIN"] + "+")
    assert (Path(app.config["PORTAL_SIGNING_KEY"]).stat().st_mode & 0o777) == 0o600


def test_patient_export_verifies_standalone_and_reveals_no_one_else(runner, app, closed, tmp_path):
    day = local_today(closed[0].cohort.program.tz).isoformat()
    out = tmp_path / "export-100231"
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", day, "--to", day,
                              str(out)])
    assert res.exit_code == 0, res.output
    assert "1 withheld" in res.output
    key = runner.invoke(args=["audit", "pubkey"]).output.strip()
    check = subprocess.run([sys.executable, "-m", "audit_archive", "verify", str(out), "--key", key],
                           capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert check.returncode == 0, check.stdout + check.stderr
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert "Alvarez".encode() in everything  # the patient's own line is disclosed
    for other in ("Brien", "Keegan", "Jos", "Nguyen", "Patel", "Ravi", "100232", "100233", "100250"):
        assert other.encode() not in everything, other
    assert not list(out.rglob("*.pdf"))  # the group roster names others: withheld
    assert "42 CFR part 2" in (out / "NOTICE.txt").read_text()  # 42 CFR 2.32


def test_export_bad_input(runner, closed, tmp_path):
    res = runner.invoke(args=["audit", "export", "--patient", "999999", "--from", "2026-01-01",
                              "--to", "2026-01-31", str(tmp_path / "x")])
    assert res.exit_code == 1 and "No patient has MRN" in res.output
    res = runner.invoke(args=["audit", "export", "--patient", "100231", "--from", "2026-02-01",
                              "--to", "2026-01-01", str(tmp_path / "x")])
    assert res.exit_code == 1 and "before" in res.output


def test_qr_page_verifies_entry(client, login, world, closed, runner):
    runner.invoke(args=["audit", "checkpoint"])
    login.as_(world.auditor)
    page = client.get("/verify/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Verified" in html and "FAIL" not in html
    assert client.get("/verify/99").status_code == 404


def test_qr_page_says_pending_before_a_checkpoint_covers_the_entry(client, login, world, closed):
    # The first close signs a checkpoint (none existed); the second is newer than it.
    login.as_(world.auditor)
    html = client.get("/verify/2").get_data(as_text=True)
    assert "awaiting checkpoint" in html and "Does not verify" not in html
