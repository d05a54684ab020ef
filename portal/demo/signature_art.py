"""Synthetic, signature-like strokes for the demo and tests (no real person's signature)."""
from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw


def squiggle_png(seed: int = 0, width: int = 600, height: int = 240, scale: float = 1.0) -> bytes:
    """A cursive-looking scribble as transparent PNG bytes, varied by ``seed``."""
    rng = random.Random(seed)
    w, h = int(width * scale), int(height * scale)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    f1, f2, amp = rng.uniform(6, 12), rng.uniform(15, 30), rng.uniform(0.2, 0.35)
    pts = [(w * (0.08 + 0.84 * t / 240), h * (0.5 + amp * math.sin(t / f1) * math.cos(t / f2)))
           for t in range(241)]
    draw.line(pts, fill=(16, 32, 58, 255), width=max(2, int(3 * scale)), joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
