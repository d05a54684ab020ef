"""The audit file of one patient: verifies with the standalone verifier (as a subprocess, as
README.txt says), holds that patient's extracts, reveals no other patient, is recorded as a
disclosure; bad input writes and records nothing."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.audit_files.service import AuditFileError, build_audit_file
from portal.extensions import db
from portal.models import AttendanceEntry, Disclosure, Patient

MRN = "100231"


def _build(world, rosters, out, **kw):
    args = dict(patient=MRN, first=rosters["first"], last=rosters["last"], requester=world.billing,
                recipient="Sunrise Medicaid MCO, program integrity unit", purpose="Payer audit",
                legal_basis="audit_2_53", consent_scope="", out_dir=out)
    args.update(kw)
    return build_audit_file(**args)


def run_verifier(path: Path, key: str, cwd: Path) -> subprocess.CompletedProcess:
    """The bundled verifier, run exactly as README.txt says: from outside the export, -P,
    PYTHONPATH inside the zip, nothing of the portal on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PYTHONPATH"] = f"{path}/verifier"
    return subprocess.run([sys.executable, "-P", "-m", "audit_archive", "verify", str(path), "--key", key],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def pdf_texts_and_images(data: bytes) -> tuple[str, set[str], list[bytes]]:
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(p.extract_text() or "" for p in reader.pages)
    hashes = set()
    for page in reader.pages:
        for img in page.images:
            hashes.add(hashlib.sha256(img.image.tobytes()).hexdigest())
    attachments = [b for values in reader.attachments.values() for b in values]
    return text, hashes, attachments


def _image_hash(png: bytes) -> str:
    from PIL import Image

    from portal.signatures import print_copy

    return hashlib.sha256(Image.open(io.BytesIO(print_copy(png))).tobytes()).hexdigest()


def test_audit_file_verifies_and_reveals_no_other_patient(app, world, rosters, tmp_path):
    result = _build(world, rosters, tmp_path / "out")
    assert result.extracts == 3 and result.path.suffix == ".zip"
    assert list((tmp_path / "out").iterdir()) == [result.path]  # no scratch left behind

    run = run_verifier(result.path, result.public_key, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RESULT: all checks passed" in run.stdout
    assert "3 of 3 extracts" in run.stdout

    me = db.session.scalar(select(Patient).where(Patient.mrn == MRN))
    others = list(db.session.scalars(select(Patient).where(Patient.mrn != MRN)))
    my_pngs = db.session.scalars(select(AttendanceEntry.signature_png).where(
        AttendanceEntry.patient_id == me.id, AttendanceEntry.signature_png.is_not(None))).all()
    my_sigs = {_image_hash(p) for p in my_pngs}
    # The test pads draw by seat (seed = row), so two patients can share a drawing; a drawing
    # that is also this patient's own is not another patient's.
    other_pngs = [p for p in db.session.scalars(select(AttendanceEntry.signature_png).where(
        AttendanceEntry.patient_id != me.id, AttendanceEntry.signature_png.is_not(None))).all()
        if _image_hash(p) not in my_sigs]
    assert other_pngs
    other_sigs = {_image_hash(p) for p in other_pngs}
    other_raw = {hashlib.sha256(p).hexdigest() for p in other_pngs}

    with zipfile.ZipFile(result.path) as z:
        names = z.namelist()
        assert "audit-file.pdf" in names
        assert sum(n.startswith("extracts/") for n in names) == 3
        seen_images: set[str] = set()
        texts = []
        for name in names:
            data = z.read(name)
            assert not any(h in data for h in (x.encode() for x in other_raw))
            if name.endswith(".pdf"):
                text, images, attachments = pdf_texts_and_images(data)
                seen_images |= images
                texts.append(text)
                for a in attachments:
                    texts.append(a.decode("utf-8", "replace"))
            else:
                texts.append(data.decode("utf-8", "replace"))
        everything = "\n".join(texts)
    for p in others:
        for needle in (p.mrn, p.legal_last, p.full_name):
            assert needle not in everything, needle
    assert not (seen_images & other_sigs), "another patient's signature image is in the audit file"
    assert seen_images & my_sigs, "the patient's own signature is in the extracts"
    assert me.full_name in everything and MRN in everything

    binder = PdfReader(io.BytesIO(zipfile.ZipFile(result.path).read("audit-file.pdf")))
    text = "\n".join(p.extract_text() or "" for p in binder.pages)
    for words in ("Audit file", "42 CFR", "Index", "How to verify this audit file",
                  "Facilitator attestation", "Sunrise Medicaid MCO", "Payer audit", "audit #"):
        assert words in text, words
    assert len(binder.pages) == result.pages

    d = db.session.scalar(select(Disclosure))
    assert d.patient_id == me.id and d.recipient.startswith("Sunrise") and d.documents == 3
    assert "3 one-patient extracts" in d.description and d.requester_id == world.billing.id


def test_a_tampered_extract_line_fails_the_verifier(app, world, rosters, tmp_path):
    result = _build(world, rosters, tmp_path / "out")
    src = zipfile.ZipFile(result.path)
    name = next(n for n in src.namelist() if n.startswith("extracts/"))
    pdf = src.read(name)
    i = pdf.index(b'"minutes_attended":"')
    tampered = pdf[:i] + pdf[i:].replace(b'"minutes_attended":"', b'"minutes_attended":"9', 1)
    out = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            z.writestr(info, tampered if info.filename == name else src.read(info.filename))
    # The manifest's hash of the file would catch the edit on its own; make it agree, as a
    # forger would, so that the embedded line is what fails.
    manifest = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    manifest["files"][name] = hashlib.sha256(tampered).hexdigest()
    out2 = tmp_path / "tampered2.zip"
    with zipfile.ZipFile(out) as a, zipfile.ZipFile(out2, "w") as z:
        for info in a.infolist():
            z.writestr(info, json.dumps(manifest).encode() if info.filename == "manifest.json" else a.read(info.filename))
    run = run_verifier(out2, result.public_key, tmp_path)
    assert run.returncode == 1
    assert f"extract {name} does not carry the committed line" in run.stdout


@pytest.mark.parametrize("kw, message", [
    ({"patient": "999999"}, "No patient has MRN"),
    ({"first": date(2026, 12, 1), "last": date(2026, 11, 1)}, "ends"),
    ({"first": date(2001, 1, 1), "last": date(2026, 1, 1)}, "more than 7 years"),
    ({"first": date(2020, 1, 1), "last": date(2020, 1, 31)}, "no archived documents"),
    ({"recipient": "  "}, "recipient"),
])
def test_bad_input_writes_and_records_nothing(app, world, rosters, tmp_path, kw, message):
    out = tmp_path / "out"
    with pytest.raises(AuditFileError) as exc:
        _build(world, rosters, out, **kw)
    assert message in str(exc.value)
    assert not out.exists() or not any(out.iterdir())
    assert db.session.scalar(select(func.count(Disclosure.id))) == 0
