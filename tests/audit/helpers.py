"""Shared builders for the audit archive tests (no fixtures here; see conftest.py)."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

ORIGIN = "portal.example.org/audit"
BASE_URL = "https://portal.example.org"
WHEN = datetime(2026, 11, 30, 15, 4, 5, tzinfo=timezone.utc)


def make_pdf(text: str = "roster", pages: int = 1) -> bytes:
    """A small valid PDF with ``text`` on each page (pypdf only, no WeasyPrint)."""
    w = PdfWriter()
    for i in range(pages):
        page = w.add_blank_page(width=612, height=792)
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica")})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        s = DecodedStreamObject()
        s.set_data(f"BT /F1 14 Tf 72 700 Td ({text} p{i + 1}) Tj ET".encode())
        page[NameObject("/Contents")] = w._add_object(s)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def do_append(engine, store, n: int = 1, *, kind: str = "roster", lines=(), pdf: bytes | None = None, **kw):
    """Append ``n`` entries, one transaction each; returns the AppendResults."""
    from audit_archive.ledger import append
    out = []
    for i in range(n):
        with engine.begin() as conn:
            out.append(append(conn, store, kind=kind, subject={"roster_id": str(i)}, actor="user:7",
                              record={"roster_id": str(i), "rows": [{"patient": "p1", "status": "present"}]},
                              pdf_bytes=pdf or make_pdf(f"doc {i}"), occurred_at=WHEN, line_commitments=lines,
                              verify_base_url=BASE_URL, origin=ORIGIN, **kw))
    return out
