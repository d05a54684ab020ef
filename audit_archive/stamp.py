"""Stamp every page of an archived PDF with its chain coordinates and a verification QR code.

The stamp line reads, e.g. ::

    IOP Example Program | audit #17 | prev 3f2a9c1e0b7d | rec 9a0c55e1d2f3 | ckpt 16:8d1e77a0 | page 1 of 2

and a QR code in the bottom-right corner encodes ``{verify_base_url}/verify/{seq}``.

The entry commits to the SHA-256 of the *stamped* file, so the page cannot show the entry's
own hash; it shows the sequence number, the previous entry's hash and the record hash,
which are all fixed before stamping (docs/audit-format.md §Stamp explains how a paper page
is tied back to its entry).

The overlay is built directly as a PDF content stream (Helvetica, one of the 14 standard
fonts, so nothing is embedded; the QR code as filled rectangles), not rendered by
WeasyPrint, so stamping costs a few milliseconds per document.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import qrcode
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, IndirectObject, NameObject

FONT_SIZE = 6.5
MARGIN = 10.0          # points from the page edge to the stamp line baseline / QR box
QR_SIZE = 34.0         # points; about 12 mm, scannable from a printed page


class StampError(ValueError):
    """The input is not a PDF we can stamp (not a PDF, encrypted, no pages, unparsable)."""


@dataclass(frozen=True)
class StampInfo:
    """What the stamp prints.  Hashes are full hex; the stamp shows their first 12 digits."""
    label: str
    seq: int
    prev_hash: str | None
    record_sha256: str
    checkpoint: tuple[int, str] | None   # (size, hex root) of the checkpoint named, or None
    verify_url: str

    def line(self, page: int, pages: int) -> str:
        prev = self.prev_hash[:12] if self.prev_hash else "genesis"
        ck = f"{self.checkpoint[0]}:{self.checkpoint[1][:8]}" if self.checkpoint else "none"
        return (f"{self.label} | audit #{self.seq} | prev {prev} | rec {self.record_sha256[:12]}"
                f" | ckpt {ck} | page {page} of {pages}")


def _pdf_text(s: str) -> bytes:
    # Standard-14 Helvetica with WinAnsi covers printable ASCII; anything else would render
    # as garbage, so it is replaced visibly instead.
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "()\\":
            out.append("\\" + ch)
        elif 32 <= o < 127:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out).encode("ascii")


@lru_cache(maxsize=64)
def _qr_ops(url: str, x: float, y: float, size: float) -> bytes:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, box_size=1)
    qr.add_data(url)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    m = size / n
    ops = [b"q 1 g %.2f %.2f %.2f %.2f re f 0 g" % (x - 2, y - 2, size + 4, size + 4)]
    for r, row in enumerate(matrix):
        yy = y + size - (r + 1) * m
        c = 0
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                ops.append(b"%.3f %.3f %.3f %.3f re" % (x + start * m, yy, (c - start) * m, m))
            else:
                c += 1
    ops.append(b"f Q")
    return b"\n".join(ops)


_FONT_NAME = NameObject("/FAudit")


def _font() -> DictionaryObject:
    return DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
        NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
    })


def _stamp_ops(width: float, text: str, url: str) -> bytes:
    qx = width - MARGIN - QR_SIZE
    return b"\n".join([
        # white band behind the text keeps the stamp legible over page content
        b"q 1 g %.2f %.2f %.2f %.2f re f Q" % (MARGIN - 1, MARGIN - 2, qx - MARGIN - 2, FONT_SIZE + 3),
        b"BT /FAudit %.1f Tf 0 g %.2f %.2f Td (%s) Tj ET" % (FONT_SIZE, MARGIN, MARGIN, _pdf_text(text)),
        _qr_ops(url, qx, MARGIN, QR_SIZE),
    ])


def _append_to_page(writer: PdfWriter, page: PageObject, ops: bytes, font_ref) -> bool:
    """Fast path: wrap the page's own content in q/Q and append our stream, without parsing
    the page's content (pypdf's merge_page tokenizes it, which dominates stamping time).
    Returns False when the page shape needs the general merge_page path."""
    if "/Resources" not in page or "/Contents" not in page:
        return False
    res = page["/Resources"].get_object()
    fonts = res.get("/Font")
    if fonts is None:
        fonts = DictionaryObject()
        res[NameObject("/Font")] = fonts
    fonts = fonts.get_object()
    if _FONT_NAME in fonts and fonts[_FONT_NAME] != font_ref:
        return False
    fonts[_FONT_NAME] = font_ref
    contents = page.raw_get("/Contents")
    obj = contents.get_object()
    if isinstance(obj, ArrayObject):
        existing = list(obj)
    elif isinstance(contents, IndirectObject):
        existing = [contents]
    else:  # a direct stream is invalid PDF but seen in the wild; streams in arrays must be indirect
        existing = [writer._add_object(obj)]
    head, tail = DecodedStreamObject(), DecodedStreamObject()
    head.set_data(b"q\n")
    tail.set_data(b"\nQ\n" + ops)
    page[NameObject("/Contents")] = ArrayObject(
        [writer._add_object(head), *existing, writer._add_object(tail.flate_encode())])
    return True


def _overlay(width: float, height: float, ops: bytes) -> PageObject:
    page = PageObject.create_blank_page(width=width, height=height)
    page[NameObject("/Resources")] = DictionaryObject({
        NameObject("/Font"): DictionaryObject({_FONT_NAME: _font()})})
    stream = DecodedStreamObject()
    stream.set_data(ops)
    page[NameObject("/Contents")] = stream
    return page


def stamp_pdf(pdf_bytes: bytes, info: StampInfo) -> bytes:
    """Return a new PDF whose every page carries the stamp line and QR code.

    Raises StampError if ``pdf_bytes`` is not an unencrypted PDF with at least one page.
    Page boxes are honoured (stamp placed relative to the MediaBox origin); rotated pages
    are stamped in their unrotated coordinate system.
    """
    if not isinstance(pdf_bytes, (bytes, bytearray)) or not bytes(pdf_bytes[:1024]).lstrip().startswith(b"%PDF-"):
        raise StampError("not a PDF: missing %PDF- header")
    try:
        reader = PdfReader(io.BytesIO(pdf_bytes), strict=False)
        if reader.is_encrypted:
            raise StampError("encrypted PDFs cannot be archived")
        writer = PdfWriter(clone_from=reader)
        pages = writer.pages
        total = len(pages)
        if total == 0:
            raise StampError("PDF has no pages")
        font_ref = writer._add_object(_font())
        for i, page in enumerate(pages, start=1):
            box = page.mediabox
            w, h = float(box.width), float(box.height)
            ops = _stamp_ops(w, info.line(i, total), info.verify_url)
            if float(box.left) or float(box.bottom):
                ops = b"q 1 0 0 1 %.2f %.2f cm\n%s\nQ" % (float(box.left), float(box.bottom), ops)
            if not _append_to_page(writer, page, ops, font_ref):
                page.merge_page(_overlay(w, h, ops))
                page.compress_content_streams()
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    except StampError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise StampError(f"cannot stamp PDF: {type(exc).__name__}: {exc}") from exc
