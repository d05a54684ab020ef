"""Exports choose a patient's lines from the lines committed in the chain (finding 5 of issue 9):
a line moved in the editable index to another patient never leaves in that patient's export."""
from __future__ import annotations

import json
import zipfile

from sqlalchemy import text

from portal.extensions import db
from portal.models import ArchivedDocument


def _sql(statement: str, **params) -> None:
    db.session.rollback()
    db.session.execute(text(statement), params)
    db.session.commit()


def _export(runner, mrn, day, out):
    return runner.invoke(args=["audit", "export", "--patient", mrn, "--from", day, "--to", day, str(out)])


def test_moved_index_line_never_leaves_in_an_export(runner, world, closed, tmp_path):
    doc = db.session.scalar(db.select(ArchivedDocument).where(ArchivedDocument.entry_seq == 1))
    alvarez, patel = world.patients[0], world.pm_patients[0]
    day = doc.dos.isoformat()
    # Patel (PM roster, entry 2) gets Alvarez's AM line (entry 1) filed under him.
    _sql("UPDATE archived_document_patients SET patient_id = :to WHERE document_id = :d AND patient_id = :p",
         to=patel.id, d=doc.id, p=alvarez.id)
    out = tmp_path / "patel.zip"
    res = _export(runner, patel.mrn, day, out)
    assert res.exit_code == 1, res.output
    assert "chain entry #1" in res.output and "Refusing to export MRN 100250" in res.output
    assert not out.exists()
    # Alvarez's own export refuses too: her committed line is filed under someone else.
    res = _export(runner, alvarez.mrn, day, tmp_path / "alvarez.zip")
    assert res.exit_code == 1 and "chain entry #1" in res.output, res.output


def test_line_json_rewritten_to_name_another_patient_is_refused(runner, world, closed, tmp_path):
    """Rewriting the stored line itself (to carry Patel's MRN and id) breaks its commitment."""
    doc = db.session.scalar(db.select(ArchivedDocument).where(ArchivedDocument.entry_seq == 1))
    alvarez, patel = world.patients[0], world.pm_patients[0]
    row = db.session.execute(text("SELECT line_json FROM archived_document_patients WHERE document_id = :d "
                                  "AND patient_id = :p"), {"d": doc.id, "p": alvarez.id}).scalar()
    line = json.loads(row)
    line.update(mrn=patel.mrn, patient_id=str(patel.id))
    _sql("UPDATE archived_document_patients SET patient_id = :to, line_json = :j WHERE document_id = :d "
         "AND patient_id = :p", to=patel.id, j=json.dumps(line), d=doc.id, p=alvarez.id)
    res = _export(runner, patel.mrn, doc.dos.isoformat(), tmp_path / "patel.zip")
    assert res.exit_code == 1 and "chain entry #1" in res.output, res.output


def test_clean_export_holds_only_the_patients_own_lines(runner, world, closed, tmp_path):
    doc = db.session.scalar(db.select(ArchivedDocument).where(ArchivedDocument.entry_seq == 1))
    out = tmp_path / "alvarez.zip"
    res = _export(runner, world.patients[0].mrn, doc.dos.isoformat(), out)
    assert res.exit_code == 0, res.output
    z = zipfile.ZipFile(out)
    lines = [n for n in z.namelist() if n.startswith("lines/")]
    assert lines == ["lines/00000001-0.json"]
    assert json.loads(z.read(lines[0]))["mrn"] == world.patients[0].mrn
    assert not any(n.startswith("entries/00000002") for n in z.namelist())  # the PM roster is not hers
