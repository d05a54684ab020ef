"""Judge a signature image on the server: the client's "not empty" flag is never trusted.

A signature is accepted when the upload is a real PNG of sane size whose ink (non-transparent,
non-white pixels) covers enough pixels and spans a box that a human signature would span.
A tap, a dot or a stray line is rejected as near-blank.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIDE_PX = 4096
MIN_SIDE_PX = 60
# Ink thresholds relative to the canvas, so the same stroke passes at any devicePixelRatio.
# Height is judged against the canvas's longer side: a tall portrait pad must not demand a
# tall signature (a 470 x 50 px scribble on a 784 x 1040 pad is a signature).
MIN_INK_BOX_WIDTH = 0.12   # of image width
MIN_INK_BOX_HEIGHT = 0.025  # of the image's longer side
MIN_INK_FRACTION = 0.0008  # of image area
# Pen strokes cover a small share of the box they span (typically 5-20 %); a filled rectangle
# or a photo is not a signature.
MAX_INK_COVERAGE = 0.6     # of the ink's bounding box


class SignatureRejected(ValueError):
    """The upload is not an acceptable signature; ``str(exc)`` tells the signer what to do."""


@dataclass(frozen=True)
class SignatureImage:
    png: bytes
    sha256: str
    width: int
    height: int
    ink_pixels: int


def check_signature_png(data: bytes, max_bytes: int) -> SignatureImage:
    """Validate ``data`` (PNG bytes, at most ``max_bytes``) and return it with its SHA-256.

    Raises ``SignatureRejected`` for: empty, oversized, non-PNG or corrupt data, an image too
    small or too large, or a blank / near-blank drawing.
    """
    if not data:
        raise SignatureRejected("No signature was received. Please sign in the box.")
    if len(data) > max_bytes:
        raise SignatureRejected(f"The signature image is too large ({len(data) // 1024} KB, "
                                f"limit {max_bytes // 1024} KB).")
    if not data.startswith(PNG_MAGIC):
        raise SignatureRejected("The signature must be a PNG image from the signing pad.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if not (MIN_SIDE_PX <= width <= MAX_SIDE_PX and MIN_SIDE_PX // 3 <= height <= MAX_SIDE_PX):
            raise SignatureRejected(f"The signature image has an unusable size ({width}x{height}).")
        rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise SignatureRejected("The signature image is damaged; please sign again.") from exc
    # Ink = visible and not near-white (a pad may export an opaque white background).
    alpha = rgba.getchannel("A").point(lambda a: 255 if a > 32 else 0)
    gray = rgba.convert("L").point(lambda v: 255 if v < 200 else 0)
    ink = Image.composite(gray, Image.new("L", rgba.size, 0), alpha)
    ink_pixels = ink.histogram()[255]
    box = ink.getbbox()
    if not box or ink_pixels < MIN_INK_FRACTION * width * height:
        raise SignatureRejected("The signature box is blank or nearly blank. Please sign with "
                                "your name across the box.")
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    if box_w < MIN_INK_BOX_WIDTH * width or box_h < MIN_INK_BOX_HEIGHT * max(width, height):
        raise SignatureRejected("That looks like a dot or a straight line, not a signature. "
                                "Please sign your name across the box.")
    if ink_pixels > MAX_INK_COVERAGE * box_w * box_h:
        raise SignatureRejected("That looks like a filled shape, not a signature. Please sign "
                                "your name across the box.")
    return SignatureImage(png=data, sha256=hashlib.sha256(data).hexdigest(), width=width,
                          height=height, ink_pixels=ink_pixels)


PRINT_MAX_WIDTH_PX = 600
PRINT_MARGIN_PX = 6


def print_copy(png: bytes) -> bytes:
    """The signature cropped to its ink (plus a small margin) and at most 600 px wide, for
    embedding in a PDF. The stored original (and its SHA-256 in the archived record) is the
    evidence; this copy only keeps a 25-patient roster from carrying 25 full-screen canvases."""
    with Image.open(io.BytesIO(png)) as img:
        rgba = img.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box:
        left, top, right, bottom = box
        rgba = rgba.crop((max(left - PRINT_MARGIN_PX, 0), max(top - PRINT_MARGIN_PX, 0),
                          min(right + PRINT_MARGIN_PX, rgba.width),
                          min(bottom + PRINT_MARGIN_PX, rgba.height)))
    if rgba.width > PRINT_MAX_WIDTH_PX:
        rgba = rgba.resize((PRINT_MAX_WIDTH_PX, max(1, round(rgba.height * PRINT_MAX_WIDTH_PX / rgba.width))),
                           Image.LANCZOS)
    out = io.BytesIO()
    rgba.save(out, format="PNG", optimize=False)
    return out.getvalue()
