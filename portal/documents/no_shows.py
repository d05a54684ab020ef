"""PDFs of the no-show policy, a patient's acknowledgment, and an attendance letter.

Called by portal.services.no_shows outside any transaction. The letter does not extend the
shared document page on purpose: that page prints the program's name, which may disclose the
nature of the program to a household member (42 CFR Part 2).
"""
from __future__ import annotations

from portal.documents.render import render_pdf


def policy_pdf(record: dict) -> bytes:
    return render_pdf("documents/no_show_policy.html", {"r": record})


def acknowledgment_pdf(record: dict, signature_png: bytes) -> bytes:
    return render_pdf("documents/no_show_acknowledgment.html", {"r": record, "signature": signature_png})


def letter_pdf(record: dict) -> bytes:
    return render_pdf("documents/no_show_letter.html", {"r": record})
