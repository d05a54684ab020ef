"""Server-side judgement of signature images, table-driven."""
from __future__ import annotations

import io
import math

import pytest
from PIL import Image, ImageDraw

from portal.demo.signature_art import squiggle_png
from portal.signatures import SignatureRejected, check_signature_png

LIMIT = 512 * 1024


def scribble(canvas=(784, 1040), box=(150, 500, 620, 550), width=3, scale=1) -> bytes:
    """A zig-zag filling ``box`` on a transparent canvas (CSS px x ``scale`` = device px)."""
    w, h = canvas[0] * scale, canvas[1] * scale
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    x0, y0, x1, y1 = (v * scale for v in box)
    pts = [(x0 + (x1 - x0) * i / 40, y0 + (y1 - y0) * (0.5 + 0.5 * math.sin(i))) for i in range(41)]
    ImageDraw.Draw(img).line(pts, fill=(16, 32, 58, 255), width=width * scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def filled(canvas, box=None) -> bytes:
    img = Image.new("RGBA", canvas, (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle(box or (0, 0, canvas[0] - 1, canvas[1] - 1), fill=(0, 0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("png, ok", [
    (squiggle_png(), True),
    (scribble(), True),                                   # 470 x 50 on a tall portrait pad
    (scribble(scale=2), True),                            # same at devicePixelRatio 2
    (scribble(canvas=(1100, 400), box=(200, 150, 700, 200)), True),   # landscape pad
    (scribble(box=(300, 500, 330, 560)), False),          # a tick: too narrow
    (scribble(box=(150, 500, 620, 502), width=2), False),  # a straight line
    (scribble(box=(390, 500, 396, 506)), False),          # a dot
    (filled((300, 100)), False),                          # a black rectangle
    (filled((784, 1040), box=(100, 400, 700, 600)), False),  # a filled block on the pad
])
def test_signature_judgement(png, ok):
    if ok:
        assert check_signature_png(png, LIMIT).sha256
    else:
        with pytest.raises(SignatureRejected):
            check_signature_png(png, LIMIT)


@pytest.mark.parametrize("data, message", [
    (b"", "No signature"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "damaged"),
    (b"GIF89a" + b"\0" * 100, "PNG image"),
    (squiggle_png(), "too large"),
])
def test_bad_uploads(data, message):
    limit = 100 if message == "too large" else LIMIT
    with pytest.raises(SignatureRejected, match=message):
        check_signature_png(data, limit)


def test_print_copy_is_cropped_to_the_ink_and_bounded():
    from portal.signatures import print_copy

    big = scribble(canvas=(784, 1040), box=(150, 500, 620, 550), scale=2)
    small = print_copy(big)
    img = Image.open(io.BytesIO(small))
    assert img.width <= 600 and img.height < 200
    assert img.width * img.height < Image.open(io.BytesIO(big)).width * Image.open(io.BytesIO(big)).height / 10
