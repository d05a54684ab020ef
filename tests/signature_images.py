"""Signature images for tests: real-looking ones come from the demo's generator; blank and
near-blank ones are made here."""
from __future__ import annotations

import io

from PIL import Image, ImageDraw

from portal.demo.signature_art import squiggle_png  # re-exported for tests

__all__ = ["blank_png", "dot_png", "squiggle_png"]


def blank_png(width: int = 600, height: int = 240) -> bytes:
    return _png(Image.new("RGBA", (width, height), (0, 0, 0, 0)))


def dot_png(width: int = 600, height: int = 240) -> bytes:
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((300, 120, 306, 126), fill=(0, 0, 0, 255))
    return _png(img)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
