"""Validate 837P text with pyx12 (the field's validator) plus the situational rules pyx12 skips.

``assert_valid_837p(text)`` runs ``pyx12.x12n_document`` (the library behind ``x12valid``,
whose exit status is 1 even on "OK", so the result and the 999 it writes are read instead),
then the project's own checks for what pyx12 treats as situational:
- 2010BA N3/N4 present when SBR02 = 18 (the patient is the subscriber);
- 2010AA N4 ZIP is 9 digits;
- PRV*BI present in 2000A when the caller says the payer requires it.
"""
from __future__ import annotations

import io
import logging
import re

import pyx12.error_handler
import pyx12.params
import pyx12.x12n_document

#: How many 837Ps the suite built and validated (see ``install_validating_builder``).
VALIDATED: list[int] = []


def install_validating_builder() -> None:
    """Make every ``build_837p`` call in the test run validate its output with pyx12 and the
    situational checks (PRV*BI required where the payer's rules say so). tests/conftest.py calls
    this before anything imports the builder by name, so services and tests all get it."""
    import portal.rules.x12_837p as mod

    if getattr(mod.build_837p, "validating", False):
        return
    original = mod.build_837p

    def build_837p(lines, patients, program, payer, *args, **kwargs):
        lines = list(lines)
        text = original(lines, patients, program, payer, *args, **kwargs)
        prv = any(payer.version_for(ln.dos).send_taxonomy for ln in lines)
        assert_valid_837p(text, prv_required=prv)
        return text

    build_837p.validating = True
    build_837p.__doc__ = original.__doc__
    mod.build_837p = build_837p


def pyx12_result(text: str) -> tuple[bool, str, str]:
    """(ok, 999 acknowledgment text, error log) for an interchange."""
    param = pyx12.params.params()
    ack, log = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(log)
    logger = logging.getLogger("pyx12")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        ok = pyx12.x12n_document.x12n_document(param, io.StringIO(text), ack, None, None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return bool(ok), ack.getvalue(), log.getvalue()


def situational_errors(text: str, *, prv_required: bool = False) -> list[str]:
    segs = [s.strip() for s in text.split("~") if s.strip()]
    els = [s.split("*") for s in segs]
    errors: list[str] = []
    # 2010AA: NM1*85 then N3, N4
    for i, e in enumerate(els):
        if e[0] == "NM1" and e[1] == "85":
            n4 = next((x for x in els[i + 1:i + 4] if x[0] == "N4"), None)
            if n4 is None or not re.fullmatch(r"\d{9}", n4[3] if len(n4) > 3 else ""):
                errors.append(f"2010AA N4 needs a 9-digit ZIP: {n4}")
    # 2000B/2010BA: SBR*P*18 ... NM1*IL then N3 N4
    for i, e in enumerate(els):
        if e[0] == "SBR" and len(e) > 2 and e[2] == "18":
            nm1 = i + 1
            assert els[nm1][:2] == ["NM1", "IL"], els[nm1]
            if els[nm1 + 1][0] != "N3" or els[nm1 + 2][0] != "N4":
                errors.append(f"2010BA N3/N4 missing for subscriber {els[nm1][3]}")
            else:
                zip_ = els[nm1 + 2][3] if len(els[nm1 + 2]) > 3 else ""
                if not re.fullmatch(r"\d{5}|\d{9}", zip_):
                    errors.append(f"2010BA N4 ZIP {zip_!r} is not 5 or 9 digits")
    if prv_required and not any(e[0] == "PRV" and e[1] == "BI" for e in els):
        errors.append("2000A PRV*BI is required by the payer's rules")
    # no element may carry a separator or a character outside the X12 extended set
    for s in segs:
        if re.search(r"[^A-Z0-9a-z !\"&'()*+,\-./:;?=%@\[\]_{}\\|<>#$^]", s):
            errors.append(f"character outside the X12 extended set: {s}")
    return errors


def assert_valid_837p(text: str, *, prv_required: bool = False) -> None:
    ok, ack, log = pyx12_result(text)
    assert ok, f"pyx12 rejected the 837P:\n{log}\n{ack}\n{text}"
    assert "IK5*A" in ack, ack
    errors = situational_errors(text, prv_required=prv_required)
    assert not errors, errors
    VALIDATED.append(1)
